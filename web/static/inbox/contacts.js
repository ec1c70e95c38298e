// The contacts page: search, edit name/email/phone/attributes, identities as people read them, and merge
// with a preview of what joins. Everything goes through the contacts API; its 422 errors show at the field.

import { get, items, patch, post, query } from "./api.js";
import { $, fill, h, timeAgo, toast } from "./dom.js";
import { clearErrors, field, showError } from "./fields.js";
import { t } from "./i18n.js";
import { identityText } from "./identity.js";

const list = $("#contacts-list");
const detail = $("#contact-detail");
const status = $("#contacts-status");
const more = $("#contacts-more");
let cursor = null;
let current = null; // the contact shown, with its conversations
let inboxes = new Map();

const title = (contact) => contact.name || contact.email || contact.phone || t("contact.fallback", { id: contact.id });

function listItem(contact) {
  const line = (contact.identities || []).map(identityText).join(" · ");
  return h(
    "li",
    {},
    h(
      "a",
      {
        href: `#contact/${contact.id}`,
        "aria-current": current?.id === contact.id ? "true" : null,
        dataset: { id: contact.id },
      },
      h("strong", {}, title(contact)),
      h("span", { class: "muted" }, [contact.email, contact.phone].filter(Boolean).join(" · ") || line),
    ),
  );
}

async function search(append = false) {
  const q = $("#contact-q").value.trim();
  try {
    const page = await get(`/api/v1/contacts${query({ q, cursor: append ? cursor : null, limit: 25 })}`);
    const found = items(page);
    cursor = page.next_cursor;
    if (!append) list.replaceChildren();
    for (const contact of found) list.append(listItem(contact));
    more.hidden = !cursor;
    status.textContent = list.children.length ? t("contacts.count", { count: list.children.length }) : t("contacts.none");
  } catch (error) {
    toast(error.message, "error");
  }
}

// ── one contact: edit ─────────────────────────────────────────────────────────────────────────
function attributeRow(name = "", value = "") {
  const row = h(
    "div",
    { class: "attribute-row" },
    field({ name: "attr_name", kind: "text", label: t("contacts.attribute_name") }, name),
    field({ name: "attr_value", kind: "text", label: t("contacts.attribute_value") }, typeof value === "string" ? value : JSON.stringify(value)),
    h("button", { type: "button", class: "link", onclick: () => row.remove() }, t("contacts.remove_attribute")),
  );
  return row;
}

function editForm(contact) {
  const attributes = h("div", { class: "attributes-edit" }, Object.entries(contact.attributes || {}).map(([k, v]) => attributeRow(k, v)));
  // Attribute errors come back as "attributes…"; the list's anchor takes them.
  const anchor = h("span", { id: "attributes-anchor", tabindex: "-1", dataset: { path: "attributes" } });
  const form = h(
    "form",
    { class: "settings-form contact-form", novalidate: true },
    field({ name: "name", kind: "text", label: t("contacts.name"), help: t("contacts.name.help") }, contact.name),
    field({ name: "email", kind: "email", label: t("contacts.email"), help: t("contacts.email.help") }, contact.email),
    field({ name: "phone", kind: "text", label: t("contacts.phone"), help: t("contacts.phone.help"), placeholder: "+49 30 1234567" }, contact.phone),
    h(
      "fieldset",
      { class: "settings-group" },
      h("legend", {}, t("contact.attributes")),
      anchor,
      h("p", { class: "field-error", id: "attributes-anchor-error", hidden: true }),
      attributes,
      h("button", { type: "button", class: "link", onclick: () => attributes.append(attributeRow()) }, t("contacts.add_attribute")),
    ),
    h("button", { type: "submit" }, t("f.save")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = {
      name: form.elements.name.value.trim(),
      email: form.elements.email.value.trim() || null,
      phone: form.elements.phone.value.trim() || null,
      attributes: {},
    };
    for (const row of attributes.querySelectorAll(".attribute-row")) {
      const key = row.querySelector("[name=attr_name]").value.trim();
      if (key) body.attributes[key] = row.querySelector("[name=attr_value]").value;
    }
    try {
      await patch(`/api/v1/contacts/${contact.id}`, body);
      toast(t("f.saved"));
      await open(contact.id);
      await search();
    } catch (error) {
      showError(form, error);
    }
  });
  return form;
}

// ── one contact: merge with a preview ─────────────────────────────────────────────────────────
/** What the contact becomes when `source` folds into `target` (inbox.service.records.merge_contacts). */
export function mergedPreview(source, target) {
  return {
    name: target.name || source.name,
    email: target.email || source.email,
    phone: target.phone || source.phone,
    attributes: { ...(source.attributes || {}), ...(target.attributes || {}) },
    identities: [...(target.identities || []), ...(source.identities || [])],
    conversations: [...(target.conversations || []), ...(source.conversations || [])],
  };
}

function mergeSection(contact) {
  const results = h("ul", { class: "contacts-list merge-results" });
  const preview = h("div", { class: "merge-preview-box", role: "region", "aria-label": t("contacts.merge_preview") });
  const input = h("input", { id: "merge-q", type: "search", autocomplete: "off", placeholder: t("contacts.search_placeholder") });
  const find = async () => {
    const found = items(await get(`/api/v1/contacts${query({ q: input.value.trim(), limit: 10 })}`)).filter((c) => c.id !== contact.id);
    fill(
      results,
      found.length
        ? found.map((other) =>
            h("li", {}, h("button", { type: "button", class: "link merge-pick", dataset: { id: other.id }, onclick: () => showPreview(other.id) }, `${title(other)}${other.email ? ` <${other.email}>` : ""}`)),
          )
        : h("li", { class: "muted" }, t("contacts.none")),
    );
  };
  const showPreview = async (targetId) => {
    const target = await get(`/api/v1/contacts/${targetId}`);
    const result = mergedPreview(contact, target);
    const moving = (contact.identities || []).map(identityText);
    fill(
      preview,
      h(
        "div",
        { class: "merge-preview" },
        h("h4", {}, t("contacts.merge_into", { source: title(contact), target: title(target) })),
        h("p", {}, t("contacts.merge_moves", { identities: contact.identities?.length || 0, conversations: contact.conversations?.length || 0 })),
        moving.length ? h("ul", { class: "merge-identities" }, moving.map((text) => h("li", {}, text))) : null,
        h(
          "dl",
          { class: "attributes" },
          [
            [t("contacts.name"), result.name],
            [t("contacts.email"), result.email],
            [t("contacts.phone"), result.phone],
            [t("contact.attributes"), Object.entries(result.attributes).map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`).join(", ")],
          ].map(([name, value]) => [h("dt", {}, name), h("dd", {}, value || "—")]),
        ),
        h("p", { class: "muted" }, t("contacts.merge_final")),
        h(
          "button",
          {
            type: "button",
            id: "merge-confirm",
            class: "danger",
            onclick: async () => {
              try {
                await post(`/api/v1/contacts/${contact.id}/merge`, { into_id: target.id });
                toast(t("contacts.merged"));
                await search();
                await open(target.id);
              } catch (error) {
                toast(error.message, "error");
              }
            },
          },
          t("contacts.merge_confirm", { target: title(target) }),
        ),
      ),
    );
    preview.querySelector("h4").setAttribute("tabindex", "-1");
    preview.querySelector("h4").focus();
  };
  const form = h(
    "form",
    { class: "search-row", role: "search", onsubmit: (event) => (event.preventDefault(), find().catch((e) => toast(e.message, "error"))) },
    h("label", { for: "merge-q", class: "visually-hidden" }, t("contacts.merge_search")),
    input,
    h("button", { type: "submit" }, t("contacts.search")),
  );
  return h("details", { class: "merge" }, h("summary", {}, t("contacts.merge")), h("p", { class: "field-help" }, t("contacts.merge_help")), form, results, preview);
}

function conversationsList(contact) {
  const rows = contact.conversations || [];
  if (!rows.length) return h("p", { class: "muted" }, t("contact.none"));
  return h(
    "ul",
    { class: "previous" },
    rows.map((item) =>
      h(
        "li",
        {},
        h("a", { href: `/#conversation/${item.id}` }, `#${item.number ?? item.id} ${item.subject || item.preview || ""}`),
        h("span", { class: "muted" }, ` ${inboxes.get(item.inbox_id)?.name || ""} · ${t(`status.${item.status}`)} · ${timeAgo(item.last_activity_at)}`),
      ),
    ),
  );
}

async function open(contactId) {
  try {
    current = await get(`/api/v1/contacts/${contactId}`);
  } catch (error) {
    toast(error.message, "error");
    return;
  }
  for (const link of list.querySelectorAll("a[data-id]")) link.toggleAttribute("aria-current", Number(link.dataset.id) === current.id);
  const heading = h("h2", { tabindex: "-1" }, title(current));
  fill(
    detail,
    heading,
    h("h3", {}, t("contact.identities")),
    (current.identities || []).length
      ? h(
          "ul",
          { class: "identities" },
          current.identities.map((identity) =>
            h("li", { title: `${identity.kind}: ${identity.value}` }, identityText(identity), identity.verified ? h("span", { class: "verified" }, ` ✓ ${t("contact.verified")}`) : null),
          ),
        )
      : h("p", { class: "muted" }, "—"),
    h("h3", {}, t("contacts.edit")),
    editForm(current),
    h("h3", {}, t("contacts.conversations")),
    conversationsList(current),
    mergeSection(current),
  );
  detail.hidden = false;
  if (location.hash !== `#contact/${current.id}`) history.replaceState(null, "", `#contact/${current.id}`);
  heading.focus();
}

list.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-id]");
  if (!link) return;
  event.preventDefault();
  open(Number(link.dataset.id));
});
$("#contact-search").addEventListener("submit", (event) => {
  event.preventDefault();
  search();
});
more.addEventListener("click", () => search(true));

(async () => {
  try {
    inboxes = new Map(items(await get("/api/v1/inboxes")).map((inbox) => [inbox.id, inbox]));
  } catch {
    inboxes = new Map();
  }
  const params = new URLSearchParams(location.search);
  if (params.get("q")) $("#contact-q").value = params.get("q");
  await search();
  const linked = /^#contact\/(\d+)$/.exec(location.hash);
  if (linked) await open(Number(linked[1]));
})();
