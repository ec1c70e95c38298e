// The agent inbox: wires the panes, the stream and the API together. Live only through the agent websocket.

import { ApiError, get, items, patch, post, query } from "./api.js";
import { Composer } from "./composer.js";
import { renderContact } from "./contact.js";
import { $, toast, uuid } from "./dom.js";
import { watchChannelHealth } from "./health.js";
import { bindFilters, renderFilters } from "./filters.js";
import { bindActions, renderHeader } from "./header.js";
import { bindKeys } from "./keys.js";
import { renderList } from "./list.js";
import { notifications } from "./notify.js";
import { onEphemeral, renderOthers, renderPresence, saveAvailability, sendViewing, setAvailability, usePresenceStream } from "./presence.js";
import { matches, sortOrder, state } from "./state.js";
import { Stream } from "./stream.js";
import { t } from "./i18n.js";
import { renderThread } from "./thread.js";
import "./articles.js"; // "Insert article" in the composer (self-service answers)

const PAGE = 30;
const MESSAGES_PAGE = 50;

const boot = JSON.parse($("#boot").textContent || "{}");
state.me = boot.agent || boot.me || boot;

let stream;
let composer;
let started = false;

// ── directory ────────────────────────────────────────────────────────────────────────────────────
async function optional(path) {
  try {
    return items(await get(path));
  } catch (error) {
    if (error instanceof ApiError && (error.status === 403 || error.status === 404)) return [];
    throw error;
  }
}

async function loadDirectory() {
  const [agents, teams, inboxes, labels, canned] = await Promise.all([
    optional("/api/v1/agents"),
    optional("/api/v1/teams"),
    optional("/api/v1/inboxes"),
    optional("/api/v1/labels"),
    optional("/api/v1/canned_responses"),
  ]);
  state.agents = new Map(agents.map((a) => [a.id, a]));
  if (!state.agents.has(state.me.id)) state.agents.set(state.me.id, state.me);
  for (const agent of state.agents.values()) {
    if (!state.presence.has(agent.id)) state.presence.set(agent.id, agent.availability || "offline");
  }
  state.teams = new Map(teams.map((t) => [t.id, t]));
  state.inboxes = new Map(inboxes.map((i) => [i.id, i]));
  state.labels = labels;
  state.canned = canned;
  renderFilters();
  renderPresence();
}

function listParams(cursor) {
  const f = state.filter;
  const assignee = { mine: "me", unassigned: "none" }[f.folder];
  return query({ status: f.status, inbox_id: f.inbox_id, assignee, label: f.label, team_id: f.team_id, q: f.q, cursor, limit: PAGE });
}

async function loadList() {
  try {
    const page = await get(`/api/v1/conversations${listParams()}`);
    state.conversations = new Map(items(page).map((c) => [c.id, c]));
    state.order = items(page).map((c) => c.id);
    state.nextCursor = page.next_cursor || null;
  } catch (error) {
    toast(t("error.list", { error: error.message }), "error");
  }
  drawList();
}

async function loadMore() {
  if (!state.nextCursor) return;
  const page = await get(`/api/v1/conversations${listParams(state.nextCursor)}`);
  for (const c of items(page)) {
    if (!state.conversations.has(c.id)) state.order.push(c.id);
    state.conversations.set(c.id, c);
  }
  state.nextCursor = page.next_cursor || null;
  drawList();
}

function drawList() {
  renderList(openConversation, loadMore);
  countFolders();
}

// ── folder counts ────────────────────────────────────────────────────────────────────────────────
// Each folder shows how many conversations it holds under the current status filter (one list page of up
// to 100 per folder; "99+" beyond). Recounted, at most once a second, whenever the list changes.
const COUNT_LIMIT = 100;
let countTimer = null;

function countFolders() {
  if (countTimer) return;
  countTimer = setTimeout(async () => {
    countTimer = null;
    const folders = { mine: "me", unassigned: "none", all: undefined };
    await Promise.all(
      Object.entries(folders).map(async ([folder, assignee]) => {
        try {
          const page = await get(`/api/v1/conversations${query({ status: state.filter.status, assignee, limit: COUNT_LIMIT })}`);
          const count = items(page).length;
          const shown = page.next_cursor ? `${COUNT_LIMIT - 1}+` : String(count);
          const badge = document.querySelector(`#folders [data-count="${folder}"]`);
          badge.textContent = shown;
          badge.setAttribute("aria-label", t("folder.count", { count }));
        } catch {
          // a count is a hint: the list itself reports failures
        }
      }),
    );
  }, 1000);
}

// ── phone width: one pane at a time ──────────────────────────────────────────────────────────────
function showList() {
  document.body.dataset.view = "list";
  if (location.hash) history.replaceState(null, "", location.pathname);
  const row = state.selectedId && document.getElementById(`conversation-${state.selectedId}`);
  (row || $("#conversation-list")).focus?.();
}

/** Fold a conversation view from an event into the list: add, update, reorder or drop it. */
function upsertConversation(view) {
  const present = state.conversations.has(view.id);
  const known = state.conversations.get(view.id) || (view.id === state.selectedId ? state.current : null);
  if (known && view.updated_at && known.updated_at && view.updated_at < known.updated_at) return;
  if (view.id === state.selectedId) view = { ...view, unread_count: 0 };
  if (matches(view) || (present && state.filter.q)) {
    if (!present) state.order.push(view.id);
    state.conversations.set(view.id, view);
    sortOrder();
  } else if (present) {
    state.conversations.delete(view.id);
    state.order = state.order.filter((id) => id !== view.id);
  }
  if (view.id === state.selectedId) {
    state.current = view;
    renderHeader();
  }
  drawList();
}

// ── the open conversation ────────────────────────────────────────────────────────────────────────
async function openConversation(id) {
  if (!id) return;
  if (state.selectedId && state.selectedId !== id) sendViewing(state.selectedId, false);
  const switching = state.selectedId !== id;
  state.selectedId = id;
  history.replaceState(null, "", `#conversation/${id}`);
  if (switching) {
    state.customerSeen = 0;
    composer.reset();
    state.others.clear();
    renderOthers();
  }
  drawList();
  document.body.dataset.view = "thread";
  $("#thread").hidden = false;
  $("#no-thread").hidden = true;
  try {
    const [conversation, page] = await Promise.all([
      get(`/api/v1/conversations/${id}`),
      get(`/api/v1/conversations/${id}/messages${query({ limit: MESSAGES_PAGE })}`),
    ]);
    if (state.selectedId !== id) return;
    state.current = conversation;
    state.messages = new Map(items(page).map((m) => [m.id, m]));
    state.hasEarlier = page.next_before !== null && page.next_before !== undefined;
    markSeen();
    markRead(id);
    const listed = state.conversations.get(id);
    if (listed) listed.unread_count = 0;
    renderHeader();
    renderThread(retry);
    drawList();
    sendViewing(id, true);
    loadContact(conversation.contact?.id);
  } catch (error) {
    toast(t("error.open", { id, error: error.message }), "error");
  }
}

async function loadEarlier() {
  const oldest = Math.min(...state.messages.keys());
  const page = await get(`/api/v1/conversations/${state.selectedId}/messages${query({ before: oldest, limit: MESSAGES_PAGE })}`);
  for (const m of items(page)) state.messages.set(m.id, m);
  state.hasEarlier = page.next_before !== null && page.next_before !== undefined;
  renderHeader();
  renderThread(retry);
}

async function loadContact(contactId) {
  if (!contactId) return;
  try {
    state.contact = await get(`/api/v1/contacts/${contactId}`);
  } catch (error) {
    state.contact = null;
    toast(t("error.contact", { error: error.message }), "error");
  }
  renderContact(openConversation);
}

function markRead(id) {
  post(`/api/v1/conversations/${id}/read`).catch(() => {}); // the unread count is a hint: a failure is harmless
  // Tell the customer's widget the thread was read (ephemeral; channels without "seen" ignore it).
  const incoming = [...state.messages.values()].filter((m) => m.kind === "incoming").map((m) => m.id);
  if (incoming.length) stream.send({ type: "seen", conversation_id: id, message_id: Math.max(...incoming) });
}

function markSeen() {
  state.seenMessageId = Math.max(0, ...state.messages.keys());
  $("#review-notice").hidden = true;
}

async function update(changes) {
  const id = state.selectedId;
  try {
    const view = await patch(`/api/v1/conversations/${id}`, changes);
    upsertConversation(view);
    return true;
  } catch (error) {
    toast(error.message, "error");
    renderHeader();
    return false;
  }
}

async function retry(messageId) {
  try {
    const view = await post(`/api/v1/messages/${messageId}/retry`);
    if (view?.id) applyMessage(view);
  } catch (error) {
    toast(error.message, "error");
  }
}

// ── sending ──────────────────────────────────────────────────────────────────────────────────────
/** Unseen activity by someone else since the agent last looked: they should review before sending. */
function unseenChanges() {
  return [...state.messages.values()].filter((m) => m.id > state.seenMessageId && !(m.sender?.type === "agent" && m.sender?.id === state.me.id));
}

async function send({ body, kind, attachmentIds }) {
  const id = state.selectedId;
  if (!id) return false;
  if (unseenChanges().length) {
    $("#review-notice").hidden = false;
    renderThread(retry);
    markSeenKeepNotice();
    $("#messages").scrollTop = $("#messages").scrollHeight;
    return false;
  }
  $("#review-notice").hidden = true;
  const clientId = composer.clientId || (composer.clientId = uuid());
  try {
    const message = await post(`/api/v1/conversations/${id}/messages`, {
      body,
      kind,
      client_id: clientId,
      attachment_ids: attachmentIds,
    });
    composer.clientId = null;
    if (state.selectedId === id) applyMessage(message);
    composer.stopTyping();
    return true;
  } catch (error) {
    // A network failure keeps the client_id, so pressing send again cannot store the reply twice.
    if (error instanceof ApiError) composer.clientId = null;
    toast(t("error.not_sent", { error: error.message }), "error");
    return false;
  }
}

function markSeenKeepNotice() {
  state.seenMessageId = Math.max(0, ...state.messages.keys());
}

// ── live events ──────────────────────────────────────────────────────────────────────────────────
const STATUS_RANK = { queued: 0, failed: 1, sent: 1, delivered: 2, read: 3 };

/** An API answer can arrive after a newer event about the same row: never let it roll the row back. */
function stale(incoming, existing) {
  if (!existing || !incoming.updated_at || !existing.updated_at) return false;
  if (incoming.updated_at !== existing.updated_at) return incoming.updated_at < existing.updated_at;
  return (STATUS_RANK[incoming.status] ?? 0) < (STATUS_RANK[existing.status] ?? 0);
}

function applyMessage(m) {
  if (m.conversation_id !== state.selectedId) return;
  if (stale(m, state.messages.get(m.id))) return;
  const mine = m.sender?.type === "agent" && m.sender?.id === state.me.id;
  state.messages.set(m.id, { ...state.messages.get(m.id), ...m });
  // The agent sees a new message live if they are not in the middle of writing a reply.
  if ((mine || !composer.text.value.trim()) && document.visibilityState === "visible" && m.id > state.seenMessageId && allSeenBefore(m.id)) {
    state.seenMessageId = m.id;
  }
  renderThread(retry);
}

function allSeenBefore(id) {
  return ![...state.messages.keys()].some((other) => other < id && other > state.seenMessageId);
}

function onEvent(frame) {
  const data = frame.data || {};
  switch (frame.type) {
    case "message.created":
      if (data.conversation) upsertConversation(data.conversation);
      applyMessage(data);
      if (data.kind === "incoming") {
        if (data.conversation_id === state.selectedId && document.visibilityState === "visible") markRead(data.conversation_id);
        const typing = [...state.others.entries()].filter(([key]) => key.startsWith("typing:contact"));
        for (const [key] of typing) state.others.delete(key);
        renderOthers();
        const conversation = data.conversation || state.conversations.get(data.conversation_id);
        if (conversation?.assignee_id === state.me.id) {
          notifications.announce(t("notify.new_message", { name: data.sender?.name || t("notify.a_customer") }), data.body || "", () => openConversation(data.conversation_id));
        }
      }
      break;
    case "message.updated":
      if (state.messages.has(data.id)) applyMessage(data);
      break;
    case "conversation.created":
    case "conversation.updated":
      upsertConversation(data);
      break;
    case "contact.updated":
    case "contact.merged":
      if (state.contact && (data.id === state.contact.id || data.merged_id === state.contact.id)) loadContact(data.id);
      for (const c of state.conversations.values()) {
        if (c.contact && (c.contact.id === data.id || c.contact.id === data.merged_id)) c.contact = { id: data.id, name: data.name, email: data.email };
      }
      drawList();
      break;
    case "agent.updated":
      if (data.id) state.agents.set(data.id, { ...state.agents.get(data.id), ...data });
      if (data.id && data.id !== state.me.id && data.availability) state.presence.set(data.id, data.availability);
      renderPresence();
      break;
    case "inbox.updated":
      if (data.id) state.inboxes.set(data.id, { ...state.inboxes.get(data.id), ...data });
      break;
    case "label.updated":
      renameLabel(data);
      break;
    default:
      break;
  }
}

/** A label was renamed or recoloured: update the directory, every loaded conversation and the filter. */
function renameLabel(data) {
  const { id, name, previous_name: before } = data;
  state.labels = state.labels.some((l) => l.id === id)
    ? state.labels.map((l) => (l.id === id ? { ...l, ...data } : l))
    : [...state.labels, data];
  state.labels.sort((a, b) => a.name.localeCompare(b.name));
  if (before && before !== name) {
    for (const c of state.conversations.values()) {
      if (c.labels?.includes(before)) c.labels = c.labels.map((l) => (l === before ? name : l));
    }
    if (state.current?.labels?.includes(before)) state.current.labels = state.current.labels.map((l) => (l === before ? name : l));
    if (state.filter.label === before) state.filter.label = name;
  }
  renderFilters();
  if (state.current) renderHeader();
  drawList();
}

function onConnection(status) {
  document.body.dataset.connection = status;
  const banner = $("#connection");
  banner.hidden = status === "live";
  banner.textContent = t(status === "reconnecting" ? "connection.reconnecting" : "connection.connecting");
}

async function onReady() {
  stream.send({ type: "presence", availability: $("#availability").value });
  saveAvailability($("#availability").value);
  if (state.selectedId) sendViewing(state.selectedId, true);
  if (started) return;
  started = true;
  await reloadAll();
}

async function reloadAll() {
  await loadDirectory();
  await loadList();
  const match = /^#conversation\/(\d+)$/.exec(location.hash);
  const wanted = match ? Number(match[1]) : state.selectedId;
  if (wanted) await openConversation(wanted);
}

// ── start ────────────────────────────────────────────────────────────────────────────────────────
function start() {
  watchChannelHealth();
  const saved = sessionStorage.getItem("switchboard.filter");
  if (saved) Object.assign(state.filter, JSON.parse(saved));
  composer = new Composer({
    send,
    typing: (active, isNote) => state.selectedId && stream.send({ type: "typing", conversation_id: state.selectedId, active, private: isNote }),
  });
  bindFilters(loadList);
  $("#back-to-list").addEventListener("click", showList);
  bindActions({ update, loadEarlier, reviewSend: () => composer.submit(), setAvailability });
  renderFilters();
  const moveBy = (step) => {
    if (!state.order.length) return;
    const index = state.order.indexOf(state.selectedId);
    const next = index === -1 ? 0 : Math.min(state.order.length - 1, Math.max(0, index + step));
    openConversation(state.order[next]);
    document.querySelector(`#conversation-list [data-id="${state.order[next]}"]`)?.scrollIntoView({ block: "nearest" });
  };
  bindKeys({
    next: () => moveBy(1),
    previous: () => moveBy(-1),
    resolve: () => state.selectedId && update({ status: "resolved" }),
    assign: () => state.selectedId && $("#assign-select").focus(),
    reply: () => {
      composer.setKind("outgoing");
      composer.text.focus();
    },
    note: () => {
      composer.setKind("note");
      composer.text.focus();
    },
    search: () => $("#search").focus(),
  });
  window.addEventListener("pagehide", () => state.selectedId && stream.send({ type: "viewing", conversation_id: state.selectedId, active: false }));
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && !composer.text.value.trim()) {
      markSeen();
      renderThread(retry);
    }
  });
  stream = new Stream({
    event: onEvent,
    ephemeral: (frame) => onEphemeral(frame, () => renderThread(retry)),
    resync: () => reloadAll(),
    state: onConnection,
    ready: onReady,
  });
  usePresenceStream(stream);
  window.switchboard = { state, stream }; // for the browser tests and for debugging
  stream.connect();
}

start();
