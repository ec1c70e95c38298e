// The chat window inside the widget iframe: speaks the widget protocol (DESIGN §4) over /widget/ws.
//
// Messages typed while offline wait in localStorage with their client_id and are sent after every welcome
// until acknowledged; the server stores a client_id once, so nothing is lost and nothing doubles. When the
// server is overloaded it answers `slow_down` with `retry_after`: the message stays unsent ("Sending
// slowly…") and the queue is sent again, in order, after the delay. Every text from the network is rendered
// with textContent, never as HTML.

import { slowDownWait } from "./backoff.js";
import { installSelfServe } from "./selfserve.js";
import { pick, translator } from "./strings.js";

const config = JSON.parse(document.getElementById("sb-config").textContent);
const locale = pick(config.locale, navigator.languages || [navigator.language]);
const t = translator(locale);
const $ = (id) => document.getElementById(id);
const embedded = window.parent !== window;

// ── storage (per inbox key; falls back to memory where storage is blocked) ─────────────────────────────
const memory = new Map();
const storage = {
  get(name, fallback) {
    const key = `switchboard:${config.key}:${name}`;
    try {
      const raw = window.localStorage.getItem(key);
      return raw === null ? fallback : JSON.parse(raw);
    } catch {
      return memory.has(key) ? memory.get(key) : fallback;
    }
  },
  set(name, value) {
    const key = `switchboard:${config.key}:${name}`;
    memory.set(key, value);
    try {
      window.localStorage.setItem(key, JSON.stringify(value));
    } catch {
      /* memory only */
    }
  },
};

// ── state ───────────────────────────────────────────────────────────────────────────────────────────────
const state = {
  socket: null,
  welcomed: false,
  token: storage.get("token", null),
  identity: null,
  messages: new Map(), // id -> message from the server
  surveys: new Map(), // survey message id -> {token, question, rating, comment, open, editing}
  queue: storage.get("queue", []), // [{client_id, body, created_at, error?}] not yet acknowledged
  profile: storage.get("profile", { name: "", email: "", done: false }),
  lastId: null,
  agentsOnline: true,
  seenUpTo: null,
  uploadToken: null,
  open: !embedded,
  unread: 0,
  lastSeenSent: null,
  retries: 0,
  reconnectTimer: null,
  inFlight: new Set(), // client_ids sent on this socket and not answered yet (not sent again meanwhile)
  slow: false, // the server said slow_down: pending messages show "Sending slowly…"
  slowUntil: 0,
  slowTimer: null,
  slowStreak: 0, // slow_downs in a row: each doubles the wait, capped at 8 s (backoff.js); an ack resets it
  refused: false,
  typingSentAt: 0,
  typingTimer: null,
  agentTypingTimer: null,
};

function uuid() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function saveQueue() {
  storage.set("queue", state.queue);
}

// Tabs of one visitor share the queue in localStorage: change it read-modify-write, and follow other tabs.
function changeQueue(change) {
  state.queue = change(storage.get("queue", state.queue));
  saveQueue();
}
window.addEventListener("storage", (event) => {
  if (event.key === `switchboard:${config.key}:queue`) {
    state.queue = storage.get("queue", []);
    render();
  }
});

// ── rendering ───────────────────────────────────────────────────────────────────────────────────────────
function setup() {
  document.documentElement.lang = locale;
  document.documentElement.style.setProperty("--sb-color", config.color);
  $("title").textContent = t("title");
  $("close").setAttribute("aria-label", t("close"));
  $("close").hidden = !embedded;
  $("messages").setAttribute("aria-label", t("conversation"));
  $("text").placeholder = t("placeholder");
  $("text-label").textContent = t("messageLabel");
  $("text").maxLength = config.limits.max_message_chars;
  $("send").textContent = t("send");
  $("attach-label").setAttribute("aria-label", t("attach"));
  $("attach-label").title = t("attach");
  $("file").accept = config.limits.attachment_types.join(",");
  $("prechat-intro").textContent = t("prechatIntro");
  $("prechat-name-label").textContent = t("name");
  $("prechat-email-label").textContent = t("email");
  $("prechat-start").textContent = t("start");
  $("prechat-skip").textContent = t("skip");
  $("prechat-skip").hidden = config.prechat !== "optional";
  $("prechat-name").required = $("prechat-email").required = config.prechat === "required";
  $("away-label").textContent = t("awayEmail");
  $("away-save").textContent = t("save");
}

function notice(text, bad = false) {
  const el = $("notice");
  el.hidden = !text;
  el.textContent = text || "";
  el.classList.toggle("sb-bad", bad);
}

function connectionNotice() {
  if (state.refused) return;
  if (!navigator.onLine) notice(t("offline"));
  else if (!state.welcomed) notice(state.retries > 0 ? t("reconnecting") : "");
  else notice("");
}

function render() {
  const list = $("messages");
  list.replaceChildren();
  const greeting = config.greeting || t("greeting");
  list.append(bubble({ author: "greeting", body: greeting, attachments: [] }, ""));
  const known = new Set();
  const ordered = [...state.messages.values()].sort((a, b) => a.id - b.id);
  for (const message of ordered) {
    if (message.client_id) known.add(message.client_id);
    const survey = state.surveys.get(message.id);
    list.append(survey ? surveyCard(message, survey) : bubble(message, statusOf(message)));
  }
  for (const item of state.queue) {
    if (known.has(item.client_id)) continue;
    const status = item.error
      ? t("notSent", { reason: item.error })
      : !navigator.onLine || !state.welcomed
        ? t("queued")
        : state.slow
          ? t("sendingSlowly")
          : item.waitUntil > Date.now()
            ? t("waiting")
            : t("sending");
    const li = bubble({ author: "visitor", body: item.body, attachments: [] }, status);
    li.classList.add(item.error ? "sb-failed" : "sb-pending");
    li.dataset.clientId = item.client_id;
    list.append(li);
  }
  showPanels();
  selfserve.rendered(list);
  const body = $("body");
  body.scrollTop = body.scrollHeight;
}

function statusOf(message) {
  if (message.author !== "visitor") return message.sender_name || t("support");
  const lastVisitor = [...state.messages.values()].filter((m) => m.author === "visitor").at(-1);
  if (message !== lastVisitor) return "";
  return state.seenUpTo !== null && state.seenUpTo >= message.id ? t("seen") : t("sent");
}

function bubble(message, meta) {
  const li = document.createElement("li");
  li.className = `sb-msg sb-${message.author}`;
  if (message.id) li.dataset.id = message.id;
  const text = document.createElement("div");
  text.className = "sb-bubble";
  text.textContent = message.body;
  for (const file of message.attachments || []) {
    const link = document.createElement("a");
    link.className = "sb-file";
    link.href = file.url;
    link.target = "_blank";
    link.rel = "noopener";
    if (/^image\/(png|jpeg|gif|webp)$/.test(file.content_type)) {
      const img = document.createElement("img");
      img.src = file.url;
      img.alt = file.filename;
      link.append(img);
    } else {
      link.textContent = `📎 ${file.filename}`;
    }
    text.append(link);
  }
  if (!message.body && !(message.attachments || []).length) text.textContent = "";
  li.append(text);
  if (meta) {
    const small = document.createElement("span");
    small.className = "sb-meta";
    small.textContent = meta;
    li.append(small);
  }
  return li;
}

function surveyCard(message, survey) {
  const li = document.createElement("li");
  li.className = "sb-msg sb-agent sb-survey";
  li.dataset.id = message.id;
  const card = document.createElement("form");
  card.className = "sb-bubble sb-survey-card";
  const question = document.createElement("p");
  question.textContent = survey.question;
  card.append(question);
  if (!survey.editing) {
    const thanks = document.createElement("p");
    thanks.className = "sb-survey-thanks";
    thanks.textContent = t("csatThanks", { rating: survey.rating });
    card.append(thanks);
    if (survey.open) {
      const change = document.createElement("button");
      change.type = "button";
      change.textContent = t("csatChange");
      change.addEventListener("click", () => {
        survey.editing = true;
        render();
      });
      card.append(change);
    }
    li.append(card);
    return li;
  }
  const scale = document.createElement("div");
  scale.className = "sb-row sb-scale";
  scale.setAttribute("role", "radiogroup");
  for (const value of [1, 2, 3, 4, 5]) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = String(value);
    button.dataset.rating = String(value);
    button.setAttribute("role", "radio");
    button.setAttribute("aria-checked", String(survey.rating === value));
    if (survey.rating === value) button.classList.add("sb-primary");
    button.addEventListener("click", () => {
      survey.rating = value;
      survey.comment = comment.value;
      render();
    });
    scale.append(button);
  }
  const comment = document.createElement("textarea");
  comment.rows = 2;
  comment.maxLength = 1000;
  comment.placeholder = t("csatComment");
  comment.setAttribute("aria-label", t("csatComment"));
  comment.value = survey.comment || "";
  const submit = document.createElement("button");
  submit.type = "submit";
  submit.className = "sb-primary";
  submit.textContent = t("csatSend");
  submit.disabled = !survey.rating;
  const error = document.createElement("p");
  error.className = "sb-error";
  error.hidden = !survey.error;
  error.textContent = survey.error || "";
  card.append(scale, comment, submit, error);
  card.addEventListener("submit", async (event) => {
    event.preventDefault();
    survey.comment = comment.value;
    submit.disabled = true;
    try {
      const response = await fetch(`/csat/${encodeURIComponent(survey.token)}`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({ rating: survey.rating, comment: survey.comment }),
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(data?.error?.detail || String(response.status));
      Object.assign(survey, { rating: data.survey.rating, comment: data.survey.comment, open: data.survey.open, editing: false, error: "" });
    } catch (problem) {
      survey.error = t("csatFailed", { reason: problem.message });
    }
    render();
  });
  li.append(card);
  return li;
}

function showPanels() {
  const empty = state.messages.size === 0 && state.queue.length === 0;
  const wantsPrechat = config.prechat !== "off" && !state.profile.done && empty && !state.identity;
  $("prechat").hidden = !wantsPrechat;
  $("composer").hidden = wantsPrechat || state.refused;
  const away = !state.agentsOnline && state.welcomed;
  $("presence").textContent = state.welcomed ? (away ? "" : t("online")) : "";
  $("away").hidden = !away || wantsPrechat;
  $("away-text").textContent = t("away", { time: t(`reply.${config.reply_time}`) });
  const hasEmail = Boolean(state.profile.email);
  $("away-label").hidden = $("away-email").hidden = $("away-save").hidden = hasEmail;
  if (hasEmail) $("away-text").textContent += " " + t("saved", { email: state.profile.email });
}

// ── the socket ──────────────────────────────────────────────────────────────────────────────────────────
function connect() {
  clearTimeout(state.reconnectTimer);
  if (state.socket || state.refused || !navigator.onLine) {
    connectionNotice();
    return;
  }
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/widget/ws?key=${encodeURIComponent(config.key)}`);
  state.socket = socket;
  socket.onopen = () => {
    socket.send(
      JSON.stringify({ type: "hello", visitor_token: state.token, after: state.lastId, identity: state.identity }),
    );
  };
  socket.onmessage = (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    receive(frame);
  };
  socket.onclose = (event) => {
    if (state.socket !== socket) return;
    state.socket = null;
    state.welcomed = false;
    state.inFlight.clear();
    if (event.code === 4401) {
      state.token = null; // the server no longer knows this token: start as a new visitor
      storage.set("token", null);
    } else if (event.code === 4403 || event.code === 4404) {
      state.refused = true;
      notice(event.reason === "identity_unverified" ? t("identityRefused") : t("refused"), true);
      showPanels();
      return;
    }
    state.retries += 1;
    connectionNotice();
    render();
    const delay = event.code === 4401 ? 0 : Math.min(10000, 500 * 2 ** Math.min(state.retries, 5));
    state.reconnectTimer = setTimeout(connect, delay);
  };
}

function send(frame) {
  if (state.socket && state.welcomed && state.socket.readyState === WebSocket.OPEN) {
    state.socket.send(JSON.stringify(frame));
    return true;
  }
  return false;
}

function receive(frame) {
  switch (frame.type) {
    case "welcome":
      state.welcomed = true;
      state.retries = 0;
      state.token = frame.visitor_token;
      storage.set("token", state.token);
      state.uploadToken = frame.upload_token;
      state.agentsOnline = Boolean(frame.agents_online);
      if (frame.seen_up_to !== null && frame.seen_up_to !== undefined) state.seenUpTo = frame.seen_up_to;
      for (const message of frame.messages) remember(message, false);
      state.inFlight.clear();
      connectionNotice();
      if (state.profile.name || state.profile.email) {
        send({ type: "contact", name: state.profile.name || null, email: state.profile.email || null });
      }
      flush();
      render();
      markSeen();
      selfserve.welcomed();
      break;
    case "ack":
      state.inFlight.delete(frame.client_id);
      state.slowStreak = 0;
      dequeue(frame.client_id);
      remember(frame.message, false);
      render();
      break;
    case "message":
      if (frame.message.client_id) dequeue(frame.message.client_id);
      remember(frame.message, true);
      if (frame.message.author === "agent") showAgentTyping(false);
      render();
      markSeen();
      break;
    case "typing":
      showAgentTyping(frame.active, frame.name);
      break;
    case "pong":
      if (typeof frame.agents_online === "boolean" && frame.agents_online !== state.agentsOnline) {
        state.agentsOnline = frame.agents_online;
        showPanels();
      }
      break;
    case "seen":
      state.seenUpTo = frame.message_id ?? Math.max(0, ...[...state.messages.keys()]);
      render();
      break;
    case "survey":
      // A satisfaction survey after the conversation was resolved: its message shows as a rating card.
      if (frame.survey && typeof frame.survey.token === "string") {
        state.surveys.set(frame.message_id, { ...frame.survey, rating: null, comment: "", open: true, editing: true });
        render();
      }
      break;
    case "error":
      failed(frame);
      break;
    default:
      break;
  }
}

function remember(message, live) {
  const isNew = !state.messages.has(message.id);
  state.messages.set(message.id, message);
  state.lastId = Math.max(state.lastId ?? 0, message.id);
  if (message.author === "agent" && isNew) {
    // An agent who answered has read everything the visitor wrote before.
    const before = [...state.messages.values()].filter((m) => m.author === "visitor" && m.id < message.id);
    if (before.length) state.seenUpTo = Math.max(state.seenUpTo ?? 0, ...before.map((m) => m.id));
    if (live && (!state.open || document.hidden)) {
      state.unread += 1;
      tellParent({ sb: "unread", count: state.unread });
    }
  }
}

function dequeue(clientId) {
  if (state.queue.some((item) => item.client_id === clientId)) {
    changeQueue((queue) => queue.filter((item) => item.client_id !== clientId));
  }
  if (state.slow && !state.queue.some((item) => !item.error)) {
    state.slow = false; // everything went through: back to normal
    notice("");
  }
}

function flush() {
  if (state.slowUntil > Date.now()) return; // the server asked us to wait; the timer flushes
  for (const item of state.queue) {
    if (item.error || item.waitUntil > Date.now() || state.inFlight.has(item.client_id)) continue;
    if (send({ type: "message", client_id: item.client_id, body: item.body })) state.inFlight.add(item.client_id);
  }
}

function slowDown(seconds) {
  // Never before the server's time; refused again, back off further (many visitors retrying at once would
  // otherwise keep the server busy refusing them); spread a little so visitors do not come back together.
  const wait = slowDownWait(seconds, state.slowStreak);
  state.slowStreak += 1;
  state.slow = true;
  state.slowUntil = Math.max(state.slowUntil, Date.now() + wait);
  notice(t("slowServer"));
  clearTimeout(state.slowTimer);
  state.slowTimer = setTimeout(() => {
    state.slowUntil = 0;
    flush();
    render();
  }, state.slowUntil - Date.now());
  render();
}

function failed(frame) {
  const item = frame.client_id && state.queue.find((entry) => entry.client_id === frame.client_id);
  if (frame.client_id) state.inFlight.delete(frame.client_id);
  if (frame.code === "slow_down") {
    slowDown(frame.retry_after);
    return;
  }
  if (frame.code === "rate_limited") {
    notice(t("rateLimited"));
    if (item) {
      const wait = Math.max(1, Number(frame.retry_after) || 1) * 1000;
      item.waitUntil = Date.now() + wait;
      render();
      setTimeout(() => {
        item.waitUntil = 0;
        notice("");
        flush();
        render();
      }, wait);
    }
    return;
  }
  if (frame.code === "unavailable") {
    // The server names the message it could not store: only that one is sent again (the others may be
    // acknowledged any moment, and resending them would get each acknowledged twice). An older server
    // names none: then whatever was waiting is sent again.
    if (!frame.client_id) state.inFlight.clear();
    setTimeout(flush, 2000); // the server could not store it now; the queue keeps it
    return;
  }
  if (item) {
    // The server will never take this message as it is: show why, keep the text, stop resending it.
    item.error = frame.code === "too_long" ? t("tooLong") : frame.detail;
    saveQueue();
    render();
  } else {
    notice(frame.detail, true);
  }
}

function showAgentTyping(active, name) {
  clearTimeout(state.agentTypingTimer);
  $("typing").hidden = !active;
  $("typing").textContent = active ? t("typing", { name: name || t("support") }) : "";
  if (active) state.agentTypingTimer = setTimeout(() => showAgentTyping(false), 8000);
}

function markSeen() {
  if (!state.open || document.hidden) return;
  const lastAgent = [...state.messages.values()].filter((m) => m.author === "agent").at(-1);
  if (lastAgent && lastAgent.id !== state.lastSeenSent && send({ type: "seen", message_id: lastAgent.id })) {
    state.lastSeenSent = lastAgent.id;
  }
}

// ── composing ───────────────────────────────────────────────────────────────────────────────────────────
function submitText() {
  const text = $("text").value;
  if (!text.trim()) return;
  if (text.length > config.limits.max_message_chars) {
    notice(t("tooLong"), true);
    return;
  }
  const item = { client_id: uuid(), body: text, created_at: new Date().toISOString() };
  changeQueue((queue) => [...queue, item]);
  $("text").value = "";
  stopTyping();
  render();
  selfserve.beforeSend().finally(() => flush()); // in order, behind anything still waiting
}

function typing() {
  const now = Date.now();
  if (now - state.typingSentAt > 2000 && send({ type: "typing", active: true })) state.typingSentAt = now;
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(stopTyping, 3000);
}

function stopTyping() {
  clearTimeout(state.typingTimer);
  if (state.typingSentAt) send({ type: "typing", active: false });
  state.typingSentAt = 0;
}

async function upload(file) {
  const limits = config.limits;
  if (file.size > limits.max_attachment_bytes) {
    notice(t("fileTooLarge", { size: `${Math.floor(limits.max_attachment_bytes / 1048576)} MB` }), true);
    return;
  }
  if (!limits.attachment_types.includes(file.type)) {
    notice(t("fileType"), true);
    return;
  }
  if (!navigator.onLine || !state.uploadToken) {
    notice(t("offline"), true);
    return;
  }
  await sendFile(file, uuid(), 0);
}

async function sendFile(file, clientId, attempt) {
  const limits = config.limits;
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("client_id", clientId);
  try {
    const response = await fetch(`/widget/upload?key=${encodeURIComponent(config.key)}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${state.uploadToken}` },
      body: form,
    });
    const data = await response.json();
    if (response.status === 503 && data.error && data.error.code === "slow_down" && attempt < 20) {
      // Overloaded: nothing was stored; the same client_id goes again after the delay (stored once).
      notice(t("slowServer"));
      const wait = Math.max(0.2, Number(data.error.retry_after) || 1) * 1000 * (1 + Math.random() * 0.25);
      setTimeout(() => sendFile(file, clientId, attempt + 1), wait);
      return;
    }
    if (!response.ok) {
      const code = data.error && data.error.code;
      const known = { too_large: "fileTooLarge", unsupported_type: "fileType", rate_limited: "rateLimited" };
      const size = `${Math.floor(limits.max_attachment_bytes / 1048576)} MB`;
      notice(known[code] ? t(known[code], { size }) : t("uploadFailed"), true);
      return;
    }
    remember(data.message, false);
    notice("");
    render();
  } catch {
    notice(t("uploadFailed"), true);
  }
}

// ── the page around us (the loader) ─────────────────────────────────────────────────────────────────────
function tellParent(message) {
  if (embedded) window.parent.postMessage(message, "*"); // nothing secret: colour, counts, open/close
}

function sameIdentity(a, b) {
  return JSON.stringify(a || null) === JSON.stringify(b || null);
}

function identify(identity) {
  if (sameIdentity(identity, state.identity)) return;
  state.identity = identity || null;
  // Another person (or the same one, now verified) means another thread: start over.
  state.messages.clear();
  state.lastId = null;
  state.seenUpTo = null;
  state.refused = false;
  adoptProfile(identity);
  if (state.socket) {
    const old = state.socket;
    state.socket = null;
    state.welcomed = false;
    old.close();
  }
  render();
  connect();
}

function adoptProfile(identity) {
  // The site told us who this is: no need to ask for a name or an email again.
  if (identity && (identity.name || identity.email)) {
    state.profile = {
      ...state.profile,
      name: identity.name || state.profile.name,
      email: identity.email || state.profile.email,
    };
  }
}

let started = false;
function start(identity) {
  if (started) return;
  started = true;
  state.identity = identity || null;
  adoptProfile(identity);
  render();
  connect();
}

window.addEventListener("message", (event) => {
  if (event.source !== window.parent || !event.data || typeof event.data.sb !== "string") return;
  const data = event.data;
  if (data.sb === "init") {
    state.open = Boolean(data.open);
    selfserve.page(data.page);
    if (!started) start(data.identity);
    else identify(data.identity);
  } else if (data.sb === "identify") {
    if (!started) start(data.identity);
    else identify(data.identity);
  } else if (data.sb === "open") {
    state.open = true;
    state.unread = 0;
    tellParent({ sb: "unread", count: 0 });
    markSeen();
    const focusable = $("prechat").hidden ? $("text") : $("prechat-name");
    focusable.focus();
  } else if (data.sb === "close") {
    state.open = false;
  }
});

// ── events ──────────────────────────────────────────────────────────────────────────────────────────────
$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  submitText();
});
$("text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    submitText();
  }
});
$("text").addEventListener("input", typing);
$("file").addEventListener("change", () => {
  const file = $("file").files[0];
  $("file").value = "";
  if (file) upload(file);
});
$("attach-label").addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    $("file").click();
  }
});
$("close").addEventListener("click", () => tellParent({ sb: "close" }));
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") tellParent({ sb: "close" });
});
document.addEventListener("visibilitychange", markSeen);

$("prechat").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("prechat-name").value.trim();
  const email = $("prechat-email").value.trim();
  const emailOk = !email || /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email);
  const complete = config.prechat !== "required" || (name && email);
  if (!emailOk || !complete) {
    $("prechat-error").hidden = false;
    $("prechat-error").textContent = emailOk ? t("required") : t("invalidEmail");
    return;
  }
  state.profile = { name, email, done: true };
  storage.set("profile", state.profile);
  send({ type: "contact", name: name || null, email: email || null });
  render();
  $("text").focus();
});
$("prechat-skip").addEventListener("click", () => {
  state.profile = { ...state.profile, done: true };
  storage.set("profile", state.profile);
  render();
  $("text").focus();
});
$("away").addEventListener("submit", (event) => {
  event.preventDefault();
  const email = $("away-email").value.trim();
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) {
    notice(t("invalidEmail"), true);
    return;
  }
  state.profile = { ...state.profile, email };
  storage.set("profile", state.profile);
  send({ type: "contact", name: state.profile.name || null, email });
  notice("");
  render();
});

window.addEventListener("offline", () => {
  // Close at once: messages typed from now on wait in the queue instead of a socket that may be dead.
  if (state.socket) {
    const old = state.socket;
    state.socket = null;
    state.welcomed = false;
    old.close();
  }
  connectionNotice();
  render();
});
window.addEventListener("online", () => {
  state.retries = Math.max(state.retries, 1);
  connect();
});

// Every 30 s: keeps the socket alive through proxies, and refreshes whether an agent is online.
setInterval(() => send({ type: "ping" }), 30000);

setup();
// Self-service answers and proactive greetings (answers.js, proactive.js): hooks in render, welcome, send, init.
const selfserve = installSelfServe({ config, locale, state, storage, $, render, remember, tellParent, uuid, embedded });
tellParent({ sb: "ready", color: config.color, position: config.position, label: t("launcher") });
if (!embedded) start(null);
else setTimeout(() => start(null), 3000); // a loader that never answers must not leave the chat dead
