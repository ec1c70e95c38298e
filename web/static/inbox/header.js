// The thread header and its actions: assignee, team, status (resolve, reopen, pending, snooze), labels;
// and the top bar's toggles (help, notifications, availability).

import { locale, t } from "./i18n.js";
import { $, fill, h, toast } from "./dom.js";
import { toggleHelp } from "./keys.js";
import { isolated, showControls } from "./names.js";
import { notifications } from "./notify.js";
import { state } from "./state.js";

/** {update(changes) → Promise<bool>, loadEarlier(), reviewSend(), setAvailability(value)} */
let hooks = null;

export function renderHeader() {
  const c = state.current;
  if (!c) return;
  fill($("#thread-title"), `#${c.number ?? c.id} `, isolated(c.contact?.name || c.contact?.email || ""));
  $("#thread-subject").textContent = c.subject || "";
  $("#thread-status").textContent = c.status === "snoozed" && c.snoozed_until ? t("status.snoozed_until", { time: new Date(c.snoozed_until).toLocaleString(locale) }) : t(`status.${c.status}`);
  $("#thread-status").dataset.status = c.status;
  $("#load-earlier").hidden = !state.hasEarlier;
  const option = (value, text, current) => h("option", { value, selected: String(current ?? "") === String(value) }, text);
  fill(
    $("#assign-select"),
    option("", t("assign.none"), c.assignee_id),
    // An <option> holds text only: names keep their direction controls visible instead of isolated.
    option(state.me.id, t("assign.me", { name: showControls(state.me.name) }), c.assignee_id),
    [...state.agents.values()].filter((a) => a.id !== state.me.id && a.active !== false).map((a) => option(a.id, showControls(a.name), c.assignee_id)),
  );
  fill($("#team-select"), option("", t("team.none"), c.team_id), [...state.teams.values()].map((t) => option(t.id, t.name, c.team_id)));
  $("#priority-select").value = c.priority || "";
  $("#resolve").hidden = c.status === "resolved";
  $("#reopen").hidden = c.status === "open";
  fill(
    $("#label-options"),
    state.labels.length
      ? state.labels.map((l) =>
          h(
            "label",
            {},
            h("input", { type: "checkbox", value: l.name, checked: (c.labels || []).includes(l.name), onchange: saveLabels }),
            " ",
            h("span", { class: "label", style: `border-color:${/^#[0-9a-f]{3,8}$/i.test(l.color) ? l.color : "#6b7280"}` }, l.name),
          ),
        )
      : h("p", { class: "muted" }, t("labels.none")),
  );
  fill($("#current-labels"), (c.labels || []).map((name) => h("span", { class: "label" }, name)));
}

function saveLabels() {
  const labels = [...document.querySelectorAll("#label-options input:checked")].map((input) => input.value);
  hooks.update({ labels });
}

export function bindActions(given) {
  hooks = given;
  const update = (changes) => hooks.update(changes);
  $("#assign-select").addEventListener("change", (e) => update({ assignee_id: e.target.value ? Number(e.target.value) : null }));
  $("#team-select").addEventListener("change", (e) => update({ team_id: e.target.value ? Number(e.target.value) : null }));
  $("#priority-select").addEventListener("change", (e) => update({ priority: e.target.value || null }));
  $("#resolve").addEventListener("click", () => update({ status: "resolved" }));
  $("#reopen").addEventListener("click", () => update({ status: "open" }));
  $("#pending").addEventListener("click", () => update({ status: "pending" }));
  $("#snooze-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const value = $("#snooze-until").value;
    if (!value) return toast(t("snooze.pick"), "error");
    update({ status: "snoozed", snoozed_until: new Date(value).toISOString() }).then((ok) => ok && ($("#snooze-menu").open = false));
  });
  for (const button of document.querySelectorAll("[data-snooze-hours]")) {
    button.addEventListener("click", () => {
      const until = new Date(Date.now() + Number(button.dataset.snoozeHours) * 3600000);
      update({ status: "snoozed", snoozed_until: until.toISOString() }).then((ok) => ok && ($("#snooze-menu").open = false));
    });
  }
  $("#load-earlier").addEventListener("click", hooks.loadEarlier);
  $("#review-send").addEventListener("click", hooks.reviewSend);
  $("#help-close").addEventListener("click", toggleHelp);
  $("#help-open").addEventListener("click", toggleHelp);
  $("#notify-toggle").checked = notifications.enabled();
  $("#notify-toggle").addEventListener("change", (e) => (e.target.checked ? notifications.enable() : notifications.disable()));
  $("#availability").value = localStorage.getItem("switchboard.availability") || "online";
  $("#availability").addEventListener("change", (e) => hooks.setAvailability(e.target.value));
}
