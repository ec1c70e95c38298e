// Keyboard shortcuts and the "?" help overlay.

import { $ } from "./dom.js";

export const SHORTCUTS = [
  ["j / k", "next / previous conversation"],
  ["e", "resolve the open conversation"],
  ["a", "assign the open conversation"],
  ["r", "reply (focus the composer)"],
  ["n", "write a private note"],
  ["/", "search conversations"],
  ["Ctrl+Enter", "send"],
  ["?", "show this help"],
  ["Esc", "close menus and this help"],
];

/** actions: {next, previous, resolve, assign, reply, note, search} */
export function bindKeys(actions) {
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      closeHelp();
      return;
    }
    const target = event.target;
    const typing = target.closest?.("input, textarea, select, [contenteditable]");
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    const action = {
      j: actions.next,
      k: actions.previous,
      e: actions.resolve,
      a: actions.assign,
      r: actions.reply,
      n: actions.note,
      "/": actions.search,
      "?": toggleHelp,
    }[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });
}

export function toggleHelp() {
  const help = $("#help");
  help.hidden = !help.hidden;
  if (!help.hidden) help.querySelector("button")?.focus();
}

function closeHelp() {
  $("#help").hidden = true;
}
