// The contact panel: identities, attributes and the contact's conversations on every channel.

import { t } from "./i18n.js";
import { identityText } from "./identity.js";
import { $, fill, h, timeAgo } from "./dom.js";
import { channelIcon } from "./icons.js";
import { isolated } from "./names.js";
import { state } from "./state.js";

export function renderContact(onOpen) {
  const panel = $("#contact-panel");
  const c = state.contact;
  if (!c) {
    fill(panel);
    return;
  }
  const attributes = Object.entries(c.attributes || {});
  const conversations = (c.conversations || []).filter((item) => item.id !== state.selectedId);
  fill(
    panel,
    h("h2", { class: "contact-title" }, isolated(c.name || c.email || t("contact.fallback", { id: c.id }))),
    c.email ? h("div", { class: "contact-email" }, c.email) : null,
    c.phone ? h("div", { class: "contact-phone" }, c.phone) : null,
    h("a", { class: "contact-edit", href: `/contacts#contact/${c.id}` }, t("contact.edit")),
    h("h3", {}, t("contact.identities")),
    h(
      "ul",
      { class: "identities" },
      (c.identities || []).map((i) =>
        h(
          "li",
          {},
          h("span", { class: "identity-value", title: `${i.kind}: ${i.value}` }, identityText(i)),
          i.verified ? h("span", { class: "verified", title: t("contact.verified") }, " ✓") : null,
        ),
      ),
    ),
    attributes.length ? h("h3", {}, t("contact.attributes")) : null,
    attributes.length
      ? h(
          "dl",
          { class: "attributes" },
          attributes.map(([key, value]) => [
            h("dt", {}, key),
            h("dd", {}, typeof value === "string" ? value : JSON.stringify(value)),
          ]),
        )
      : null,
    h("h3", {}, t("contact.previous")),
    conversations.length
      ? h(
          "ul",
          { class: "previous" },
          conversations.map((item) => {
            const channel = state.inboxes.get(item.inbox_id)?.channel || "";
            return h(
              "li",
              {},
              h(
                "a",
                {
                  href: `#conversation/${item.id}`,
                  onclick: (event) => {
                    event.preventDefault();
                    onOpen(item.id);
                  },
                },
                channelIcon(channel),
                ` #${item.number ?? item.id} `,
                item.subject || item.preview || "",
              ),
              h("span", { class: "muted" }, ` ${t(`status.${item.status}`)} · ${timeAgo(item.last_activity_at)}`),
            );
          }),
        )
      : h("p", { class: "muted" }, t("contact.none")),
  );
}
