// Settings: business hours (a weekly grid of intervals, a time zone and holidays) and SLA policies (targets in
// minutes), as forms over /api/v1/business_hours and /api/v1/sla_policies. The API's 422 error shows next to
// the field it names ("calendar.hours.mon[1].end: must be after start").

import { del, get, items, patch, post } from "./api.js";
import { $, fill, h, toast } from "./dom.js";
import { clearErrors, field, readFields, showError } from "./fields.js";
import { t } from "./i18n.js";

const section = document.body.dataset.section;
const collection = document.body.dataset.collection;
const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
let inboxes = [];

// ── business hours ───────────────────────────────────────────────────────────────────────────
let uid = 0;
const id = (stem) => `${stem}-${++uid}`;

function errorSlot(control) {
  return h("p", { class: "field-error", id: `${control.id}-error`, hidden: true });
}

function intervalRow(day, interval) {
  const start = h("input", { id: id(`${day}-start`), type: "text", inputmode: "numeric", size: 5, placeholder: "09:00", class: "start" });
  const end = h("input", { id: id(`${day}-end`), type: "text", inputmode: "numeric", size: 5, placeholder: "17:00", class: "end" });
  start.value = interval?.start ?? "09:00";
  end.value = interval?.end ?? "17:00";
  for (const control of [start, end]) control.setAttribute("aria-describedby", `${control.id}-error`);
  const row = h(
    "div",
    { class: "interval" },
    h("label", { for: start.id }, t("hours.from")),
    start,
    h("label", { for: end.id }, t("hours.to")),
    end,
    h("button", { type: "button", class: "link", onclick: () => row.remove() }, t("hours.remove_interval", { day: t(`hours.day.${day}`) })),
    errorSlot(start),
    errorSlot(end),
  );
  return row;
}

function dayRow(day, intervals) {
  const list = h("div", { class: "intervals", dataset: { day } });
  for (const interval of intervals) list.append(intervalRow(day, interval));
  const group = h(
    "div",
    { class: "hours-day", role: "group", "aria-labelledby": `${id("d")}` },
    h("div", { class: "day-name", id: `d-${uid}` }, t(`hours.day.${day}`)),
    h(
      "div",
      {},
      list,
      h("button", { type: "button", class: "link", onclick: () => list.append(intervalRow(day)) }, t("hours.add_interval", { day: t(`hours.day.${day}`) })),
    ),
  );
  // The day's own error ("hours.mon: intervals overlap") goes under the day.
  const anchor = h("span", { id: id(`${day}-day`), tabindex: "-1", dataset: { path: `calendar.hours.${day}` } });
  group.lastChild.prepend(anchor);
  group.lastChild.append(errorSlot(anchor));
  return group;
}

function holidayRow(holiday) {
  const row = h(
    "div",
    { class: "holiday" },
    field({ name: "date", kind: "date", label: t("hours.holiday_date"), path: "calendar.holidays[].date" }, holiday?.date),
    field({ name: "holiday_name", kind: "text", label: t("hours.holiday_name"), path: "calendar.holidays[].name" }, holiday?.name),
    field({ name: "yearly", kind: "checkbox", label: t("hours.yearly") }, holiday?.yearly === true),
    h("button", { type: "button", class: "link", onclick: () => row.remove() }, t("hours.remove_holiday")),
  );
  return row;
}

/** Give each interval and holiday control the path the API names it by (its index as it will be sent). */
function numberPaths(form) {
  for (const list of form.querySelectorAll(".intervals")) {
    list.querySelectorAll(".interval").forEach((row, index) => {
      row.querySelector(".start").dataset.path = `calendar.hours.${list.dataset.day}[${index}].start`;
      row.querySelector(".end").dataset.path = `calendar.hours.${list.dataset.day}[${index}].end`;
    });
  }
  form.querySelectorAll(".holiday").forEach((row, index) => {
    row.querySelector("[name=date]").dataset.path = `calendar.holidays[${index}].date`;
    row.querySelector("[name=holiday_name]").dataset.path = `calendar.holidays[${index}].name`;
    row.querySelector("[name=yearly]").dataset.path = `calendar.holidays[${index}].yearly`;
  });
}

function readCalendar(form) {
  const hours = {};
  for (const list of form.querySelectorAll(".intervals")) {
    hours[list.dataset.day] = Array.from(list.querySelectorAll(".interval"), (row) => ({
      start: row.querySelector(".start").value.trim(),
      end: row.querySelector(".end").value.trim(),
    }));
  }
  const holidays = Array.from(form.querySelectorAll(".holiday"), (row) => ({
    date: row.querySelector("[name=date]").value,
    yearly: row.querySelector("[name=yearly]").checked,
    name: row.querySelector("[name=holiday_name]").value.trim(),
  }));
  return { timezone: form.elements.timezone.value.trim(), hours, holidays };
}

function hoursForm(row) {
  const calendar = row?.calendar || {
    timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC",
    hours: Object.fromEntries(DAYS.map((day) => [day, day === "sat" || day === "sun" ? [] : [{ start: "09:00", end: "17:00" }]])),
    holidays: [],
  };
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const listId = id("zones");
  const timezone = field({ name: "timezone", kind: "text", label: t("hours.timezone"), help: t("hours.timezone.help"), path: "calendar.timezone", required: true }, calendar.timezone);
  timezone.querySelector("input").setAttribute("list", listId);
  const holidays = h("div", { class: "holidays" }, (calendar.holidays || []).map(holidayRow));
  const form = h(
    "form",
    { class: "settings-form hours-form", novalidate: true },
    field({ name: "name", kind: "text", label: t("hours.name"), help: t("hours.name.help"), required: true }, row?.name),
    timezone,
    h("datalist", { id: listId }, zones.map((zone) => h("option", { value: zone }))),
    h(
      "fieldset",
      { class: "settings-group" },
      h("legend", {}, t("hours.week")),
      h("p", { class: "field-help" }, t("hours.week.help")),
      h("div", { class: "hours-grid" }, DAYS.map((day) => dayRow(day, calendar.hours?.[day] || []))),
    ),
    h(
      "fieldset",
      { class: "settings-group" },
      h("legend", {}, t("hours.holidays")),
      holidays,
      h("button", { type: "button", class: "link", onclick: () => holidays.append(holidayRow()) }, t("hours.add_holiday")),
    ),
    h("button", { type: "submit" }, row ? t("f.save") : t("hours.add")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    numberPaths(form);
    const body = { name: form.elements.name.value.trim(), calendar: readCalendar(form) };
    try {
      if (row) await patch(`${collection}/${row.id}`, body);
      else await post(collection, body);
      toast(row ? t("f.saved") : t("f.added"));
      await load(row?.id);
      if (!row) fill($("#settings-create"), hoursForm(null));
    } catch (error) {
      showError(form, error);
    }
  });
  return form;
}

// ── SLA policies ─────────────────────────────────────────────────────────────────────────────
const TARGETS = ["first_response", "next_response", "resolution"];

function slaForm(row) {
  const minutes = (seconds) => (seconds == null ? undefined : Math.round(seconds / 60));
  const specs = [
    { name: "name", kind: "text", label: t("sla.name"), help: t("sla.name.help"), required: true },
    ...(row
      ? []
      : [
          {
            name: "inbox_id",
            kind: "select",
            label: t("sla.inbox"),
            help: t("sla.inbox.help"),
            options: [["", t("sla.any_inbox")], ...inboxes.map((inbox) => [inbox.id, inbox.name])],
            integer: true,
          },
          {
            name: "priority",
            kind: "select",
            label: t("sla.priority"),
            help: t("sla.priority.help"),
            options: [["", t("sla.any_priority")], ...["urgent", "high", "medium", "low"].map((p) => [p, t(`priority.${p}`)])],
          },
        ]),
    ...TARGETS.map((target) => ({
      name: `${target}_minutes`,
      path: `${target}_seconds`,
      kind: "number",
      min: 1,
      label: t(`sla.${target}`),
      help: t(`sla.${target}.help`),
    })),
    { name: "warning_minutes", path: "warning_seconds", kind: "number", min: 0, label: t("sla.warning"), help: t("sla.warning.help") },
  ];
  const values = row
    ? { name: row.name, warning_minutes: minutes(row.warning_seconds), ...Object.fromEntries(TARGETS.map((x) => [`${x}_minutes`, minutes(row[`${x}_seconds`])])) }
    : { warning_minutes: 15 };
  const form = h(
    "form",
    { class: "settings-form sla-form", novalidate: true },
    specs.map((spec) => field(spec, values[spec.name])),
    h("button", { type: "submit" }, row ? t("f.save") : t("sla.add")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const read = readFields(form, specs);
    const body = { name: read.name ?? "" };
    if (!row) {
      if (read.inbox_id !== undefined) body.inbox_id = Number(read.inbox_id);
      if (read.priority !== undefined) body.priority = read.priority;
    }
    const seconds = (value) => (typeof value === "number" ? Math.round(value * 60) : value);
    for (const target of TARGETS) {
      const value = read[`${target}_minutes`];
      if (value !== undefined) body[`${target}_seconds`] = seconds(value);
      else if (row) body[`${target}_seconds`] = null; // emptied: no target
    }
    if (read.warning_minutes !== undefined) body.warning_seconds = seconds(read.warning_minutes);
    try {
      if (row) await patch(`${collection}/${row.id}`, body);
      else await post(collection, body);
      toast(row ? t("f.saved") : t("f.added"));
      await load(row?.id);
      if (!row) fill($("#settings-create"), slaForm(null));
    } catch (error) {
      showError(form, error);
    }
  });
  return form;
}

function slaTitle(row) {
  const inbox = row.inbox_id ? inboxes.find((item) => item.id === row.inbox_id)?.name || `#${row.inbox_id}` : t("sla.any_inbox");
  const priority = row.priority ? t(`priority.${row.priority}`) : t("sla.any_priority");
  return `${row.name} · ${inbox} · ${priority}`;
}

// ── the page ─────────────────────────────────────────────────────────────────────────────────
const PAGES = {
  business_hours: { form: hoursForm, title: (row) => `${row.name} · ${row.calendar?.timezone || ""}` },
  sla_policies: { form: slaForm, title: slaTitle },
};
const page = PAGES[section];

function rowView(row, openId) {
  return h(
    "details",
    { class: "settings-row", dataset: { id: row.id }, open: row.id === openId },
    h("summary", {}, page.title(row)),
    page.form(row),
    h(
      "button",
      {
        type: "button",
        class: "danger",
        onclick: async () => {
          if (!confirm(t("f.confirm_delete", { name: row.name }))) return;
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
    inboxes = items(await get("/api/v1/inboxes"));
    const rows = items(await get(collection));
    fill($("#settings-list"), rows.length ? rows.map((row) => rowView(row, openId)) : h("p", { class: "muted" }, t("f.none_yet")));
  } catch (error) {
    toast(error.message, "error");
  }
}

load().then(() => fill($("#settings-create"), page.form(null)));
