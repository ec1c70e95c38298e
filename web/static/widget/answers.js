// Self-service answers in the widget: a search box and suggested articles before the visitor starts a chat,
// matching articles while they type their first message, and "Did you find your answer?" on an article
// (yes → counted as a deflection; no → back to the chat). Article HTML was rendered from Markdown and
// sanitised with nh3 by the server; it is parsed inertly and stripped again here before it is shown.

import { call, words } from "./selfserve-strings.js";

const ALLOWED = new Set(["P", "H1", "H2", "H3", "H4", "H5", "H6", "UL", "OL", "LI", "A", "EM", "STRONG", "CODE",
  "PRE", "BLOCKQUOTE", "BR", "HR", "IMG", "TABLE", "THEAD", "TBODY", "TR", "TH", "TD", "DEL", "S"]);

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "on") for (const [type, fn] of Object.entries(value)) el.addEventListener(type, fn);
    else if (value !== null && value !== undefined && value !== false) el.setAttribute(name, value === true ? "" : value);
  }
  el.append(...children.filter((child) => child !== null && child !== undefined));
  return el;
}

/** The article's HTML as DOM nodes: only known tags, only href/src/alt/title, links open in a new tab. */
function articleNodes(html) {
  const doc = new DOMParser().parseFromString(`<body>${html}</body>`, "text/html");
  const clean = (node) => {
    for (const child of [...node.children]) {
      if (!ALLOWED.has(child.tagName)) {
        child.replaceWith(document.createTextNode(child.textContent || ""));
        continue;
      }
      for (const attr of [...child.attributes]) {
        const ok = ["href", "src", "alt", "title"].includes(attr.name) && !/^\s*javascript:/i.test(attr.value);
        if (!ok) child.removeAttribute(attr.name);
      }
      if (child.tagName === "A") {
        child.setAttribute("target", "_blank");
        child.setAttribute("rel", "noopener noreferrer");
      }
      clean(child);
    }
  };
  clean(doc.body);
  return [...doc.body.childNodes].map((node) => document.importNode(node, true));
}

export function installAnswers(ctx) {
  const w = words(ctx.locale);
  const panel = h("section", { class: "sb-answers", id: "answers", "aria-label": w("searchLabel"), hidden: true });
  const input = h("input", { type: "search", id: "answers-q", maxlength: "200", placeholder: w("searchPlaceholder"),
    "aria-label": w("searchLabel") });
  const heading = h("p", { class: "sb-answers-title", id: "answers-title" });
  const list = h("ul", { class: "sb-answers-list", id: "answers-list" });
  const article = h("article", { class: "sb-article", id: "answers-article", hidden: true });
  panel.append(h("form", { class: "sb-answers-search", on: { submit: (e) => { e.preventDefault(); search(input.value, true); } } }, input), heading, list);
  const suggest = h("section", { class: "sb-suggest", id: "answers-suggest", hidden: true, "aria-live": "polite" });
  const body = ctx.$("body");
  body.prepend(panel, article);
  ctx.$("composer").before(suggest);
  const link = h("link", { rel: "stylesheet", href: "/static/widget/selfserve.css" });
  document.head.append(link);

  let loaded = false;
  let timer = null;
  let lastTyped = "";
  let dismissed = false; // the visitor said "No, I want to chat" for what they are typing

  const chatting = () => ctx.state.messages.size > 0 || ctx.state.queue.length > 0;

  function showList(items, title, empty) {
    heading.textContent = items.length ? title : empty;
    list.replaceChildren(...items.map((item) => h("li", {}, h("button", { type: "button", class: "sb-answer",
      "data-article-id": String(item.id), on: { click: () => open(item.id) } }, h("strong", {}, item.title),
      h("span", {}, item.excerpt)))));
  }

  async function search(query, counted) {
    const q = query.trim();
    try {
      const data = await ctx.call("GET", "/widget/answers", q ? { q, locale: ctx.locale, ...(counted ? {} : { count: "0" }) } : { locale: ctx.locale });
      showList(data.items, q ? w("results") : w("suggested"), q ? w("noResults") : "");
    } catch {
      heading.textContent = "";
    }
  }

  async function open(id) {
    let data;
    try {
      data = await ctx.call("GET", `/widget/answers/${id}`);
    } catch {
      return;
    }
    const answer = async (helpful) => {
      await ctx.call("POST", `/widget/answers/${id}/feedback`, {}, { helpful }).catch(() => null);
      if (helpful) {
        feedback.replaceChildren(h("p", { class: "sb-thanks", role: "status" }, w("thanks")));
      } else {
        close();
        dismissed = true;
        suggest.hidden = true;
        ctx.$("text").focus();
      }
    };
    const feedback = h("div", { class: "sb-feedback" },
      h("p", {}, w("helpfulQuestion")),
      h("div", { class: "sb-row" },
        h("button", { type: "button", class: "sb-primary", id: "answer-yes", on: { click: () => answer(true) } }, w("yes")),
        h("button", { type: "button", id: "answer-no", on: { click: () => answer(false) } }, w("no"))));
    article.replaceChildren(
      h("button", { type: "button", class: "sb-back", on: { click: close } }, `← ${w("back")}`),
      h("h2", {}, data.title),
      h("div", { class: "sb-article-body" }, ...articleNodes(data.html)),
      feedback,
    );
    article.hidden = false;
    article.dataset.articleId = String(id);
    panel.hidden = true;
    ctx.$("messages").hidden = true;
    body.scrollTop = 0;
  }

  function close() {
    article.hidden = true;
    ctx.$("messages").hidden = false;
    update();
  }

  async function typed() {
    const text = ctx.$("text").value.trim();
    if (text === lastTyped) return;
    lastTyped = text;
    dismissed = false;
    if (chatting() || text.length < 3) {
      suggest.hidden = true;
      return;
    }
    try {
      const data = await ctx.call("GET", "/widget/answers", { q: text, locale: ctx.locale, count: "0" });
      if (ctx.$("text").value.trim() !== text || dismissed) return;
      const items = data.items.slice(0, 3);
      suggest.replaceChildren(h("p", {}, w("matching")), ...items.map((item) => h("button", { type: "button",
        class: "sb-answer", "data-article-id": String(item.id), on: { click: () => open(item.id) } }, item.title)));
      suggest.hidden = items.length === 0;
    } catch {
      suggest.hidden = true;
    }
  }

  ctx.$("text").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(typed, 350);
  });

  function update() {
    // Before a chat starts: the search panel; once it has started, only the conversation.
    panel.hidden = chatting() || !article.hidden || !ctx.state.uploadToken;
    if (chatting()) suggest.hidden = true;
  }

  return {
    welcomed() {
      if (!loaded && !chatting()) {
        loaded = true;
        search("", false);
      }
      update();
    },
    rendered: update,
  };
}
