// Charts of the reports page: for each metric the server draws the SVG (GET /api/v1/reports/timeseries.svg)
// and this module puts the same series as a table beside it, the previous period in its own column, with a
// CSV link. Every cell carries data-start / data-value / data-previous for tests.

import { get, query } from "./api.js";
import { $, fill, h } from "./dom.js";

export const CHARTS = [
  ["created", "Conversations created"],
  ["resolved", "Resolved"],
  ["first_response_business_median", "Median first response (business hours, s)"],
  ["backlog_open", "Open at the end of each bucket"],
];

function bucketFor(days) {
  if (days > 180) return "month";
  if (days > 45) return "week";
  return "day";
}

async function svgOf(path) {
  const response = await fetch(path, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`chart: ${response.status}`);
  const doc = new DOMParser().parseFromString(await response.text(), "image/svg+xml");
  return document.importNode(doc.documentElement, true);
}

function seriesTable(data) {
  const points = data.series[0]?.points || [];
  return h(
    "table",
    // A scrolling region: focusable and named, so a keyboard reaches every row (WCAG 2.1.1).
    { class: "chart-table", tabindex: "0", "aria-label": `${data.metric}: figures per bucket`, dataset: { metric: data.metric } },
    h("thead", {}, h("tr", {}, h("th", {}, "Bucket"), h("th", {}, "This period"), h("th", {}, "Previous"))),
    h(
      "tbody",
      {},
      points.map((p) =>
        h(
          "tr",
          { dataset: { start: p.start } },
          h("th", { scope: "row" }, p.start.slice(0, 10)),
          h("td", { dataset: { value: p.value ?? "" } }, p.value ?? "—"),
          h("td", { dataset: { previous: p.previous ?? "" } }, p.previous ?? "—"),
        ),
      ),
    ),
  );
}

export async function drawCharts(params, days) {
  const bucket = bucketFor(days);
  const host = $("#report-charts");
  const figures = await Promise.all(
    CHARTS.map(async ([metric, title]) => {
      const q = query({ ...params, metric, bucket });
      const [data, svg] = await Promise.all([get(`/api/v1/reports/timeseries${q}`), svgOf(`/api/v1/reports/timeseries.svg${q}`)]);
      return h(
        "figure",
        { class: "report-chart", id: `chart-${metric}`, dataset: { metric } },
        h("figcaption", {}, title, " ", h("a", { href: `/api/v1/reports/timeseries.csv${q}`, download: `${metric}.csv`, class: "csv" }, "CSV")),
        h("div", { class: "chart-body" }, svg, seriesTable(data)),
      );
    }),
  );
  fill(host, figures);
  const exports = ["conversations", "agent", "team", "inbox", "channel", "label", "csat_comments", "volume_by_hour"];
  fill(
    $("#report-exports"),
    exports.map((name) => h("a", { href: `/api/v1/reports/${name}.csv${query(params)}`, download: `${name}.csv`, dataset: { export: name } }, `${name}.csv`)),
  );
}

const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const fmt = (seconds) => {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
};

function clocksTable(kpis) {
  const rows = [];
  for (const [key, label] of [["first_response", "First response"], ["next_response", "Next response (reply wait)"], ["resolution", "Resolution"]]) {
    for (const clock of ["business", "wall"]) {
      const d = kpis[key][clock];
      rows.push(
        h(
          "tr",
          { dataset: { kpi: `${key}.${clock}` } },
          h("th", { scope: "row" }, `${label} · ${clock === "business" ? "business hours" : "wall clock"}`),
          h("td", { dataset: { stat: "count" } }, d.count),
          ["median", "p90", "average"].map((stat) => h("td", { dataset: { stat, seconds: d[`${stat}_seconds`] ?? "" } }, fmt(d[`${stat}_seconds`]))),
        ),
      );
    }
  }
  return h(
    "table",
    { class: "kpi-clocks" },
    h("thead", {}, h("tr", {}, ["", "Count", "Median", "p90", "Average"].map((c) => h("th", {}, c)))),
    h("tbody", {}, rows),
  );
}

function groupTable(rows) {
  return h(
    "table",
    { class: "kpi-groups" },
    h("thead", {}, h("tr", {}, ["", "Created", "Resolved", "Reopened", "First response (business, median)", "Resolution (business, median)"].map((c) => h("th", {}, c)))),
    h(
      "tbody",
      {},
      rows.map((row) =>
        h(
          "tr",
          { dataset: { key: row.key ?? "" } },
          h("th", { scope: "row" }, row.name),
          h("td", {}, row.created),
          h("td", {}, row.resolved),
          h("td", {}, row.reopened),
          h("td", { dataset: { seconds: row.first_response.business.median_seconds ?? "" } }, fmt(row.first_response.business.median_seconds)),
          h("td", { dataset: { seconds: row.resolution.business.median_seconds ?? "" } }, fmt(row.resolution.business.median_seconds)),
        ),
      ),
    ),
  );
}

function heatmap(volume) {
  const max = Math.max(1, ...volume.weekdays.flat());
  return h(
    "table",
    { class: "heatmap", dataset: { timezone: volume.timezone } },
    h("thead", {}, h("tr", {}, h("th", {}, ""), Array.from({ length: 24 }, (_, hour) => h("th", {}, String(hour))))),
    h(
      "tbody",
      {},
      volume.weekdays.map((counts, day) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, DAYS[day]),
          counts.map((n, hour) =>
            h("td", { dataset: { day, hour, count: n }, title: `${DAYS[day]} ${hour}:00 · ${n}`, style: `--heat:${(n / max).toFixed(2)}` }, n || ""),
          ),
        ),
      ),
    ),
  );
}

function comments(list, kind) {
  if (!list.length) return h("p", { class: "muted" }, "No comments in this period.");
  return h(
    "ol",
    { class: "csat-comments", dataset: { order: kind } },
    list.map((c) => h("li", { dataset: { rating: c.rating, conversation: c.conversation_id } }, h("strong", {}, `${c.rating}/5`), " ", c.comment, h("span", { class: "muted" }, ` — ${c.contact}${c.agent ? ` · ${c.agent}` : ""}`))),
  );
}

/** The KPI cards: both clocks, per-dimension rows, spikes, CSAT comments and the weekday × hour volume. */
export function drawKpis(data) {
  const k = data.kpis;
  let dimension = $("#kpi-dimension")?.value || "agent";
  const groups = h("div", { id: "kpi-group-table" }, groupTable(k.by[dimension]));
  const picker = h(
    "select",
    { id: "kpi-dimension", "aria-label": "Group the times by", onchange: (event) => { dimension = event.target.value; fill(groups, groupTable(k.by[dimension])); } },
    ["agent", "team", "inbox", "channel", "label"].map((d) => h("option", { value: d, selected: d === dimension }, `per ${d}`)),
  );
  fill(
    $("#report-kpis"),
    h("h2", {}, "Response and resolution times"),
    h("p", { class: "muted" }, `Created ${k.created} · resolved ${k.resolved} · reopened ${k.reopened} · replies per resolution ${k.replies_per_resolution ?? "—"} · business hours: ${k.calendar}`),
    clocksTable(k),
    picker,
    groups,
  );
  fill(
    $("#report-spikes"),
    h("h2", {}, "Spikes"),
    data.spikes.length
      ? h("ul", {}, data.spikes.map((s) => h("li", { dataset: { label: s.label, count: s.this_week, baseline: s.baseline } }, s.text)))
      : h("p", { class: "muted" }, "No label stands out this week."),
  );
  fill($("#report-comments"), h("h2", {}, "CSAT comments"), h("h3", {}, "Lowest first"), comments(data.csat_comments.lowest, "lowest"), h("h3", {}, "Newest first"), comments(data.csat_comments.newest, "newest"));
  fill($("#report-heatmap"), h("h2", {}, `Conversations by weekday and hour (${data.volume_by_hour.timezone})`), heatmap(data.volume_by_hour));
}
