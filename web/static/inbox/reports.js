// The reports page: pick a period (and an inbox), ask GET /api/v1/reports/summary, draw the numbers.
// Every figure carries data-metric (its path in the summary) and, for durations, data-seconds.

import { get, items, query } from "./api.js";
import { $, $$, fill, h } from "./dom.js";
import { drawCharts, drawKpis } from "./report_charts.js";

const DAY = 86_400_000;

/** 45 → "45s", 750 → "12m 30s", 7260 → "2h 1m", 90000 → "1d 1h". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
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
      ["Conversations created", "conversations.created", number(c.created)],
      ["Resolved", "conversations.resolved", number(c.resolved)],
      ["Unanswered", "conversations.unanswered", number(c.unanswered)],
      ["Open now", "conversations.open_now", number(c.open_now)],
      ["Messages in", "messages.incoming", number(m.incoming)],
      ["Replies out", "messages.outgoing", number(m.outgoing)],
      ["Notes", "messages.notes", number(m.notes)],
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
  fill($("#report-times table"), table(["", "Count", "Average", "Median", "p90"], [row("First response", "first_response"), row("Resolution", "resolution")]));
}

function drawSla(data) {
  const s = data.sla;
  fill(
    $("#report-sla dl"),
    facts([
      ["Attainment", "sla.rate", s.rate === null ? "—" : `${Math.round(s.rate * 1000) / 10}%`],
      ["Met", "sla.met", number(s.met)],
      ["Breached", "sla.breached", number(s.breached)],
      ["Still within target", "sla.pending", number(s.pending)],
    ]),
  );
  if (s.rate === null) $("#report-sla dl").append(h("p", { class: "muted" }, "Set sla_first_response_minutes in an inbox's settings to measure it."));
}

function drawWorkload(data) {
  const rows = data.workload.map((w) =>
    h("tr", { dataset: { agent: w.agent_id } }, h("th", { scope: "row" }, w.name), h("td", {}, metric("workload.open", number(w.open))), h("td", {}, metric("workload.resolved", number(w.resolved)))),
  );
  fill($("#report-workload table"), rows.length ? table(["Agent", "Open now", "Resolved in period"], rows) : h("caption", { class: "muted" }, "Nobody has assigned conversations."));
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
  fill($("#report-labels table"), rows.length ? table(["Label", "This period", "Previous period", "Trend"], rows) : h("caption", { class: "muted" }, "No labelled conversations in this period."));
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
      ["Responses", "csat.responses", number(c.responses)],
      ["Average (1–5)", "csat.average", number(c.average)],
      ["Satisfied (4–5)", "csat.satisfied_percent", percent(c.satisfied_percent)],
      ["Surveys sent", "csat.sent", number(c.sent)],
      ["Response rate", "csat.response_rate", c.response_rate === null ? "—" : `${Math.round(c.response_rate * 1000) / 10}%`],
    ])),
    h("div", { class: "bars" }, bars),
    c.by_agent.length ? h("table", { class: "csat-agents" }, table(["Agent", "Responses", "Average", "Satisfied"], ratingRows(c.by_agent, "agent"))) : null,
    c.by_label.length ? h("table", { class: "csat-labels" }, table(["Label", "Responses", "Average", "Satisfied"], ratingRows(c.by_label, "label"))) : null,
    c.sent ? null : h("p", { class: "muted" }, "No surveys in this period (turn them on per inbox: Settings → Inboxes)."),
  );
}

async function show() {
  const from = $("#report-from").value;
  const to = $("#report-to").value;
  const status = $("#report-status");
  if (!from || !to) return;
  const end = new Date(`${to}T00:00:00Z`).getTime() + DAY; // the "to" day is included
  status.textContent = "Loading…";
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
    status.textContent = `${from} to ${to} (UTC)`;
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
