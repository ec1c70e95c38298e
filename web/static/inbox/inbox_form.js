// The inbox settings form: every inbox option as a labelled field with help text, grouped by what it is for
// (the channel's own keys, read from channels/<kind>/settings.py; the widget; surveys; routing, hours and SLA;
// email continuity). The form sends the whole `settings` object through the admin API (POST or PATCH
// /api/v1/inboxes), and the API's 422 error shows next to the field it names.

import { post } from "./api.js";
import { clearErrors, field, readFields, showError } from "./fields.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";

export const CHANNELS = ["webchat", "email", "telegram", "api", "whatsapp", "vk", "phone"];
// What `POST /api/v1/inboxes` creates (WhatsApp, VK and phone inboxes come from `switchboard inbox create`; once
// they exist, their settings are edited here like any other).
export const CREATABLE = ["webchat", "email", "telegram", "api"];

const opt = (values, prefix) => values.map((value) => [value, t(`${prefix}.${value || "default"}`)]);

/** The channel's own settings keys (each channel's settings class), as field specs. */
function channelFields(kind) {
  const f = (name, kind_, extra = {}) => ({ name, kind: kind_, label: t(`f.${name}`), help: t(`f.${name}.help`), path: `settings.${name}`, ...extra });
  switch (kind) {
    case "email":
      return [
        f("address", "email", { required: true }),
        f("display_name", "text"),
        f("aliases", "list"),
        f("reply_to", "email"),
        f("reply_plus", "checkbox", { default: false }),
        f("signature", "textarea"),
        f("imap_host", "text", { placeholder: "imap.example.com" }),
        f("imap_port", "number", { min: 1, max: 65535, placeholder: "993" }),
        f("imap_security", "select", { options: opt(["tls", "plain"], "f.security"), default: "tls" }),
        f("imap_username", "text"),
        f("imap_password", "password", { secret: true }),
        f("imap_folder", "text", { placeholder: "INBOX" }),
        f("imap_idle", "checkbox", { default: true }),
        f("poll_interval_seconds", "number", { min: 1, step: "any" }),
        f("smtp_host", "text", { placeholder: "smtp.example.com" }),
        f("smtp_port", "number", { min: 1, max: 65535, placeholder: "587" }),
        f("smtp_security", "select", { options: opt(["starttls", "tls", "plain"], "f.security"), default: "starttls" }),
        f("smtp_username", "text"),
        f("smtp_password", "password", { secret: true }),
      ];
    case "telegram":
      return [
        f("bot_token", "password", { secret: true, required: true, placeholder: "123456:ABC-DEF…" }),
        f("mode", "select", { options: opt(["polling", "webhook"], "f.mode"), default: "polling" }),
        f("groups", "checkbox", { default: false }),
      ];
    case "api":
      return [f("webhook_url", "url", { placeholder: "https://example.com/switchboard" })];
    case "whatsapp":
      return [
        f("phone_number_id", "text", { required: true, integer: false }),
        f("access_token", "password", { secret: true, required: true }),
        f("app_secret", "password", { secret: true, required: true }),
        f("verify_token", "password", { secret: true, required: true }),
        f("waba_id", "text"),
      ];
    case "vk":
      return [
        f("group_id", "number", { min: 1, required: true }),
        f("access_token", "password", { secret: true, required: true }),
        f("confirmation_code", "text", { required: true }),
        f("secret_key", "password", { secret: true, required: true }),
        f("groups", "checkbox", { default: false }),
      ];
    case "phone":
      return [
        f("signing_secret", "password", { secret: true }),
        f("dial_url", "text", { placeholder: "https://pbx.example.com/dial?to={number}&ext={agent_extension}" }),
        f("default_country_code", "text", { placeholder: "49" }),
      ];
    case "webchat":
      return [
        f("color", "color", { default: "#2563eb" }),
        f("greeting", "textarea"),
        f("position", "select", { options: opt(["right", "left"], "f.position"), default: "right" }),
        f("prechat", "select", { options: opt(["off", "optional", "required"], "f.prechat"), default: "off" }),
        f("reply_time", "select", { options: opt(["minutes", "hours", "day"], "f.reply_time"), default: "hours" }),
        f("locale", "select", { options: opt(["", "en", "ru"], "f.locale") }),
        f("allowed_origins", "list", { placeholder: "https://shop.example.com" }),
        f("require_identity_verification", "checkbox", { default: false }),
      ];
    default:
      return [];
  }
}

/** Options every inbox has, read by the core (inbox.gateway.outbox.CORE_SETTINGS). */
function coreFields(kind, context) {
  const f = (name, kind_, extra = {}) => ({ name, kind: kind_, label: t(`f.${name}`), help: t(`f.${name}.help`), path: `settings.${name}`, ...extra });
  const groups = [
    {
      legend: t("f.group.csat"),
      fields: [f("csat_enabled", "checkbox", { default: false })],
    },
    {
      legend: t("f.group.workflow"),
      fields: [
        f("routing", "select", { options: opt(["off", "round_robin", "least_loaded"], "f.routing"), default: "off" }),
        f("routing_capacity", "number", { min: 1, max: 1000 }),
        f("business_hours_id", "select", {
          options: [["", t("f.business_hours.always")], ...context.hours.map((row) => [row.id, row.name])],
          integer: true,
        }),
        f("sla_first_response_minutes", "number", { min: 1 }),
      ],
    },
  ];
  if (kind === "webchat") {
    groups.push({
      legend: t("f.group.continuity"),
      fields: [
        f("email_continuity_inbox_id", "select", {
          options: [["", t("f.continuity.off")], ...context.inboxes.filter((row) => row.channel === "email").map((row) => [row.id, row.name])],
          integer: true,
        }),
        f("email_continuity_chat_url", "url", { placeholder: "https://example.com/help" }),
      ],
    });
  }
  return groups;
}

/** Every settings group of an inbox of `kind`: [{legend, fields}]. */
export function settingsGroups(kind, context) {
  const own = channelFields(kind);
  const legend = kind === "webchat" ? t("f.group.widget") : t("f.group.channel", { channel: t(`f.channel.${kind}`) });
  return [...(own.length ? [{ legend, fields: own }] : []), ...coreFields(kind, context)];
}

/** The <fieldset>s of the settings groups, filled from `settings`. */
export function settingsFieldsets(kind, settings, context) {
  return settingsGroups(kind, context).map((group) =>
    h("fieldset", { class: "settings-group" }, h("legend", {}, group.legend), group.fields.map((spec) => field(spec, settings?.[spec.name] ?? spec.default))),
  );
}

/** The `settings` object the form describes: keys the form does not know are kept as they were, a secret
 * left empty keeps its stored value, an emptied field removes its key, and a default the inbox never set is
 * not written (the stored settings stay what someone chose). */
export function readSettings(form, kind, previous, context) {
  const specs = settingsGroups(kind, context).flatMap((group) => group.fields);
  const settings = { ...(previous || {}) };
  for (const spec of specs) if (!spec.secret) delete settings[spec.name];
  const read = readFields(form, specs);
  for (const spec of specs) {
    if (!(spec.name in read)) continue;
    let value = read[spec.name];
    if (spec.integer && typeof value === "string" && /^\d+$/.test(value)) value = Number(value);
    if (!(spec.name in (previous || {})) && spec.default !== undefined && value === spec.default) continue;
    settings[spec.name] = value;
  }
  return settings;
}

/** Telegram: "paste the token → Check" asks getMe through the server, shows the bot's name and picks how
 * updates will arrive (webhook when this server is publicly reachable over https, else polling). */
function telegramCheck(groups, row) {
  const tokenField = groups.querySelector('[data-field="bot_token"]');
  if (!tokenField) return;
  const result = h("p", { class: "wizard-result", role: "status" });
  const button = h("button", { type: "button", class: "wizard-check" }, t("wizard.telegram.check"));
  button.addEventListener("click", async () => {
    const form = button.closest("form");
    clearErrors(form);
    result.textContent = t("wizard.checking");
    const token = tokenField.querySelector("input").value.trim();
    try {
      const answer = await post("/api/v1/wizards/telegram", token ? { bot_token: token } : { inbox_id: row?.id ?? null });
      const name = answer.bot.username ? `${answer.bot.first_name} (@${answer.bot.username})` : answer.bot.first_name;
      result.textContent = `${t("wizard.telegram.bot", { name })} ${t(`wizard.telegram.mode_${answer.mode}`)}`;
      const mode = form.querySelector("select[name=mode]");
      if (mode) mode.value = answer.mode;
    } catch (error) {
      result.textContent = "";
      showError(form, error);
    }
  });
  tokenField.after(h("div", { class: "wizard" }, button, result));
}

/** Email: "Test connection" logs in to IMAP and selects the folder, then EHLO / STARTTLS / AUTH on SMTP, with
 * the settings as typed (empty passwords: the stored ones), and lists each step. */
function emailCheck(groups, row, context) {
  const last = groups.querySelector('[data-field="smtp_password"]');
  if (!last) return;
  const steps = h("ul", { class: "wizard-steps" });
  const result = h("div", { class: "wizard-result", role: "status" });
  const button = h("button", { type: "button", class: "wizard-check" }, t("wizard.email.check"));
  button.addEventListener("click", async () => {
    const form = button.closest("form");
    clearErrors(form);
    steps.replaceChildren();
    result.textContent = t("wizard.checking");
    try {
      const answer = await post("/api/v1/wizards/email", { settings: readSettings(form, "email", row?.settings, context), inbox_id: row?.id ?? null });
      result.textContent = answer.ok ? t("wizard.email.ok") : t("wizard.email.failed");
      for (const step of answer.steps) {
        steps.append(
          h("li", { class: step.ok ? "step-ok" : "step-failed", dataset: { step: step.step } }, `${step.ok ? "✓" : "✗"} ${t(`wizard.step.${step.step.replace(".", "_")}`)}: ${step.detail}`),
        );
      }
    } catch (error) {
      result.textContent = "";
      showError(form, error);
    }
  });
  last.after(h("div", { class: "wizard" }, button, result, steps));
}

/** API: "Send test event" POSTs a signed {"event": "test"} to the webhook URL as typed, and shows the answer. */
function apiTestEvent(groups, row) {
  const urlField = groups.querySelector('[data-field="webhook_url"]');
  if (!urlField) return;
  const result = h("p", { class: "wizard-result", role: "status" });
  const button = h("button", { type: "button", class: "wizard-check" }, t("wizard.api.test"));
  button.addEventListener("click", async () => {
    const form = button.closest("form");
    clearErrors(form);
    result.textContent = t("wizard.checking");
    try {
      const typed = urlField.querySelector("input").value.trim();
      const answer = await post("/api/v1/wizards/api", { inbox_id: row.id, webhook_url: typed || null });
      result.textContent = `${answer.ok ? "✓" : "✗"} ${answer.detail}`;
      result.className = `wizard-result ${answer.ok ? "step-ok" : "step-failed"}`;
    } catch (error) {
      result.textContent = "";
      showError(form, error);
    }
  });
  urlField.after(h("div", { class: "wizard" }, h("p", { class: "field-help" }, t("wizard.api.help")), button, result));
}

/** WCAG contrast ratio of white text on `hex` (the widget writes white on its colour). */
export function whiteContrast(hex) {
  const channel = (i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  const luminance = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
  return 1.05 / (luminance + 0.05);
}

/** Webchat: a live preview of the widget (colour, greeting, corner, pre-chat question) beside its fields, and
 * a warning when white text on the chosen colour is too faint to read (below 4.5:1). */
function widgetPreview(groups) {
  const widget = groups.querySelector("fieldset.settings-group");
  const control = (name) => widget.querySelector(`[name="${name}"]`);
  if (!widget || !control("color")) return;
  const head = h("div", { class: "preview-head" }, t("wizard.preview.title"));
  const greeting = h("div", { class: "preview-bubble" });
  const prechat = h("div", { class: "preview-prechat" }, t("wizard.preview.prechat"));
  const launcher = h("div", { class: "preview-launcher" });
  const frame = h("div", { class: "preview-frame" }, h("div", { class: "preview-panel" }, head, greeting, prechat), launcher);
  const warning = h("p", { class: "field-error contrast-warning", role: "status" });
  const update = () => {
    const color = /^#[0-9a-f]{6}$/i.test(control("color").value) ? control("color").value : "#2563eb";
    head.style.background = color;
    launcher.style.background = color;
    greeting.textContent = control("greeting").value.trim() || t("wizard.preview.greeting");
    frame.dataset.position = control("position").value;
    prechat.hidden = control("prechat").value === "off";
    const ratio = whiteContrast(color);
    warning.textContent = ratio < 4.5 ? t("wizard.preview.contrast", { ratio: ratio.toFixed(1) }) : "";
    warning.hidden = ratio >= 4.5;
  };
  widget.addEventListener("input", update);
  widget.addEventListener("change", update);
  widget.append(h("div", { class: "widget-preview", "aria-hidden": "true" }, h("p", { class: "field-help" }, t("wizard.preview.caption")), frame), warning);
  update();
}

/** A whole inbox form: name (and channel, when creating), then the settings groups. */
export function inboxForm({ row, context, onSubmit }) {
  const creating = !row;
  let kind = row?.channel || "webchat";
  const groups = h("div", { class: "settings-groups" });
  const render = () => {
    groups.replaceChildren(...settingsFieldsets(kind, row?.settings || {}, context));
    if (kind === "telegram") telegramCheck(groups, row);
    if (kind === "email") emailCheck(groups, row, context);
    if (kind === "webchat") widgetPreview(groups);
    if (kind === "api" && row) apiTestEvent(groups, row);
  };
  const nameField = field({ name: "name", kind: "text", label: t("f.name"), help: t("f.name.help"), required: true }, row?.name);
  const form = h("form", { class: "settings-form inbox-form", novalidate: true }, nameField);
  if (creating) {
    const channel = field(
      { name: "channel", kind: "select", label: t("f.channel"), help: t("f.channel.help"), options: CREATABLE.map((c) => [c, t(`f.channel.${c}`)]) },
      kind,
    );
    channel.querySelector("select").addEventListener("change", (event) => {
      kind = event.target.value;
      render();
    });
    form.append(channel);
  }
  render();
  form.append(groups, h("button", { type: "submit" }, creating ? t("f.add_inbox") : t("f.save")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = { name: form.elements.name.value.trim(), settings: readSettings(form, kind, row?.settings, context) };
    if (creating) body.channel = kind;
    onSubmit(form, body);
  });
  return form;
}
