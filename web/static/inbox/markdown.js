// The agent's Markdown as the customer reads it: **bold**, *italic*, `code`, [links](https://…), and "- " or
// "1. " lists. Builds DOM nodes (never innerHTML), so a message can hold no markup of its own; anything
// else stays as typed. Mirrors what the e-mail channel renders with markdown-it for the common cases.

import { h } from "./dom.js";

const INLINE = /(`[^`\n]+`)|(\*\*[^*\n]+\*\*|__[^_\n]+__)|(\*[^*\s][^*\n]*\*|_[^_\s][^_\n]*_)|(\[[^\]\n]+\]\((?:https?:\/\/|mailto:)[^)\s]+\))|(https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"])/g;

/** Inline Markdown in one line → an array of strings and elements. */
export function inline(text) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    if (match.index > last) parts.push(text.slice(last, match.index));
    const [whole, code, strong, em, link, bare] = match;
    if (code) parts.push(h("code", {}, code.slice(1, -1)));
    else if (strong) parts.push(h("strong", {}, inline(strong.slice(2, -2))));
    else if (em) parts.push(h("em", {}, inline(em.slice(1, -1))));
    else if (link) {
      const [, label, href] = /^\[([^\]]+)\]\(([^)]+)\)$/.exec(link);
      parts.push(h("a", { href, target: "_blank", rel: "noopener noreferrer" }, inline(label)));
    } else if (bare) parts.push(h("a", { href: bare, target: "_blank", rel: "noopener noreferrer" }, bare));
    last = match.index + whole.length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}

/** A whole message → nodes to put in a `white-space: pre-wrap` box. */
export function markdown(source) {
  const out = [];
  let list = null;
  for (const line of source.split("\n")) {
    const item = /^\s*(?:([-*+])|(\d+)[.)])\s+(.*)$/.exec(line);
    if (item) {
      const tag = item[1] ? "ul" : "ol";
      if (!list || list.tagName.toLowerCase() !== tag) {
        list = h(tag, {});
        out.push(list);
      }
      list.append(h("li", {}, inline(item[3])));
      continue;
    }
    list = null;
    out.push(...inline(line), "\n");
  }
  if (out.at(-1) === "\n") out.pop();
  return out;
}
