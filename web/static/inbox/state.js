// The client-side state every pane reads: who I am, the directory (agents, teams, inboxes, labels),
// the conversation list and the open thread. Panes re-render from here; only app.js mutates it.

export const state = {
  me: null,
  agents: new Map(), // id → agent
  teams: new Map(),
  inboxes: new Map(),
  labels: [],
  canned: [],
  presence: new Map(), // agent id → availability
  filter: { folder: "mine", status: "open", inbox_id: "", label: "", team_id: "", q: "" },
  conversations: new Map(), // id → conversation view
  order: [], // ids in list order
  nextCursor: null,
  selectedId: null,
  messages: new Map(), // id → message (open thread only)
  contact: null,
  seenMessageId: 0, // the newest message of the open thread the agent has seen
  customerSeen: 0, // the newest message id the customer has seen (webchat "seen" frames)
  others: new Map(), // "kind:agentId" → {name, kind, until} for the open thread
};

export function channelOf(conversation) {
  return state.inboxes.get(conversation.inbox_id)?.channel || "";
}

export function agentName(id) {
  if (id === null || id === undefined) return "";
  if (state.me && id === state.me.id) return state.me.name;
  return state.agents.get(id)?.name || `agent ${id}`;
}

/** Does a conversation belong in the list under the current filter? (mirrors the API's filters) */
export function matches(conversation) {
  const f = state.filter;
  if (f.status && conversation.status !== f.status) return false;
  if (f.folder === "mine" && conversation.assignee_id !== state.me.id) return false;
  if (f.folder === "unassigned" && conversation.assignee_id !== null) return false;
  if (f.inbox_id && conversation.inbox_id !== Number(f.inbox_id)) return false;
  if (f.team_id && conversation.team_id !== Number(f.team_id)) return false;
  if (f.label && !(conversation.labels || []).includes(f.label)) return false;
  if (f.q) return false; // a search result set is not live-extended; the server decides what matches
  return true;
}

/** Newest activity first, then the higher id (the API's keyset order). */
export function sortOrder() {
  state.order.sort((a, b) => {
    const x = state.conversations.get(a);
    const y = state.conversations.get(b);
    const byTime = Date.parse(y.last_activity_at) - Date.parse(x.last_activity_at);
    return byTime || b - a;
  });
}
