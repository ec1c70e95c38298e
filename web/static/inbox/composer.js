// The composer: reply/note toggle, canned responses on "/", Ctrl+Enter to send, attachments, typing frames.

import { t } from "./i18n.js";
import { upload } from "./api.js";
import { $, bytes, fill, h, toast } from "./dom.js";
import { state } from "./state.js";

const TYPING_REFRESH_MS = 3000;
const TYPING_IDLE_MS = 4000;

/** Canned responses for what follows "/": short codes that start with it first (shortest first), then
 * those whose code or text merely contains it, so `/tha` + Enter picks `/thanks`, never `/hello`. */
export function cannedMatches(canned, q) {
  const rank = (c) => {
    const code = c.short_code.toLowerCase();
    if (code === q) return 0;
    if (code.startsWith(q)) return 1;
    if (code.includes(q)) return 2;
    return c.content.toLowerCase().includes(q) ? 3 : -1;
  };
  return canned
    .map((c) => [rank(c), c])
    .filter(([r]) => r >= 0)
    .sort((a, b) => a[0] - b[0] || a[1].short_code.length - b[1].short_code.length || a[1].short_code.localeCompare(b[1].short_code))
    .map(([, c]) => c);
}

export class Composer {
  /** hooks: {send({body, kind, attachmentIds}) → Promise<bool>, typing(active, isNote)} */
  constructor(hooks) {
    this.hooks = hooks;
    this.form = $("#composer");
    this.text = $("#composer-text");
    this.files = $("#composer-files");
    this.pending = [];
    this.typingSentAt = 0;
    this.idleTimer = null;
    this.cannedIndex = 0;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.text.addEventListener("keydown", (event) => this.keydown(event));
    this.text.addEventListener("input", () => this.input());
    $("#composer-attach").addEventListener("click", () => this.files.click());
    this.files.addEventListener("change", () => this.attach());
    for (const radio of this.form.querySelectorAll('input[name="kind"]')) {
      radio.addEventListener("change", () => this.form.classList.toggle("note-mode", this.kind() === "note"));
    }
  }

  kind() {
    return this.form.querySelector('input[name="kind"]:checked').value;
  }

  setKind(kind) {
    this.form.querySelector(`input[name="kind"][value="${kind}"]`).checked = true;
    this.form.classList.toggle("note-mode", kind === "note");
  }

  reset() {
    this.text.value = "";
    this.pending = [];
    this.renderFiles();
    this.hideCanned();
    this.stopTyping();
  }

  keydown(event) {
    const menu = $("#canned-menu");
    if (!menu.hidden) {
      const options = menu.querySelectorAll("li");
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        const step = event.key === "ArrowDown" ? 1 : -1;
        this.cannedIndex = (this.cannedIndex + step + options.length) % options.length;
        this.highlightCanned();
        return;
      }
      if ((event.key === "Enter" || event.key === "Tab") && options.length && !event.ctrlKey && !event.metaKey) {
        event.preventDefault();
        options[this.cannedIndex].click();
        return;
      }
      if (event.key === "Escape") {
        event.preventDefault();
        this.hideCanned();
        return;
      }
    }
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      this.submit();
    } else if (event.key === "Escape") {
      this.text.blur();
    }
  }

  input() {
    this.updateCanned();
    if (!this.text.value.trim()) {
      this.stopTyping();
      return;
    }
    const now = Date.now();
    if (now - this.typingSentAt > TYPING_REFRESH_MS) {
      this.typingSentAt = now;
      this.hooks.typing(true, this.kind() === "note");
    }
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    clearTimeout(this.idleTimer);
    if (this.typingSentAt) {
      this.typingSentAt = 0;
      this.hooks.typing(false, this.kind() === "note");
    }
  }

  // "/" at the start of a line opens the canned responses whose short code starts with what follows.
  cannedQuery() {
    const before = this.text.value.slice(0, this.text.selectionStart);
    const match = /(?:^|\n)\/([\w-]*)$/.exec(before);
    return match ? match[1].toLowerCase() : null;
  }

  updateCanned() {
    const q = this.cannedQuery();
    if (q === null) return this.hideCanned();
    const found = cannedMatches(state.canned, q);
    const menu = $("#canned-menu");
    if (!found.length) {
      fill(menu, h("li", { class: "empty", role: "option", "aria-disabled": "true" }, t(state.canned.length ? "canned.no_match" : "canned.none")));
      menu.hidden = false;
      return;
    }
    this.cannedIndex = Math.min(this.cannedIndex, found.length - 1);
    fill(
      menu,
      found.slice(0, 8).map((c) =>
        h(
          "li",
          { role: "option", id: `canned-${c.id}`, onmousedown: (e) => e.preventDefault(), onclick: () => this.insertCanned(c) },
          h("strong", {}, `/${c.short_code}`),
          " ",
          h("span", {}, c.content.slice(0, 80)),
        ),
      ),
    );
    menu.hidden = false;
    this.text.setAttribute("aria-controls", "canned-menu");
    this.highlightCanned();
  }

  highlightCanned() {
    $("#canned-menu")
      .querySelectorAll("li")
      .forEach((li, i) => {
        li.classList.toggle("active", i === this.cannedIndex);
        li.setAttribute("aria-selected", i === this.cannedIndex ? "true" : "false");
      });
  }

  insertCanned(canned) {
    const caret = this.text.selectionStart;
    const before = this.text.value.slice(0, caret).replace(/\/[\w-]*$/, "");
    const after = this.text.value.slice(caret);
    this.text.value = before + canned.content + after;
    const position = before.length + canned.content.length;
    this.text.setSelectionRange(position, position);
    this.hideCanned();
    this.text.focus();
  }

  hideCanned() {
    $("#canned-menu").hidden = true;
    this.cannedIndex = 0;
  }

  async attach() {
    for (const file of this.files.files) {
      const data = new FormData();
      data.append("file", file, file.name);
      try {
        const stored = await upload("/api/v1/attachments", data);
        this.pending.push(stored);
      } catch (error) {
        toast(`${file.name}: ${error.message}`, "error");
      }
    }
    this.files.value = "";
    this.renderFiles();
  }

  renderFiles() {
    fill(
      $("#composer-pending"),
      this.pending.map((a, i) =>
        h(
          "li",
          {},
          `${a.filename} (${bytes(a.size)}) `,
          h(
            "button",
            {
              type: "button",
              class: "link",
              "aria-label": t("attachment.remove", { name: a.filename }),
              onclick: () => {
                this.pending.splice(i, 1);
                this.renderFiles();
              },
            },
            "×",
          ),
        ),
      ),
    );
  }

  async submit() {
    const body = this.text.value;
    if (!body.trim() && !this.pending.length) return;
    const sent = await this.hooks.send({
      body,
      kind: this.kind(),
      attachmentIds: this.pending.map((a) => a.id),
    });
    if (sent) this.reset();
  }
}
