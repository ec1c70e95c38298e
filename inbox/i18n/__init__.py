"""Message catalogues (one JSON file per language: `en.json`, `ru.json`) and the choice of language.

A catalogue maps a dotted key (`login.title`) to a text with `{name}` placeholders, or to a plural table
(`{"one": …, "few": …, "many": …, "other": …}`) chosen by Babel's CLDR plural rules for `count`. Keys under
`js.` are what the browser modules need (`web/static/inbox/i18n.js` reads them from the page).

Pure: reads only its own JSON files, imports nothing from `inbox`, so pages and e-mails can both use it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date

HERE = Path(__file__).resolve().parent
LOCALES: tuple[str, ...] = ("en", "ru")
DEFAULT = "en"
LANGUAGE_NAMES: Mapping[str, str] = {"en": "English", "ru": "Русский"}

Entry = str | dict[str, str]


@cache
def catalogue(locale: str) -> Mapping[str, Entry]:
    """Every key of one language (`en` for a language we have no catalogue for)."""
    code = locale if locale in LOCALES else DEFAULT
    loaded: dict[str, Entry] = json.loads((HERE / f"{code}.json").read_text(encoding="utf-8"))
    return loaded


@cache
def _plural_rule(locale: str) -> Locale:
    return Locale.parse(locale)


def translate(locale: str, key: str, /, count: int | None = None, **values: object) -> str:
    """The text of `key` in `locale` (falling back to English, then to the key itself), filled in."""
    entry = catalogue(locale).get(key)
    if entry is None:
        locale, entry = DEFAULT, catalogue(DEFAULT).get(key, key)
    if isinstance(entry, dict):
        form = _plural_rule(locale).plural_form(count or 0) if count is not None else "other"
        entry = entry.get(form) or entry["other"]
    if count is not None:
        values = {"count": count, **values}
    return entry.format_map(values) if values else entry


def long_date(locale: str, day: date) -> str:
    """`3 December 2025` / `3 декабря 2025 г.`, as the language writes a date."""
    return format_date(day, format="long", locale=locale if locale in LOCALES else DEFAULT)


def browser_catalogue(locale: str) -> dict[str, Entry]:
    """The `js.*` keys (without the prefix) for the agent inbox's modules."""
    return {key[3:]: entry for key, entry in catalogue(locale).items() if key.startswith("js.")}


def supported(code: str | None) -> str | None:
    """`ru-RU` → `ru` when there is a catalogue for it; None otherwise."""
    if not code:
        return None
    base = code.strip().lower().replace("_", "-").split("-")[0]
    return base if base in LOCALES else None


def negotiate(accept_language: str | None, *, default: str = DEFAULT) -> str:
    """The best language of an `Accept-Language` header that has a catalogue (by q-value, then order)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        code = supported(tag)
        if code is not None and quality > 0:
            ranked.append((-quality, position, code))
    return min(ranked)[2] if ranked else default
