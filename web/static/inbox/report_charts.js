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
    { class: "chart-table", dataset: { metric: data.metric } },
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
