"""The acknowledgement settings of an inbox, kept in `Inbox.settings` next to the others.

Pure: shapes, defaults and validation only.

    {"acknowledgement_enabled": true, "acknowledgement_locale": "ru", "acknowledgement_reply_minutes": 240,
     "acknowledgement_text": {"en": "We got it (#{number}); expect an answer by {expected}. {portal_url}"}}

`acknowledgement_reply_minutes` is the expected first reply in business minutes when no SLA policy with a
first-response target applies. `acknowledgement_text` overrides the catalogue's text per language; it may use
`{number}`, `{expected}` and `{portal_url}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from inbox.errors import Invalid
from inbox.i18n import LOCALES

ENABLED = "acknowledgement_enabled"
LOCALE = "acknowledgement_locale"
REPLY_MINUTES = "acknowledgement_reply_minutes"
TEXT = "acknowledgement_text"
KEYS = frozenset({ENABLED, LOCALE, REPLY_MINUTES, TEXT})
PLACEHOLDERS = ("{number}", "{expected}", "{portal_url}")
MAX_MINUTES = 60 * 24 * 30
MAX_TEXT = 2000


@dataclass(frozen=True, slots=True)
class AckSettings:
    enabled: bool = False
    locale: str = "en"
    reply_minutes: int | None = None
    texts: Mapping[str, str] = field(default_factory=dict)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def check(settings: Mapping[str, Any]) -> None:
    """Reject malformed acknowledgement keys; the message names the field."""
    if ENABLED in settings and not isinstance(settings[ENABLED], bool):
        raise Invalid(f"settings.{ENABLED}: must be true or false")
    if LOCALE in settings and settings[LOCALE] not in LOCALES:
        raise Invalid(f"settings.{LOCALE}: must be one of {', '.join(LOCALES)}")
    if REPLY_MINUTES in settings:
        value = settings[REPLY_MINUTES]
        if value is not None and not (_is_int(value) and 1 <= value <= MAX_MINUTES):
            raise Invalid(f"settings.{REPLY_MINUTES}: must be a whole number from 1 to {MAX_MINUTES}, or null")
    if TEXT in settings:
        texts = settings[TEXT]
        if not isinstance(texts, Mapping) or not set(texts) <= set(LOCALES):
            raise Invalid(f"settings.{TEXT}: must map a language ({', '.join(LOCALES)}) to a text")
        for code, text in texts.items():
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
                raise Invalid(f"settings.{TEXT}.{code}: must be a text of 1 to {MAX_TEXT} characters")


def of(settings: Mapping[str, Any]) -> AckSettings:
    """The acknowledgement settings of an inbox; malformed values (written before validation) count as absent."""
    minutes = settings.get(REPLY_MINUTES)
    texts = settings.get(TEXT)
    return AckSettings(
        enabled=settings.get(ENABLED) is True,
        locale=settings[LOCALE] if settings.get(LOCALE) in LOCALES else "en",
        reply_minutes=minutes if _is_int(minutes) and minutes > 0 else None,
        texts={k: v for k, v in texts.items() if k in LOCALES and isinstance(v, str)}
        if isinstance(texts, Mapping)
        else {},
    )


def fill(template: str, *, number: int, expected: str, portal_url: str) -> str:
    """An admin's text with its placeholders filled (plain replacement: other braces stay as written)."""
    for name, value in zip(PLACEHOLDERS, (str(number), expected, portal_url), strict=True):
        template = template.replace(name, value)
    return template
