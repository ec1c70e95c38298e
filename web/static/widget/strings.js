// The widget's words in English and Russian; `pick` chooses from data-locale, then the browser's languages.

export const STRINGS = {
  en: {
    title: "Chat with us",
    greeting: "Hi! How can we help you today?",
    online: "We're online",
    away: "We're away right now. We usually reply {time}.",
    "reply.minutes": "in a few minutes",
    "reply.hours": "in a few hours",
    "reply.day": "within a day",
    awayEmail: "Leave your email and we'll send the answer there too:",
    emailLabel: "Email",
    save: "Save",
    saved: "Thanks! We'll also reply to {email}.",
    prechatIntro: "Before we start, please tell us who you are.",
    name: "Name",
    email: "Email",
    start: "Start chat",
    skip: "Skip",
    required: "Please fill in your name and a valid email.",
    invalidEmail: "Please enter a valid email.",
    placeholder: "Write a message…",
    messageLabel: "Message",
    send: "Send",
    attach: "Attach a file",
    close: "Close chat",
    launcher: "Open chat",
    conversation: "Conversation",
    sending: "Sending…",
    sent: "Sent",
    seen: "Seen",
    queued: "Will be sent when you're back online",
    waiting: "Will be sent in a moment",
    notSent: "Not sent: {reason}",
    typing: "{name} is typing…",
    support: "Support",
    offline: "You're offline. Messages will be sent when the connection is back.",
    reconnecting: "Reconnecting…",
    rateLimited: "You're sending messages too fast — we'll send it in a moment.",
    sendingSlowly: "Sending slowly…",
    slowServer: "We're very busy right now — your messages will go through in a moment.",
    tooLong: "This message is too long.",
    fileTooLarge: "The file is too large (at most {size}).",
    fileType: "This type of file is not accepted.",
    uploadFailed: "The file could not be sent.",
    refused: "The chat is not available here.",
    identityRefused: "We could not verify your account, so the chat is not available.",
  },
  ru: {
    title: "Напишите нам",
    greeting: "Здравствуйте! Чем можем помочь?",
    online: "Мы на связи",
    away: "Сейчас нас нет на месте. Обычно мы отвечаем {time}.",
    "reply.minutes": "в течение нескольких минут",
    "reply.hours": "в течение нескольких часов",
    "reply.day": "в течение дня",
    awayEmail: "Оставьте email — пришлём ответ и туда:",
    emailLabel: "Email",
    save: "Сохранить",
    saved: "Спасибо! Ответ придёт и на {email}.",
    prechatIntro: "Перед началом, пожалуйста, представьтесь.",
    name: "Имя",
    email: "Email",
    start: "Начать чат",
    skip: "Пропустить",
    required: "Пожалуйста, укажите имя и правильный email.",
    invalidEmail: "Пожалуйста, укажите правильный email.",
    placeholder: "Напишите сообщение…",
    messageLabel: "Сообщение",
    send: "Отправить",
    attach: "Прикрепить файл",
    close: "Закрыть чат",
    launcher: "Открыть чат",
    conversation: "Переписка",
    sending: "Отправляется…",
    sent: "Отправлено",
    seen: "Прочитано",
    queued: "Отправится, когда появится связь",
    waiting: "Отправится через минуту",
    notSent: "Не отправлено: {reason}",
    typing: "{name} печатает…",
    support: "Поддержка",
    offline: "Нет связи. Сообщения отправятся, когда связь восстановится.",
    reconnecting: "Переподключение…",
    rateLimited: "Слишком много сообщений подряд — отправим чуть позже.",
    sendingSlowly: "Отправляется медленно…",
    slowServer: "Сейчас у нас много обращений — сообщения скоро уйдут.",
    tooLong: "Сообщение слишком длинное.",
    fileTooLarge: "Файл слишком большой (не больше {size}).",
    fileType: "Такой тип файла не принимается.",
    uploadFailed: "Не удалось отправить файл.",
    refused: "Чат здесь недоступен.",
    identityRefused: "Не удалось подтвердить вашу учётную запись, поэтому чат недоступен.",
  },
};

/** The locale to use: an explicit "en"/"ru" wins, then the first browser language we have strings for. */
export function pick(explicit, languages) {
  if (explicit && STRINGS[explicit]) return explicit;
  for (const language of languages || []) {
    const base = String(language).toLowerCase().split("-")[0];
    if (STRINGS[base]) return base;
  }
  return "en";
}

/** A translator for `locale`: t("typing", {name: "Ann"}). */
export function translator(locale) {
  const table = STRINGS[locale] || STRINGS.en;
  return (key, vars = {}) =>
    (table[key] ?? STRINGS.en[key] ?? key).replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}
