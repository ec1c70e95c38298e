// Form fields for the settings and contacts pages: a labelled control with its help text and an error slot,
// reading a form back into JSON, and showing the API's 422 error next to the field it names.
//
// A field spec: {name, label, help?, kind, options?, path?, required?, secret?, min?, max?, step?, placeholder?}
//   kind: text | email | url | number | password | select | checkbox | textarea | list | color | time | date
//   options (select): [[value, label], …]; `list` is a comma- or line-separated list of strings.
//   path: where the API puts the field in its error ("settings.color"); defaults to `name`.
// The API names the field first in its error detail: "body.settings.color: expected …",
// "settings.routing_capacity: must be …", "inbox 7 settings.bot_token: required …", "email: must be …".

import { h } from "./dom.js";
import { t } from "./i18n.js";

let counter = 0;
const nextId = (name) => `f-${name.replace(/[^a-z0-9_-]/gi, "-")}-${++counter}`;

/** One labelled control: <div class="field"><label for>…</label><control><p help><p error></div>. */
export function field(spec, value) {
  const id = nextId(spec.name);
  const helpId = spec.help ? `${id}-help` : null;
  const errorId = `${id}-error`;
  const control = makeControl(spec, value, id);
  control.dataset.path = spec.path || spec.name;
  control.dataset.kind = spec.kind;
  control.setAttribute("aria-describedby", [helpId, errorId].filter(Boolean).join(" "));
  if (spec.required) control.setAttribute("aria-required", "true");
  const label = h("label", { for: id }, spec.label, spec.required ? h("span", { "aria-hidden": "true" }, " *") : null);
  const help = spec.help ? h("p", { class: "field-help", id: helpId }, spec.help) : null;
  const error = h("p", { class: "field-error", id: errorId, hidden: true });
  if (spec.kind === "checkbox") {
    return h("div", { class: "field field-check", dataset: { field: spec.name } }, h("div", { class: "check-row" }, control, label), help, error);
  }
  return h("div", { class: "field", dataset: { field: spec.name } }, label, control, help, error);
}

function makeControl(spec, value, id) {
  const { name, kind } = spec;
  if (kind === "select") {
    return h(
      "select",
      { id, name },
      spec.options.map(([option, text]) => h("option", { value: String(option), selected: String(option) === String(value ?? "") }, text)),
    );
  }
  if (kind === "textarea" || kind === "list") {
    const area = h("textarea", { id, name, rows: spec.rows || 3, placeholder: spec.placeholder });
    area.value = kind === "list" ? (Array.isArray(value) ? value.join("\n") : value ?? "") : value ?? "";
    return area;
  }
  if (kind === "checkbox") return h("input", { id, name, type: "checkbox", checked: value === true });
  const type = kind === "password" ? "password" : kind;
  const input = h("input", {
    id,
    name,
    type,
    min: spec.min,
    max: spec.max,
    step: spec.step,
    placeholder: spec.secret && value ? t("f.secret_kept") : spec.placeholder,
    autocomplete: kind === "password" ? "new-password" : "off",
    spellcheck: kind === "text" ? undefined : false,
  });
  // Secrets are never echoed back into the page: empty means "keep the stored one".
  if (value !== undefined && value !== null && !spec.secret && kind !== "password") input.value = String(value);
  if (kind === "color" && !input.value) input.value = "#2563eb";
  return input;
}

/** The value of one control as JSON: undefined when empty (the key is left out). */
export function valueOf(control) {
  const kind = control.dataset.kind;
  if (kind === "checkbox") return control.checked;
  const raw = control.value.trim();
  if (raw === "") return undefined;
  if (kind === "number") {
    const number = Number(raw);
    return Number.isFinite(number) ? number : raw; // the API names a bad number
  }
  if (kind === "list") return raw.split(/[\n,]+/).map((item) => item.trim()).filter(Boolean);
  return raw;
}

/** Read the controls named by `specs` inside `root` → {name: value} (empty ones left out). */
export function readFields(root, specs) {
  const body = {};
  for (const spec of specs) {
    const control = root.querySelector(`[name="${spec.name}"]`);
    if (!control) continue;
    const value = valueOf(control);
    if (value !== undefined) body[spec.name] = spec.integer && typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
  }
  return body;
}

/** Remove every shown error in `form`. */
export function clearErrors(form) {
  for (const error of form.querySelectorAll(".field-error, .form-error")) {
    error.hidden = true;
    error.textContent = "";
  }
  for (const control of form.querySelectorAll("[aria-invalid]")) control.removeAttribute("aria-invalid");
}

/** The dotted path an API error detail names, normalised: "inbox 7 settings.x: …" → "settings.x". */
export function errorPath(detail) {
  const match = /^([A-Za-z0-9_.[\]\s]+?):\s/.exec(detail || "");
  if (!match) return null;
  return match[1].replace(/^inbox \d+ /, "").replace(/^(body|query)\./, "").trim();
}

function controlFor(form, path) {
  // The longest field path that is the error's path or a prefix of it ("hours.mon[1].end" → "hours.mon[1]").
  let best = null;
  for (const control of form.querySelectorAll("[data-path]")) {
    const own = control.dataset.path;
    const candidates = [own, own.replace(/^settings\./, "")];
    for (const candidate of candidates) {
      const hit = path === candidate || path.startsWith(`${candidate}.`) || path.startsWith(`${candidate}[`) || `settings.${path}` === candidate;
      if (hit && (!best || candidate.length > best.length)) best = { control, length: candidate.length };
    }
  }
  if (best) return best.control;
  const last = path.split(".").pop();
  return form.querySelector(`[name="${last}"]`);
}

/** Show an API error next to the field it names (or at the top of the form); focus that field.
 * Answers true when the error found its field. */
export function showError(form, error) {
  clearErrors(form);
  const detail = error?.message || String(error);
  const path = errorPath(detail);
  const control = path ? controlFor(form, path) : null;
  const slot = control ? document.getElementById(`${control.id}-error`) : null;
  const message = path ? detail.slice(detail.indexOf(": ") + 2) : detail;
  if (control && slot) {
    slot.textContent = message;
    slot.hidden = false;
    control.setAttribute("aria-invalid", "true");
    control.closest("details")?.setAttribute("open", "");
    control.focus();
    return true;
  }
  let box = form.querySelector(".form-error");
  if (!box) {
    box = h("p", { class: "form-error", role: "alert" });
    form.prepend(box);
  }
  box.textContent = detail;
  box.hidden = false;
  return false;
}
