// Phone calls as they happen: a banner per ringing call ("Ann Lee, 3 open conversations"), updated when it is
// answered and removed when it ends (the hangup becomes a message in the conversation). Ephemeral only.

import { $, fill, h } from "./dom.js";

const calls = new Map(); // call_id → the last frame
const FORGET_MS = 10 * 60 * 1000; // a call whose "ended" never came is dropped after this long

export function onCall(frame) {
  if (frame.type !== "call" || !frame.call_id) return false;
  if (frame.state === "ended") calls.delete(frame.call_id);
  else {
    calls.set(frame.call_id, frame);
    setTimeout(() => calls.get(frame.call_id) === frame && (calls.delete(frame.call_id), renderCalls()), FORGET_MS);
  }
  renderCalls();
  return true;
}

function renderCalls() {
  let box = $("#calls");
  if (!box) {
    box = h("div", { id: "calls", role: "status", "aria-live": "polite", class: "calls" });
    document.body.append(box);
  }
  fill(
    box,
    [...calls.values()].map((frame) => {
      const who = frame.contact?.name || frame.number || "Unknown caller";
      const history = frame.contact ? `, ${frame.contact.open_conversations} open conversation${frame.contact.open_conversations === 1 ? "" : "s"}` : "";
      const state = frame.state === "answered" ? `answered${frame.agent ? ` by ${frame.agent}` : ""}` : "ringing";
      return h("div", { class: `call call-${frame.state}`, dataset: { callId: frame.call_id } }, `📞 ${who}${history} — ${state}`);
    }),
  );
}
