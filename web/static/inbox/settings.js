// Admin settings: one generic list-and-form page per collection of the admin API.

import { del, get, items, patch, post } from "./api.js";
import { $, fill, h, toast } from "./dom.js";
import { field, showError } from "./fields.js";
import { t } from "./i18n.js";
import { inboxForm } from "./inbox_form.js";

const boot = JSON.parse($("#boot").textContent || "{}");
const baseUrl = boot.base_url || location.origin;
const section = document.body.dataset.section;
const collection = document.body.dataset.collection;
let agents = [];
let inboxes = []; // the inbox rows, for the email-continuity choice of chat inboxes
let hours = []; // business-hours calendars, for an inbox's choice

// Field specs (fields.js): `create` fields go in the add form, `edit` in each row. `F("new_password", …, "password")`
// is labelled as a new password and sent as `password`.
const ROLES = ["agent", "admin"];
function F(key, kind, options = null, name = key) {
  const choices = options ? options.map((option) => [option, t(`s.${key}.${option}`)]) : undefined;
  return { name, key, kind, options: choices, label: t(`s.${key}`), help: t(`s.${key}.help`), path: name };
}

const SPECS = {
  inboxes: {
    // The whole form comes from inbox_form.js: a field per setting, per channel kind.
    form: (row) => inboxForm({ row, context: { hours, inboxes }, onSubmit: row ? (form, body) => save(row, body, form) : create }),
    title: (row) => `${row.name} (${t(`f.channel.${row.channel}`)})`,
    extra: inboxExtra,
  },
  agents: {
    create: [F("name", "text"), F("email", "email"), F("role", "select", ROLES), F("password", "password")],
    edit: [F("name", "text"), F("email", "email"), F("role", "select", ROLES), F("active", "checkbox"), F("new_password", "password", null, "password")],
    title: (row) => `${row.name} <${row.email}> · ${t(`s.role.${row.role}`)}${row.active === false ? ` · ${t("s.deactivated")}` : ""}`,
    noDelete: true,
  },
  teams: {
    create: [F("name", "text"), F("description", "text")],
    edit: [F("name", "text"), F("description", "text")],
    title: (row) => row.name,
    extra: (row) => members(row, `/api/v1/teams/${row.id}/members`),
  },
  labels: {
    create: [F("label_name", "text", null, "name"), F("color", "color"), F("description", "text")],
    edit: [F("label_name", "text", null, "name"), F("color", "color"), F("description", "text")],
    title: (row) => row.name,
  },
  canned_responses: {
    create: [F("short_code", "text"), F("content", "textarea")],
    edit: [F("short_code", "text"), F("content", "textarea")],
    title: (row) => `/${row.short_code}`,
  },
};

const spec = SPECS[section];

function input(spec, value) {
  return field(spec, spec.kind === "checkbox" ? value !== false : value);
}

/** Read a form by its spec; `partial` leaves out empty passwords. */
function read(form, fields, partial) {
  const body = {};
  for (const { name, kind } of fields) {
    const control = form.elements[name];
    if (kind === "checkbox") body[name] = control.checked;
    else if (kind === "password" && partial && !control.value) continue;
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
        h("span", {}, `${t("s.snippet")} `),
        code,
        h(
          "button",
          {
            type: "button",
            class: "copy",
            onclick: async () => {
              try {
                await navigator.clipboard.writeText(snippet);
                toast(t("s.snippet_copied"));
              } catch {
                getSelection().selectAllChildren(code);
                toast(t("s.snippet_select"));
              }
            },
          },
          t("s.copy"),
        ),
      ),
    );
  }
  if (row.secret) {
    parts.push(
      h(
        "details",
        { class: "secret" },
        h("summary", {}, t(row.channel === "api" ? "s.secret_api" : "s.secret")),
        h("p", { class: "field-help" }, t(row.channel === "api" ? "s.secret_api.help" : "s.secret.help")),
        h("code", {}, row.secret),
        h("button", { type: "button", onclick: () => save(row, { rotate_secret: true }) }, t("s.rotate_secret")),
      ),
    );
  }
  parts.push(members(row, `/api/v1/inboxes/${row.id}/members`));
  return parts;
}

function members(row, path) {
  const ids = new Set(row.agent_ids || []);
  return h(
    "fieldset",
    { class: "members" },
    h("legend", {}, t("s.members")),
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
              toast(t(event.target.checked ? "s.member_added" : "s.member_removed", { name: agent.name }));
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

async function save(row, body, form) {
  try {
    await patch(`${collection}/${row.id}`, body);
    await load(row.id);
    toast(t("f.saved"));
  } catch (error) {
    if (!form || !showError(form, error)) toast(error.message, "error");
  }
}

async function create(form, body) {
  try {
    await post(collection, body);
    toast(t("f.added"));
    fill($("#settings-create"), spec.form(null));
    await load();
  } catch (error) {
    if (!showError(form, error)) toast(error.message, "error");
  }
}

function rowView(row, openId) {
  let form;
  if (spec.form) form = spec.form(row);
  else {
    form = h("form", { class: "settings-form" }, spec.edit.map((field) => input(field, row[field[0]])));
    form.append(h("button", { type: "submit" }, t("f.save")));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      save(row, read(form, spec.edit, true), form);
    });
  }
  return h(
    "details",
    { class: "settings-row", dataset: { id: row.id }, open: row.id === openId },
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
              if (!confirm(t("f.confirm_delete", { name: spec.title(row) }))) return;
              try {
                await del(`${collection}/${row.id}`);
                await load();
              } catch (error) {
                toast(error.message, "error");
              }
            },
          },
          t("f.delete"),
        ),
  );
}

async function load(openId) {
  try {
    if (section === "inboxes" || section === "teams") agents = items(await get("/api/v1/agents"));
    if (section === "inboxes") hours = items(await get("/api/v1/business_hours"));
    const rows = items(await get(collection));
    if (section === "inboxes") inboxes = rows;
    fill($("#settings-list"), rows.length ? rows.map((row) => rowView(row, openId)) : h("p", { class: "muted" }, t("f.none_yet")));
  } catch (error) {
    toast(error.message, "error");
  }
}

function createForm() {
  if (spec.form) {
    fill($("#settings-create"), spec.form(null));
    return;
  }
  const form = h("form", { class: "settings-form" });
  fill($("#settings-create"), form);
  fill(form, spec.create.map((field) => input(field, field.kind === "color" ? "#6b7280" : undefined)), h("button", { type: "submit" }, t("s.add")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await post(collection, read(form, spec.create, false));
      form.reset();
      toast(t("f.added"));
      await load();
    } catch (error) {
      if (!showError(form, error)) toast(error.message, "error");
    }
  });
}

load().then(createForm);
