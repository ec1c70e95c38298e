// How people read a contact's identities: "Telegram Ann Smith", "Website visitor since 3 Dec", "Email ann@…".

import { locale, t } from "./i18n.js";

const day = (iso) => (iso ? new Intl.DateTimeFormat(locale, { day: "numeric", month: "short" }).format(new Date(iso)) : "");

/** An identity as a person reads it: "Telegram Ann Smith", "Website visitor since 3 Dec", "Email ann@…". */
export function identityText(identity) {
  const { kind, value, name } = identity;
  switch (kind) {
    case "email":
      return t("contacts.identity.email", { value });
    case "telegram":
      return t("contacts.identity.telegram", { value: value.startsWith("@") ? value : name || `#${value}` });
    case "vk":
      return t("contacts.identity.vk", { value: name || `id${value}` });
    case "phone":
      return t("contacts.identity.phone", { value });
    case "webchat":
      return identity.created_at ? t("contacts.identity.webchat_since", { date: day(identity.created_at) }) : t("contacts.identity.webchat");
    default:
      // "<inbox id>:<the API caller's own user id>": the user id is what the integration knows them by.
      return t("contacts.identity.external", { value: value.split(":").slice(1).join(":") || name || value });
  }
}

