// Admin page for self-service answers and proactive messages: the last 30 days' numbers (from
// /api/v1/reports/summary), articles (write, publish, delete) and proactive rules per webchat inbox.

import { del, get, items, patch, post } from "./api.js";
import { $, fill, h, toast } from "./dom.js";

let inboxes = [];

const percent = (rate) => (rate === null || rate === undefined ? "—" : `${Math.round(rate * 100)}%`);

async function loadStats() {
  const data = await get("/api/v1/reports/summary");
  const s = data.self_service;
  const p = data.proactive;
  const figure = (label, value, id) => h("div", { class: "ss-figure", dataset: { stat: id } }, h("strong", {}, String(value)), h("span", {}, label));
  fill(
    $("#ss-stats"),
    h(
      "div",
      { class: "ss-figures" },
      figure("article views", s.article_views, "article_views"),
      figure("searches", s.searches, "searches"),
      figure("searches with no result", s.searches_without_result, "searches_without_result"),
      figure("deflections (answer found)", s.deflections, "deflections"),
      figure("deflection rate", percent(s.deflection_rate), "deflection_rate"),
      figure("proactive shown", p.shown, "proactive_shown"),
      figure("proactive replied", p.replied, "proactive_replied"),
      figure("proactive conversion", percent(p.conversion_rate), "conversion_rate"),
    ),
    h("h3", {}, "Top searches with no result"),
    s.top_queries_without_result.length
      ? h("ol", { id: "ss-no-result" }, s.top_queries_without_result.map((q) => h("li", {}, `${q.query} (${q.count})`)))
      : h("p", { class: "muted" }, "None — every search found something."),
    h("h3", {}, "Most viewed articles"),
    s.top_articles.length
      ? h("ol", {}, s.top_articles.map((a) => h("li", {}, `${a.title} (${a.views})`)))
      : h("p", { class: "muted" }, "No article views yet."),
  );
}

function inboxOptions(select, { webchatOnly = false, selected = null, any = false } = {}) {
  const options = inboxes
    .filter((inbox) => !webchatOnly || inbox.channel === "webchat")
    .map((inbox) => h("option", { value: String(inbox.id), selected: inbox.id === selected }, inbox.name));
  fill(select, any ? h("option", { value: "" }, "All inboxes") : null, options);
}

function inboxName(id) {
  return id === null ? "All inboxes" : inboxes.find((inbox) => inbox.id === id)?.name || `inbox ${id}`;
}

async function loadArticles() {
  const rows = items(await get("/api/v1/articles?limit=200"));
  fill(
    $("#ss-articles"),
    rows.length ? rows.map(articleRow) : h("p", { class: "muted" }, "No articles yet."),
  );
}

function articleRow(row) {
  const form = h("form", { class: "settings-form" });
  const details = h(
    "details",
    { class: "settings-row", dataset: { id: row.id } },
    h("summary", {}, `${row.title} · ${row.published ? "published" : "draft"} · ${inboxName(row.inbox_id)}${row.locale ? ` · ${row.locale}` : ""} · ${row.views} views`),
    form,
  );
  details.addEventListener("toggle", async () => {
    if (!details.open || form.childElementCount) return;
    const full = await get(`/api/v1/articles/${row.id}`);
    const title = h("input", { name: "title", value: full.title, maxlength: "300" });
    const body = h("textarea", { name: "body", rows: "8" });
    body.value = full.body;
    const published = h("input", { type: "checkbox", name: "published", checked: full.published });
    const link = `${location.origin}${full.url}`;
    fill(
      form,
      h("label", {}, "Title ", title),
      h("label", {}, "Body (Markdown) ", body),
      h("label", {}, published, " Published"),
      full.published ? h("p", {}, "Public link: ", h("a", { href: full.url, target: "_blank", rel: "noopener" }, link)) : null,
      h("div", { class: "row" },
        h("button", { type: "submit" }, "Save"),
        h("button", { type: "button", class: "danger", onclick: () => remove(`/api/v1/articles/${row.id}`, "Article deleted.") }, "Delete")),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await patch(`/api/v1/articles/${row.id}`, { title: title.value, body: body.value, published: published.checked });
        toast("Saved.");
        await loadArticles();
      } catch (error) {
        toast(error.message, "error");
      }
    });
  });
  return details;
}

async function remove(path, message) {
  if (!confirm("Delete it?")) return;
  try {
    await del(path);
    toast(message);
    await Promise.all([loadArticles(), loadRules()]);
  } catch (error) {
    toast(error.message, "error");
  }
}

async function loadRules() {
  const rows = items(await get("/api/v1/proactive_rules"));
  fill(
    $("#ss-rules"),
    rows.length
      ? rows.map((row) =>
          h(
            "div",
            { class: "settings-row", dataset: { id: row.id } },
            h("strong", {}, row.message),
            h(
              "p",
              { class: "muted" },
              [
                inboxName(row.inbox_id),
                row.url_pattern ? `pages ${row.url_pattern}` : "every page",
                `after ${row.min_seconds_on_page} s`,
                row.returning_only ? "returning visitors" : null,
                row.agents_online_only ? "only while agents are online" : null,
                `at most ${row.max_per_visitor}× per visitor`,
              ].filter(Boolean).join(" · "),
            ),
            h("label", {}, h("input", { type: "checkbox", checked: row.enabled, onchange: async (event) => {
              try {
                await patch(`/api/v1/proactive_rules/${row.id}`, { enabled: event.target.checked });
                toast(event.target.checked ? "Rule enabled." : "Rule paused.");
              } catch (error) {
                event.target.checked = !event.target.checked;
                toast(error.message, "error");
              }
            } }), " Enabled"),
            h("button", { type: "button", class: "danger", onclick: () => remove(`/api/v1/proactive_rules/${row.id}`, "Rule deleted.") }, "Delete"),
          ),
        )
      : h("p", { class: "muted" }, "No proactive messages yet."),
  );
}

$("#ss-article-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const inbox = form.elements.inbox_id.value;
  try {
    await post("/api/v1/articles", {
      title: form.elements.title.value,
      body: form.elements.body.value,
      inbox_id: inbox ? Number(inbox) : null,
      locale: form.elements.locale.value.trim(),
      published: form.elements.published.checked,
    });
    form.reset();
    toast("Article added.");
    await loadArticles();
  } catch (error) {
    toast(error.message, "error");
  }
});

$("#ss-rule-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  try {
    await post("/api/v1/proactive_rules", {
      inbox_id: Number(form.elements.inbox_id.value),
      message: form.elements.message.value,
      url_pattern: form.elements.url_pattern.value.trim(),
      min_seconds_on_page: Number(form.elements.min_seconds_on_page.value || 0),
      returning_only: form.elements.returning_only.checked,
      agents_online_only: form.elements.agents_online_only.checked,
      max_per_visitor: Number(form.elements.max_per_visitor.value || 1),
    });
    form.reset();
    toast("Rule added.");
    await loadRules();
  } catch (error) {
    toast(error.message, "error");
  }
});

async function start() {
  inboxes = items(await get("/api/v1/inboxes"));
  inboxOptions($("#ss-article-form").elements.inbox_id, { any: true });
  inboxOptions($("#ss-rule-form").elements.inbox_id, { webchatOnly: true });
  await Promise.all([loadStats(), loadArticles(), loadRules()]);
}

start().catch((error) => toast(error.message, "error"));
