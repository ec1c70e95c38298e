// Words of the self-service panel and proactive greetings, in English and Russian (see strings.js).

const WORDS = {
  en: {
    searchLabel: "Search our help articles",
    searchPlaceholder: "Search for answers…",
    suggested: "Popular articles",
    results: "Articles",
    noResults: "No articles found — write to us below.",
    matching: "These articles may answer your question:",
    back: "Back",
    helpfulQuestion: "Did you find your answer?",
    yes: "Yes",
    no: "No, I want to chat",
    thanks: "Glad we could help!",
  },
  ru: {
    searchLabel: "Поиск по статьям помощи",
    searchPlaceholder: "Найти ответ…",
    suggested: "Популярные статьи",
    results: "Статьи",
    noResults: "Статей не нашлось — напишите нам ниже.",
    matching: "Возможно, эти статьи ответят на ваш вопрос:",
    back: "Назад",
    helpfulQuestion: "Вы нашли ответ?",
    yes: "Да",
    no: "Нет, хочу написать",
    thanks: "Рады, что помогли!",
  },
};

export function words(locale) {
  const table = WORDS[locale] || WORDS.en;
  return (name) => table[name] || WORDS.en[name] || name;
}

/** A JSON request to the widget's self-service endpoints, authorised like an upload. */
export async function call(ctx, method, path, params = {}, body = undefined) {
  const search = new URLSearchParams({ key: ctx.config.key, ...params });
  const headers = { Authorization: `Bearer ${ctx.state.uploadToken}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${path}?${search}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new Error((data && data.error && data.error.detail) || `request failed (${response.status})`);
  return data;
}
