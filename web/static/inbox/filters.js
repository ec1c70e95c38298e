// The left pane: folders (Mine, Unassigned, All) and filters (status, inbox, label, team), plus search.

import { t } from "./i18n.js";
import { $, fill, h } from "./dom.js";
import { state } from "./state.js";

let changed = () => {};

export function renderFilters() {
  const option = (value, text, current) => h("option", { value, selected: String(current) === String(value) }, text);
  const f = state.filter;
  fill($("#filter-inbox"), option("", t("filter.all_inboxes"), f.inbox_id), [...state.inboxes.values()].map((i) => option(i.id, i.name, f.inbox_id)));
  fill($("#filter-label"), option("", t("filter.any_label"), f.label), state.labels.map((l) => option(l.name, l.name, f.label)));
  fill($("#filter-team"), option("", t("filter.any_team"), f.team_id), [...state.teams.values()].map((t) => option(t.id, t.name, f.team_id)));
  $("#filter-status").value = f.status;
  for (const button of document.querySelectorAll("#folders [data-folder]")) {
    button.classList.toggle("active", button.dataset.folder === f.folder);
    button.setAttribute("aria-pressed", button.dataset.folder === f.folder ? "true" : "false");
  }
}

export function bindFilters(onChange) {
  changed = onChange;
  for (const button of document.querySelectorAll("#folders [data-folder]")) {
    button.addEventListener("click", () => setFilter({ folder: button.dataset.folder }));
  }
  $("#filter-status").addEventListener("change", (e) => setFilter({ status: e.target.value }));
  $("#filter-inbox").addEventListener("change", (e) => setFilter({ inbox_id: e.target.value }));
  $("#filter-label").addEventListener("change", (e) => setFilter({ label: e.target.value }));
  $("#filter-team").addEventListener("change", (e) => setFilter({ team_id: e.target.value }));
  $("#search").addEventListener("keydown", (e) => {
    if (e.key === "Enter") setFilter({ q: e.target.value.trim() });
    if (e.key === "Escape") {
      e.target.value = "";
      setFilter({ q: "" });
      e.target.blur();
    }
  });
}

function setFilter(changes) {
  Object.assign(state.filter, changes);
  sessionStorage.setItem("switchboard.filter", JSON.stringify(state.filter));
  renderFilters();
  changed();
}
