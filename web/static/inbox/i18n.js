// The agent inbox's words: the page embeds its catalogue (the `js.*` keys of inbox/i18n/<lang>.json) as
// JSON in <script id="i18n">; `t("list.empty")` looks a key up, `t("folder.count", {count: 3})` picks the
// plural form with Intl.PluralRules. A missing key shows itself, so a gap is visible, never silent.

const element = document.getElementById("i18n");
const table = element ? JSON.parse(element.textContent || "{}") : {};
export const locale = document.documentElement.lang || "en";
const plurals = new Intl.PluralRules(locale);

export function t(key, values = {}) {
  let entry = table[key];
  if (entry === undefined) return key;
  if (typeof entry === "object") entry = entry[plurals.select(values.count ?? 0)] ?? entry.other;
  return entry.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

// The language picker submits itself when changed (its button is for pages without scripts).
for (const select of document.querySelectorAll("select[data-autosubmit]")) {
  select.addEventListener("change", () => select.form.requestSubmit());
  select.form?.querySelector(".js-hide")?.setAttribute("hidden", "");
}
