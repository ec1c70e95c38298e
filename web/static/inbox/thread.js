// The right-hand pane's thread: messages with delivery status, notes set apart, attachments,
// activity lines, and email HTML only inside a sandboxed iframe.

import { t } from "./i18n.js";
import { markdown } from "./markdown.js";
import { $, bytes, clock, fill, h } from "./dom.js";
import { isolated } from "./names.js";
import { state } from "./state.js";


export function renderThread(onRetry) {
  const box = $("#messages");
  const ordered = [...state.messages.values()].sort((a, b) => a.id - b.id);
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 60;
  // Chat replies a continuity mail carried to a visitor who had not seen them (its mail may still be sending).
  const emailed = new Map();
  for (const m of ordered) {
    for (const id of m.kind === "activity" ? m.meta?.continuity?.replies || [] : []) emailed.set(id, m.status);
  }
  fill(
    box,
    ordered.map((m) => message(m, onRetry, emailed)),
  );
  if (atBottom || box.dataset.conversation !== String(state.selectedId)) box.scrollTop = box.scrollHeight;
  box.dataset.conversation = String(state.selectedId);
}

function message(m, onRetry, emailed) {
  if (m.kind === "activity") {
    return h(
      "li",
      { class: "message activity", dataset: { id: m.id } },
      h("span", {}, m.body),
      " ",
      h("time", { datetime: m.created_at }, clock(m.created_at)),
      // Email continuity: the mail of unseen chat replies has a delivery status of its own.
      m.meta?.continuity ? delivery(m, onRetry) : null,
    );
  }
  const fresh = m.id > state.seenMessageId && state.seenMessageId > 0;
  const classes = ["message", m.kind, `status-${m.status}`];
  if (fresh) classes.push("fresh");
  return h(
    "li",
    { class: classes.join(" "), dataset: { id: m.id, kind: m.kind, status: m.status } },
    h(
      "div",
      { class: "message-head" },
      m.sender?.name
        ? isolated(m.sender.name, "sender")
        : h("span", { class: "sender" }, t(m.kind === "incoming" ? "sender.customer" : "sender.agent")),
      m.kind === "note" ? h("span", { class: "note-badge" }, t("note")) : null,
      h("time", { datetime: m.created_at }, clock(m.created_at)),
      m.meta?.edited_at ? h("span", { class: "edited" }, t("edited")) : null,
      automatic(m) ? h("span", { class: "automatic-badge", title: automaticTitle(m) }, t("automatic")) : null,
    ),
    // Why an email landed in this conversation ("threaded by References"), so a wrong match is easy to spot.
    m.meta?.thread_reason ? h("div", { class: "thread-reason" }, m.meta.thread_reason) : null,
    body(m),
    m.attachments?.length ? h("ul", { class: "attachments" }, m.attachments.map(attachment)) : null,
    m.kind === "outgoing" ? delivery(m, onRetry) : null,
    emailed.get(m.id) === "sent" ? h("div", { class: "sent-by-email" }, t("sent_by_email")) : null,
  );
}

// Machine-written messages: our own (a proactive greeting: `meta.automatic` true) and incoming auto-replies
// and bounces (the channel's reason, e.g. "Auto-Submitted: auto-replied", in `meta.automatic`, or for mail
// stored before that in `meta.email.automatic`).
function automatic(m) {
  return m.meta?.automatic || m.meta?.email?.automatic || null;
}

function automaticTitle(m) {
  const reason = automatic(m);
  return typeof reason === "string" ? `${t("automatic.title")} (${reason})` : t("automatic.title");
}

function body(m) {
  if (m.html) {
    const frame = h("iframe", {
      class: "email-html",
      sandbox: "",
      referrerpolicy: "no-referrer",
      title: t("email_content"),
    });
    frame.srcdoc = m.html;
    if (!m.html.includes("data-blocked-src")) return h("div", { class: "message-body" }, frame);
    // Remote images stay blocked (no tracking pixels) until the agent asks for them.
    const show = h("button", { type: "button", class: "show-images link" }, t("show_images"));
    show.onclick = () => {
      frame.srcdoc = withImages(m.html);
      show.remove();
    };
    return h("div", { class: "message-body" }, show, frame);
  }
  // The agent's own words are Markdown: show them as the customer will (bold, links, lists…).
  if (m.kind === "outgoing" || m.kind === "note") return h("div", { class: "message-body markdown" }, markdown(m.body || ""));
  return h("div", { class: "message-body" }, m.body);
}

function withImages(html) {
  const doc = new DOMParser().parseFromString(html, "text/html");
  for (const img of doc.querySelectorAll("img[data-blocked-src]")) {
    const src = img.getAttribute("data-blocked-src");
    if (/^https?:\/\//i.test(src)) img.setAttribute("src", src);
    img.removeAttribute("data-blocked-src");
  }
  return doc.documentElement.outerHTML;
}

function attachment(a) {
  const isImage = /^image\/(png|jpeg|gif|webp)$/.test(a.content_type);
  return h(
    "li",
    {},
    isImage ? h("img", { src: a.url, alt: a.filename, class: "thumb", loading: "lazy" }) : null,
    h("a", { href: a.url, download: a.filename, class: "attachment-name" }, isolated(a.filename)),
    h("span", { class: "size" }, ` ${bytes(a.size)}`),
  );
}

function delivery(m, onRetry) {
  const seen = m.kind === "outgoing" && m.status !== "failed" && m.status !== "queued" && state.customerSeen >= m.id;
  const text = t(seen ? "delivery.seen" : `delivery.${m.status}`);
  return h(
    "div",
    { class: "delivery" },
    h("span", { class: `delivery-status delivery-${m.status}` }, text),
    m.status === "failed" && m.error ? h("span", { class: "delivery-error" }, ` — ${m.error}`) : null,
    m.status === "failed" ? h("button", { class: "retry", type: "button", onclick: () => onRetry(m.id) }, t("retry")) : null,
  );
}
