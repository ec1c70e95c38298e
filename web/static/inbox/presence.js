// Who else is here: agent presence (online/busy/offline), "Bob is typing…" / "… is viewing", and the
// customer's typing and "seen" frames. Ephemeral only: nothing here is stored.

import { t } from "./i18n.js";
import { patch } from "./api.js";
import { onCall } from "./calls.js";
import { $, fill, h, toast } from "./dom.js";
import { state } from "./state.js";

const TYPING_TTL_MS = 6000;
const VIEWING_TTL_MS = 45000;
const VIEWING_REFRESH_MS = 20000;

let stream = null;
let viewingTimer = null;

export function usePresenceStream(given) {
  stream = given;
}

export function onEphemeral(frame, onSeen) {
  if (onCall(frame)) return;
  if (frame.type === "presence") {
    state.presence.set(frame.agent_id, frame.availability);
    renderPresence();
    return;
  }
  if (frame.type === "seen" && !frame.agent_id && frame.conversation_id === state.selectedId) {
    state.customerSeen = Math.max(state.customerSeen || 0, frame.message_id || 0);
    onSeen();
    return;
  }
  if ((frame.type === "typing" || frame.type === "viewing") && frame.conversation_id === state.selectedId) {
    if (frame.agent_id && frame.agent_id === state.me.id) return;
    const who = frame.agent_id ? `agent:${frame.agent_id}` : "contact";
    const key = `${frame.type}:${who}`;
    if (frame.active === false) state.others.delete(key);
    else {
      const customer = state.current?.contact?.name || t("others.customer");
      const name = frame.agent_id ? frame.agent_name || t("others.agent") : customer;
      const ttl = frame.type === "typing" ? TYPING_TTL_MS : VIEWING_TTL_MS;
      state.others.set(key, { name, kind: frame.type, until: Date.now() + ttl, agent: !!frame.agent_id });
      setTimeout(renderOthers, ttl + 50);
    }
    renderOthers();
  }
}

export function renderOthers() {
  const now = Date.now();
  for (const [key, other] of state.others) if (other.until < now) state.others.delete(key);
  const typing = [...state.others.values()].filter((o) => o.kind === "typing");
  const typingNames = new Set(typing.map((o) => o.name));
  const viewing = [...state.others.values()].filter((o) => o.kind === "viewing" && !typingNames.has(o.name));
  const parts = [
    ...typing.map((o) => t("others.typing", { name: o.name })),
    ...viewing.map((o) => t("others.viewing", { name: o.name })),
  ];
  const notice = $("#others");
  notice.textContent = parts.join(" · ");
  notice.hidden = parts.length === 0;
}

export function renderPresence() {
  fill(
    $("#presence-list"),
    [...state.agents.values()]
      .filter((a) => a.active !== false)
      .map((a) => {
        const availability = a.id === state.me.id ? $("#availability").value : state.presence.get(a.id) || "offline";
        return h("li", { dataset: { agent: a.id, availability } }, h("span", { class: `dot dot-${availability}`, title: availability }), " ", a.name);
      }),
  );
}

export function setAvailability(value) {
  localStorage.setItem("switchboard.availability", value);
  stream.send({ type: "presence", availability: value });
  state.presence.set(state.me.id, value);
  renderPresence();
  saveAvailability(value);
}

/** Keep the stored availability (what the widget's "agents online" reads) in step with the live one. */
export function saveAvailability(value) {
  if (state.me.availability === value) return;
  patch("/api/v1/me", { availability: value })
    .then((view) => (state.me.availability = view?.availability ?? value))
    .catch((error) => toast(t("error.availability", { error: error.message }), "error"));
}

export function sendViewing(conversationId, active) {
  clearInterval(viewingTimer);
  stream.send({ type: "viewing", conversation_id: conversationId, active });
  if (active) viewingTimer = setInterval(() => stream.send({ type: "viewing", conversation_id: conversationId, active: true }), VIEWING_REFRESH_MS);
}
