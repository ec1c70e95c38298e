// The middle pane: the conversation list with keyset paging ("Load more" follows next_cursor).

import { t } from "./i18n.js";
import { $, fill, h, timeAgo } from "./dom.js";
import { channelIcon } from "./icons.js";
import { isolated } from "./names.js";
import { agentName, channelOf, state } from "./state.js";

export function renderList(onOpen, onMore) {
  const list = $("#conversation-list");
  const rows = state.order.map((id) => row(state.conversations.get(id), onOpen));
  fill(list, rows);
  // The empty notice sits outside the listbox (a listbox holds options only), and the active descendant
  // names a row only while that row is in the list.
  $("#list-empty").hidden = rows.length > 0;
  list.hidden = rows.length === 0;
  if (state.selectedId && state.conversations.has(state.selectedId) && state.order.includes(state.selectedId)) {
    list.setAttribute("aria-activedescendant", `conversation-${state.selectedId}`);
  } else {
    list.removeAttribute("aria-activedescendant");
  }
  const more = $("#load-more");
  more.hidden = !state.nextCursor;
  more.onclick = onMore;
}

function row(c, onOpen) {
  const channel = channelOf(c);
  const name = c.contact?.name || c.contact?.email || t("contact.fallback", { id: c.contact?.id ?? "" });
  const selected = c.id === state.selectedId;
  return h(
    "li",
    {
      class: `conversation${selected ? " selected" : ""}${c.unread_count ? " unread" : ""}`,
      id: `conversation-${c.id}`,
      role: "option",
      dataset: { id: c.id },
      tabindex: "-1",
      "aria-selected": selected ? "true" : "false",
      onclick: () => onOpen(c.id),
    },
    h("span", { class: `channel channel-${channel || "unknown"}`, title: channel || t("list.channel") }, channelIcon(channel)),
    h(
      "div",
      { class: "conversation-main" },
      h(
        "div",
        { class: "conversation-top" },
        h("span", { class: "contact-name" }, isolated(name)),
        h("time", { datetime: c.last_activity_at, title: c.last_activity_at }, timeAgo(c.last_activity_at)),
      ),
      c.subject ? h("div", { class: "subject" }, c.subject) : null,
      h("div", { class: "preview" }, c.preview || ""),
      h(
        "div",
        { class: "conversation-meta" },
        h("span", { class: "number" }, `#${c.number ?? c.id}`),
        c.status !== "open" ? h("span", { class: `status status-${c.status}` }, t(`status.${c.status}`)) : null,
        c.assignee_id ? h("span", { class: "assignee" }, agentName(c.assignee_id)) : null,
        c.priority ? h("span", { class: `priority priority-${c.priority}` }, t(`priority.${c.priority}`)) : null,
        (c.labels || []).map((label) => h("span", { class: "label" }, label)),
        c.unread_count ? h("span", { class: "unread-count", title: t("list.unread", { count: c.unread_count }) }, String(c.unread_count)) : null,
      ),
    ),
  );
}
