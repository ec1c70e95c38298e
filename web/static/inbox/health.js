// Channel health banner: a mailbox or bot that has been failing for minutes is shown to the agents of its inbox.
import { get } from "./api.js";
import { $ } from "./dom.js";

const EVERY_MS = 60_000;

function describe(item) {
  const since = new Date(item.failing_since * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const reason = item.last_error ? `: ${item.last_error}` : "";
  return `${item.channel} inbox ${item.inbox_id} has been failing since ${since}${reason}`;
}

export async function checkChannelHealth() {
  const banner = $("#channel-health");
  if (!banner) return;
  try {
    const data = await get("/api/v1/channels/health");
    const failing = (data.items || []).filter((item) => item.failing);
    banner.hidden = failing.length === 0;
    banner.replaceChildren(...failing.map((item) => Object.assign(document.createElement("p"), { textContent: describe(item) })));
  } catch {
    // The banner is advisory: a failed check leaves it as it was and tries again later.
  }
}

export function watchChannelHealth() {
  checkChannelHealth();
  setInterval(checkChannelHealth, EVERY_MS);
}
