// The reports page: pick a period (and an inbox), ask GET /api/v1/reports/summary, draw the numbers.
// Every figure carries data-metric (its path in the summary) and, for durations, data-seconds.

import { get, items, query } from "./api.js";
import { $, $$, fill, h } from "./dom.js";
import { t } from "./i18n.js";
import { drawCharts, drawKpis } from "./report_charts.js";

const DAY = 86_400_000;

/** 45 → "45s", 750 → "12m 30s", 7260 → "2h 1m", 90000 → "1d 1h". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  if (s < 60) return t("duration.s", { s });
  if (s < 3600) return t("duration.ms", { m: Math.floor(s / 60), s: s % 60 });
  if (s < 86400) return t("duration.hm", { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  return t("duration.dh", { d: Math.floor(s / 86400), h: Math.floor((s % 86400) / 3600) });
}

const percent = (value) => (value === null || value === undefined ? "—" : `${value}%`);
const number = (value) => (value === null || value === undefined ? "—" : String(value));
const dateOnly = (time) => new Date(time).toISOString().slice(0, 10);

function metric(path, text, extra = {}) {
  return h("span", { class: "metric", dataset: { metric: path, ...extra } }, text);
}

function facts(rows) {
  return rows.map(([label, path, text]) => [h("dt", {}, label), h("dd", {}, metric(path, text))]);
}

function table(head, rows) {
  return [h("thead", {}, h("tr", {}, head.map((cell) => h("th", {}, cell)))), h("tbody", {}, rows)];
}

function drawVolumes(data) {
  const c = data.conversations;
  const m = data.messages;
  fill(
    $("#report-volumes dl"),
    facts([
      [t("r.conversations.created"), "conversations.created", number(c.created)],
      [t("r.conversations.resolved"), "conversations.resolved", number(c.resolved)],
      [t("r.conversations.unanswered"), "conversations.unanswered", number(c.unanswered)],
      [t("r.conversations.open_now"), "conversations.open_now", number(c.open_now)],
      [t("r.messages.incoming"), "messages.incoming", number(m.incoming)],
      [t("r.messages.outgoing"), "messages.outgoing", number(m.outgoing)],
      [t("r.messages.notes"), "messages.notes", number(m.notes)],
    ]),
  );
}

function drawTimes(data) {
  const row = (label, key) =>
    h(
      "tr",
      { dataset: { row: key } },
      h("th", { scope: "row" }, label),
      h("td", {}, metric(`${key}.count`, number(data[key].count))),
      ["average", "median", "p90"].map((stat) =>
        h("td", {}, metric(`${key}.${stat}`, duration(data[key][`${stat}_seconds`]), { seconds: data[key][`${stat}_seconds`] ?? "" })),
      ),
    );
  fill($("#report-times table"), table(["", t("r.count"), t("r.average"), t("r.median"), "p90"], [row(t("r.first_response"), "first_response"), row(t("r.resolution"), "resolution")]));
}

function drawSla(data) {
  const s = data.sla;
  fill(
    $("#report-sla dl"),
    facts([
      [t("r.sla.rate"), "sla.rate", s.rate === null ? "—" : `${Math.round(s.rate * 1000) / 10}%`],
      [t("r.sla.met"), "sla.met", number(s.met)],
      [t("r.sla.breached"), "sla.breached", number(s.breached)],
      [t("r.sla.pending"), "sla.pending", number(s.pending)],
    ]),
  );
  // The hint goes after the list: a <dl> may hold only terms and definitions.
  $("#report-sla .sla-hint")?.remove();
  if (s.rate === null) $("#report-sla dl").after(h("p", { class: "muted sla-hint" }, t("r.sla_unset")));
}

function drawWorkload(data) {
  const rows = data.workload.map((w) =>
    h("tr", { dataset: { agent: w.agent_id } }, h("th", { scope: "row" }, w.name), h("td", {}, metric("workload.open", number(w.open))), h("td", {}, metric("workload.resolved", number(w.resolved)))),
  );
  fill($("#report-workload table"), rows.length ? table([t("r.agent"), t("r.conversations.open_now"), t("r.resolved_in_period")], rows) : h("caption", { class: "muted" }, t("r.no_workload")));
}

function trend(now, before) {
  const delta = now - before;
  const text = delta === 0 ? "±0" : delta > 0 ? `▲ +${delta}` : `▼ ${delta}`;
  return h("span", { class: `trend ${delta > 0 ? "up" : delta < 0 ? "down" : "flat"}`, dataset: { metric: "labels.change" } }, text);
}

function drawLabels(data) {
  const rows = data.labels.slice(0, 10).map((l) =>
    h("tr", { dataset: { label: l.name } }, h("th", { scope: "row" }, l.name), h("td", {}, metric("labels.conversations", number(l.conversations))), h("td", {}, metric("labels.previous", number(l.previous))), h("td", {}, trend(l.conversations, l.previous))),
  );
  fill($("#report-labels table"), rows.length ? table([t("r.label"), t("r.this_period"), t("r.previous_period"), t("r.trend")], rows) : h("caption", { class: "muted" }, t("r.no_labels")));
}

function ratingRows(list, key) {
  return list.map((r) =>
    h("tr", { dataset: { [key]: r[key === "agent" ? "agent_id" : "name"] } }, h("th", { scope: "row" }, r.name), h("td", {}, metric("csat.responses", number(r.responses))), h("td", {}, metric("csat.average", number(r.average))), h("td", {}, metric("csat.satisfied_percent", percent(r.satisfied_percent)))),
  );
}

function drawCsat(data) {
  const c = data.csat;
  const total = Math.max(1, c.responses);
  const bars = [5, 4, 3, 2, 1].map((value) =>
    h("div", { class: "bar", dataset: { rating: value } }, h("span", { class: "bar-label" }, String(value)), h("span", { class: "bar-fill", style: `width:${(100 * c.distribution[value]) / total}%` }), metric(`csat.distribution.${value}`, number(c.distribution[value]))),
  );
  fill(
    $("#report-csat div"),
    h("dl", {}, facts([
      [t("r.csat.responses"), "csat.responses", number(c.responses)],
      [t("r.csat.average"), "csat.average", number(c.average)],
      [t("r.csat.satisfied_percent"), "csat.satisfied_percent", percent(c.satisfied_percent)],
      [t("r.csat.sent"), "csat.sent", number(c.sent)],
      [t("r.csat.response_rate"), "csat.response_rate", c.response_rate === null ? "—" : `${Math.round(c.response_rate * 1000) / 10}%`],
    ])),
    h("div", { class: "bars" }, bars),
    c.by_agent.length ? h("table", { class: "csat-agents" }, table([t("r.agent"), t("r.csat.responses"), t("r.average"), t("r.satisfied")], ratingRows(c.by_agent, "agent"))) : null,
    c.by_label.length ? h("table", { class: "csat-labels" }, table([t("r.label"), t("r.csat.responses"), t("r.average"), t("r.satisfied")], ratingRows(c.by_label, "label"))) : null,
    c.sent ? null : h("p", { class: "muted" }, t("r.no_surveys")),
  );
}

async function show() {
  const from = $("#report-from").value;
  const to = $("#report-to").value;
  const status = $("#report-status");
  if (!from || !to) return;
  const end = new Date(`${to}T00:00:00Z`).getTime() + DAY; // the "to" day is included
  status.textContent = t("loading");
  try {
    const params = { from: `${from}T00:00:00Z`, to: new Date(end).toISOString(), inbox_id: $("#report-inbox").value };
    const data = await get(`/api/v1/reports/summary${query(params)}`);
    await drawCharts(params, Math.round((end - new Date(`${from}T00:00:00Z`).getTime()) / DAY));
    drawVolumes(data);
    drawTimes(data);
    drawSla(data);
    drawWorkload(data);
    drawLabels(data);
    drawCsat(data);
    drawKpis(data);
    $("#report").hidden = false;
    status.textContent = t("r.period", { from, to });
    document.body.dataset.loaded = `${from}/${to}/${$("#report-inbox").value}`;
  } catch (error) {
    status.textContent = error.message;
  }
}

function preset(days) {
  const today = Date.now();
  $("#report-to").value = dateOnly(today);
  $("#report-from").value = dateOnly(today - (days - 1) * DAY);
}

async function start() {
  const params = new URLSearchParams(location.search);
  preset(30);
  if (params.get("from")) $("#report-from").value = params.get("from");
  if (params.get("to")) $("#report-to").value = params.get("to");
  try {
    const inboxes = items(await get("/api/v1/inboxes"));
    $("#report-inbox").append(...inboxes.map((i) => h("option", { value: i.id }, i.name)));
    if (params.get("inbox_id")) $("#report-inbox").value = params.get("inbox_id");
  } catch {
    /* the inbox filter is optional */
  }
  $("#report-range").addEventListener("submit", (event) => {
    event.preventDefault();
    show();
  });
  for (const button of $$(".presets button")) {
    button.addEventListener("click", () => {
      preset(Number(button.dataset.days));
      show();
    });
  }
  await show();
}

start();
