// Admin channel health: every inbox with its state, last fetch/send, last error, backlog; and the quarantine.
// Polls the admin JSON every few seconds (both lists are small).
import { del, get, items, post } from "./api.js";
import { $, fill, h, toast } from "./dom.js";

const EVERY_MS = 3000;

function when(seconds) {
  if (!seconds) return "never";
  const date = new Date(seconds * 1000);
  return date.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function ago(seconds, now) {
  if (!seconds) return "";
  const diff = Math.max(0, Math.round(now - seconds));
  if (diff < 60) return `${diff}s ago`;
  if (diff < 3600) return `${Math.floor(diff / 60)}m ago`;
  return `${Math.floor(diff / 3600)}h ago`;
}

function timeCell(seconds, now, name) {
  return h("td", { class: name }, seconds ? h("time", { datetime: new Date(seconds * 1000).toISOString(), title: ago(seconds, now) }, when(seconds)) : "never");
}

const STATE_TEXT = {
  ok: "OK",
  failing: "Failing",
  starting: "Starting",
  elsewhere: "Runs in another process",
  idle: "Idle",
  misconfigured: "Settings invalid",
};

function row(item, now) {
  const receiver = item.receiver || {};
  const where = receiver.holder && !receiver.this_process ? `receiver: ${receiver.holder}` : "";
  const outbox = item.outbox || { queued: 0, retrying: 0 };
  const backlog = [
    `outbox ${outbox.queued} queued, ${outbox.retrying} retrying`,
    item.fetch_backlog ? `${item.fetch_backlog} to fetch` : null,
    item.quarantined ? `${item.quarantined} quarantined` : null,
  ].filter(Boolean);
  return h(
    "tr",
    { dataset: { inboxId: item.inbox_id, state: item.state }, class: `health-row state-${item.state}${item.failing ? " alarm" : ""}` },
    h("th", { scope: "row" }, `${item.inbox_name} `, h("span", { class: "muted" }, `(${item.channel} #${item.inbox_id})`)),
    h("td", { class: "state" }, h("span", { class: `badge badge-${item.state}` }, STATE_TEXT[item.state] || item.state), where ? h("div", { class: "muted small" }, where) : null),
    timeCell(item.last_fetch_at, now, "last-fetch"),
    timeCell(item.last_send_at, now, "last-send"),
    h("td", { class: "last-error" }, item.last_error ? [h("div", {}, item.last_error), h("div", { class: "muted small" }, when(item.last_error_at))] : "—"),
    h("td", { class: "failing-since" }, item.failing_since ? `${when(item.failing_since)} (${ago(item.failing_since, now)})` : "—"),
    h("td", { class: "backlog" }, backlog.map((line) => h("div", {}, line))),
  );
}

async function act(path, action) {
  try {
    if (action === "discard") {
      if (!confirm("Discard this message for good?")) return;
      await del(path);
      toast("Discarded.");
    } else {
      const answer = await post(`${path}/retry`);
      toast(answer?.delivered ? `Delivered to conversation ${answer.delivered.conversation_id}.` : "Processed.");
    }
  } catch (error) {
    toast(error.message, "error");
  }
  await refresh();
}

function quarantined(item) {
  const path = `/api/v1/quarantine/${item.id}`;
  return h(
    "div",
    { class: "settings-row quarantined", dataset: { id: item.id } },
    h("div", { class: "q-head" }, h("strong", {}, item.subject || "(no subject)"), " ", h("span", { class: "muted" }, `from ${item.sender || "unknown"} · ${item.inbox_deleted ? `deleted inbox #${item.inbox_id}` : item.inbox_name} · ${item.size} bytes`)),
    h("div", { class: "q-reason" }, item.reason),
    h("div", { class: "muted small" }, `quarantined ${new Date(item.created_at).toLocaleString()}, ${item.attempts} attempt(s)`),
    h(
      "div",
      { class: "q-actions" },
      h("a", { href: item.raw_url, download: `quarantined-${item.id}.eml`, class: "q-download" }, "Download original"),
      item.inbox_deleted ? null : h("button", { type: "button", class: "q-retry", onclick: () => act(path, "retry") }, "Retry"),
      h("button", { type: "button", class: "q-discard danger", onclick: () => act(path, "discard") }, "Discard"),
    ),
  );
}

let busy = false;
export async function refresh() {
  if (busy) return;
  busy = true;
  try {
    const [status, held] = await Promise.all([get("/api/v1/channels/status"), get("/api/v1/quarantine")]);
    const now = status.now || Date.now() / 1000;
    const rows = items(status);
    fill($("#health-rows"), rows.length ? rows.map((item) => row(item, now)) : h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No inboxes yet.")));
    const list = items(held);
    fill($("#quarantine-list"), list.length ? list.map(quarantined) : h("p", { class: "muted", id: "quarantine-empty" }, "Nothing in quarantine."));
    fill($("#health-updated"), `Updated ${new Date().toLocaleTimeString()}.`);
  } catch (error) {
    fill($("#health-updated"), `Could not refresh: ${error.message}`);
  } finally {
    busy = false;
  }
}

refresh();
setInterval(refresh, EVERY_MS);
