// How long the widget waits after a `slow_down` frame: pure, so a browser test can check the policy alone.
//
// Never sooner than the server's `retry_after`; each further slow_down in a row doubles our own wait, but
// never beyond SLOW_DOWN_MAX_SECONDS (an outage of a few seconds must not make a visitor wait a minute);
// jitter spreads visitors so they do not all come back at once. The caller resets `streak` on the first ack.

export const SLOW_DOWN_MAX_SECONDS = 8;

export function slowDownWait(retryAfter, streak, random = Math.random) {
  const floor = Math.max(0.2, Number(retryAfter) || 1);
  const grown = Math.min(SLOW_DOWN_MAX_SECONDS, floor * 2 ** Math.min(Math.max(0, streak), 5));
  const jittered = Math.min(SLOW_DOWN_MAX_SECONDS, grown * (0.75 + random() * 0.5));
  return Math.max(floor, jittered) * 1000;
}
