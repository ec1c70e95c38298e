// Admin settings: one generic list-and-form page per collection of the admin API.

import { del, get, items, patch, post } from "./api.js";
import { $, fill, h, toast } from "./dom.js";

const boot = JSON.parse($("#boot").textContent || "{}");
const baseUrl = boot.base_url || location.origin;
const section = document.body.dataset.section;
const collection = document.body.dataset.collection;
let agents = [];
let inboxes = []; // the inbox rows, for the email-continuity choice of chat inboxes

// Field specs: [name, label, kind, options]; `create` fields go in the add form, `edit` in each row.
const SPECS = {
  inboxes: {
    create: [
      ["name", "Name", "text"],
      ["channel", "Channel", "select", ["webchat", "email", "telegram", "api"]],
      ["settings", "Settings (JSON)", "json"],
    ],
    edit: [
      ["name", "Name", "text"],
      ["settings", "Settings (JSON)", "json"],
    ],
    title: (row) => `${row.name} (${row.channel})`,
    extra: inboxExtra,
  },
  agents: {
    create: [
      ["name", "Name", "text"],
      ["email", "Email", "email"],
      ["role", "Role", "select", ["agent", "admin"]],
      ["password", "Password", "password"],
    ],
    edit: [
      ["name", "Name", "text"],
      ["email", "Email", "email"],
      ["role", "Role", "select", ["agent", "admin"]],
      ["active", "Active", "checkbox"],
      ["password", "New password (leave empty to keep)", "password"],
    ],
    title: (row) => `${row.name} <${row.email}> · ${row.role}${row.active === false ? " · deactivated" : ""}`,
    noDelete: true,
  },
  teams: {
    create: [
      ["name", "Name", "text"],
      ["description", "Description", "text"],
    ],
    edit: [
      ["name", "Name", "text"],
      ["description", "Description", "text"],
    ],
    title: (row) => row.name,
    extra: (row) => members(row, `/api/v1/teams/${row.id}/members`),
  },
  labels: {
    create: [
      ["name", "Name", "text"],
      ["color", "Colour", "color"],
      ["description", "Description", "text"],
    ],
    edit: [
      ["name", "Name", "text"],
      ["color", "Colour", "color"],
      ["description", "Description", "text"],
    ],
    title: (row) => row.name,
  },
  canned_responses: {
    create: [
      ["short_code", "Short code (typed after /)", "text"],
      ["content", "Content", "textarea"],
    ],
    edit: [
      ["short_code", "Short code", "text"],
      ["content", "Content", "textarea"],
    ],
    title: (row) => `/${row.short_code}`,
  },
};

const spec = SPECS[section];

function input([name, label, kind, options], value) {
  let control;
  if (kind === "select") {
    control = h("select", { name }, options.map((o) => h("option", { value: o, selected: o === value }, o)));
  } else if (kind === "textarea" || kind === "json") {
    control = h("textarea", { name, rows: kind === "json" ? 4 : 3 });
    control.value = kind === "json" ? JSON.stringify(value ?? {}, null, 2) : value ?? "";
  } else if (kind === "checkbox") {
    control = h("input", { type: "checkbox", name, checked: value !== false });
  } else {
    control = h("input", { type: kind, name, autocomplete: kind === "password" ? "new-password" : "off" });
    if (value !== undefined && value !== null && kind !== "password") control.value = value;
  }
  return h("label", { class: "field" }, h("span", {}, label), control);
}

/** Read a form by its spec; `partial` leaves out empty passwords. */
function read(form, fields, partial) {
  const body = {};
  for (const [name, label, kind] of fields) {
    const control = form.elements[name];
    if (kind === "checkbox") body[name] = control.checked;
    else if (kind === "json") {
      try {
        body[name] = control.value.trim() ? JSON.parse(control.value) : {};
      } catch (error) {
        throw new Error(`${label}: not valid JSON (${error.message})`);
      }
    } else if (kind === "password" && partial && !control.value) continue;
    else body[name] = control.value;
  }
  return body;
}

function inboxExtra(row) {
  const parts = [];
  if (row.channel === "webchat" && row.public_key) {
    const snippet = `<script src="${baseUrl}/widget.js" data-key="${row.public_key}" async></script>`;
    const code = h("code", { class: "snippet" }, snippet);
    parts.push(
      h(
        "div",
        { class: "snippet-box" },
        h("span", {}, "Widget snippet — paste before </body>: "),
        code,
        h(
          "button",
          {
            type: "button",
            class: "copy",
            onclick: async () => {
              try {
                await navigator.clipboard.writeText(snippet);
                toast("Snippet copied.");
              } catch {
                getSelection().selectAllChildren(code);
                toast("Press Ctrl+C to copy the selected snippet.");
              }
            },
          },
          "Copy",
        ),
      ),
    );
  }
  if (row.secret) {
    parts.push(
      h(
        "details",
        { class: "secret" },
        h("summary", {}, "Identity verification secret"),
        h("code", {}, row.secret),
        h("button", { type: "button", onclick: () => save(row, { rotate_secret: true }) }, "Rotate secret"),
      ),
    );
  }
  if (row.channel === "webchat" && row.settings) parts.push(continuity(row));
  parts.push(
    h(
      "label",
      { class: "csat-toggle" },
      h("input", {
        type: "checkbox",
        name: "csat_enabled",
        checked: row.settings?.csat_enabled === true,
        onchange: (event) => save(row, { settings: { ...(row.settings || {}), csat_enabled: event.target.checked } }),
      }),
      " Customer satisfaction survey when a conversation is resolved",
    ),
  );
  parts.push(members(row, `/api/v1/inboxes/${row.id}/members`));
  return parts;
}

/** Email continuity of a chat inbox: which email inbox mails unseen replies, and the page to link back to. */
function continuity(row) {
  const current = row.settings.email_continuity_inbox_id ?? null;
  const choices = inboxes.filter((other) => other.channel === "email");
  const select = h(
    "select",
    { name: "email_continuity_inbox_id" },
    h("option", { value: "" }, "Off"),
    choices.map((other) => h("option", { value: String(other.id), selected: other.id === current }, other.name)),
  );
  const url = h("input", { type: "url", name: "email_continuity_chat_url", placeholder: "https://example.com/help" });
  url.value = row.settings.email_continuity_chat_url || "";
  const form = h(
    "form",
    { class: "continuity" },
    h("label", { class: "field" }, h("span", {}, "Email continuity: mail unseen replies through"), select),
    h("label", { class: "field" }, h("span", {}, "Page with the chat (linked from the mail)"), url),
    h("button", { type: "submit" }, "Save email continuity"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const settings = { ...row.settings };
    delete settings.email_continuity_inbox_id;
    delete settings.email_continuity_chat_url;
    if (select.value) settings.email_continuity_inbox_id = Number(select.value);
    if (url.value.trim()) settings.email_continuity_chat_url = url.value.trim();
    save(row, { settings });
  });
  return form;
}

function members(row, path) {
  const ids = new Set(row.agent_ids || []);
  return h(
    "fieldset",
    { class: "members" },
    h("legend", {}, "Members"),
    agents.map((agent) =>
      h(
        "label",
        {},
        h("input", {
          type: "checkbox",
          checked: ids.has(agent.id),
          onchange: async (event) => {
            try {
              if (event.target.checked) await post(path, { agent_id: agent.id });
              else await del(`${path}/${agent.id}`);
              toast(`${agent.name} ${event.target.checked ? "added" : "removed"}.`);
            } catch (error) {
              event.target.checked = !event.target.checked;
              toast(error.message, "error");
            }
          },
        }),
        ` ${agent.name}`,
      ),
    ),
  );
}

async function save(row, body) {
  try {
    await patch(`${collection}/${row.id}`, body);
    toast("Saved.");
    await load();
  } catch (error) {
    toast(error.message, "error");
  }
}

function rowView(row) {
  const form = h("form", { class: "settings-form" }, spec.edit.map((field) => input(field, row[field[0]])));
  form.append(h("button", { type: "submit" }, "Save"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    try {
      save(row, read(form, spec.edit, true));
    } catch (error) {
      toast(error.message, "error");
    }
  });
  return h(
    "details",
    { class: "settings-row", dataset: { id: row.id } },
    h("summary", {}, spec.title(row)),
    spec.extra ? spec.extra(row) : null,
    form,
    spec.noDelete
      ? null
      : h(
          "button",
          {
            type: "button",
            class: "danger",
            onclick: async () => {
              if (!confirm(`Delete ${spec.title(row)}?`)) return;
              try {
                await del(`${collection}/${row.id}`);
                await load();
              } catch (error) {
                toast(error.message, "error");
              }
            },
          },
          "Delete",
        ),
  );
}

async function load() {
  try {
    if (section === "inboxes" || section === "teams") agents = items(await get("/api/v1/agents"));
    const rows = items(await get(collection));
    if (section === "inboxes") inboxes = rows;
    fill($("#settings-list"), rows.length ? rows.map(rowView) : h("p", { class: "muted" }, "None yet."));
  } catch (error) {
    toast(error.message, "error");
  }
}

function createForm() {
  const form = $("#settings-create");
  fill(form, spec.create.map((field) => input(field, field[2] === "color" ? "#6b7280" : undefined)), h("button", { type: "submit" }, "Add"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await post(collection, read(form, spec.create, false));
      form.reset();
      toast("Added.");
      await load();
    } catch (error) {
      toast(error.message, "error");
    }
  });
}

createForm();
load();
