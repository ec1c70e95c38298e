// Insert a knowledge-base article link into a reply: an "Insert article" button in the composer bar opens a
// search over the published articles of the conversation's inbox and the global ones; picking one inserts a Markdown
// link to its public page at the cursor.

import { get, items, query } from "./api.js";
import { $, fill, h } from "./dom.js";
import { state } from "./state.js";

const boot = JSON.parse($("#boot")?.textContent || "{}");
const base = (boot.base_url || location.origin).replace(/\/$/, "");

function insert(text, article) {
  const link = `[${article.title.replace(/[[\]]/g, "")}](${base}${article.url})`;
  const start = text.selectionStart ?? text.value.length;
  const end = text.selectionEnd ?? start;
  text.value = text.value.slice(0, start) + link + text.value.slice(end);
  text.selectionStart = text.selectionEnd = start + link.length;
  text.dispatchEvent(new Event("input", { bubbles: true }));
  text.focus();
}

function install() {
  const bar = $("#composer .composer-bar");
  const text = $("#composer-text");
  if (!bar || !text) return;
  const search = h("input", { type: "search", id: "article-search", placeholder: "Search articles…", "aria-label": "Search articles" });
  const results = h("ul", { id: "article-results", class: "canned-menu article-results", role: "listbox" });
  const popover = h("div", { id: "article-picker", class: "article-picker", hidden: true }, search, results);
  const button = h("button", { type: "button", id: "composer-article", class: "link", "aria-expanded": "false" }, "Insert article");
  let timer = null;

  async function find() {
    const q = search.value.trim();
    // The open conversation's inbox: its own articles and the global ones.
    const inbox = state.conversations.get(state.selectedId)?.inbox_id;
    try {
      const rows = items(await get(`/api/v1/articles${query({ q, published: "true", inbox_id: inbox, limit: 8 })}`));
      fill(
        results,
        rows.length
          ? rows.map((row) =>
              h("li", { role: "option", dataset: { articleId: row.id }, onclick: () => pick(row) }, h("strong", {}, row.title), " ", h("span", { class: "muted" }, row.excerpt)),
            )
          : h("li", { class: "muted" }, q ? "No published article matches." : "No published articles yet."),
      );
    } catch (error) {
      fill(results, h("li", { class: "muted" }, error.message));
    }
  }

  function toggle(open) {
    popover.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) {
      search.value = "";
      find();
      search.focus();
    }
  }

  function pick(row) {
    toggle(false);
    insert(text, row);
  }

  button.addEventListener("click", () => toggle(popover.hidden));
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(find, 200);
  });
  search.addEventListener("keydown", (event) => {
    if (event.key === "Escape") toggle(false);
    if (event.key === "Enter") {
      event.preventDefault();
      results.querySelector("li[data-article-id]")?.click();
    }
  });
  bar.insertBefore(button, bar.querySelector("#composer-send"));
  bar.parentElement.insertBefore(popover, bar);
}

install();
