"""Phone numbers to E.164 ("+" and 7 to 15 digits). Pure; no numbering-plan database, so the rules are few:

- "+4930 1234-567", "(+49) 30 1234567", "tel:+49301234567" → "+49301234567" (spaces, dots, dashes, brackets go);
- "0049301234567" → "+49301234567" (the "00" international prefix used by most of the world);
- with a default country code, a national number with the country's trunk prefix ("030 1234567" with 49 →
  "+49301234567"; "8 900 123-45-67" with 7 → "+79001234567"; "1 415 555 0100" with 1 → "+14155550100"), and a
  bare number of digits: already international when it starts with the country code and is 11 or more
  digits long ("4930123456" stays national, "79001234567" with 7 is international), national otherwise;
- without a default country code, bare digits (8 to 15) are taken as international ("4915112345678").
Anything else (extensions, "anonymous", letters) raises `ValueError`.
"""

from __future__ import annotations

import re

E164 = re.compile(r"\+[1-9]\d{6,14}")
_SEPARATORS = re.compile(r"[\s.\-()/]")
_TRUNK_PREFIX = {"1": "1", "7": "8"}  # NANP dials 1, Russia/Kazakhstan 8; most of the world 0


def to_e164(raw: str, default_country_code: str | None = None) -> str:
    """`raw` as an E.164 number; raises `ValueError` naming what is wrong."""
    text = _SEPARATORS.sub("", raw.strip().removeprefix("tel:"))
    if not text:
        raise ValueError("empty")
    if text.startswith("+"):
        number = text
    elif not text.isdigit():
        raise ValueError(f"not a phone number: {raw[:40]!r}")
    elif text.startswith("00"):
        number = "+" + text[2:]
    elif default_country_code is None:
        if len(text) < 8:
            raise ValueError(f"too short for an international number (and no default country code): {raw[:40]!r}")
        number = "+" + text
    else:
        number = _national(text, default_country_code)
    if not E164.fullmatch(number):
        raise ValueError(f"not an E.164 number (+ and 7 to 15 digits): {raw[:40]!r}")
    return number


def _national(digits: str, country: str) -> str:
    trunk = _TRUNK_PREFIX.get(country, "0")
    if country == "1" and len(digits) == 11 and digits.startswith("1"):
        return "+" + digits  # "1 415 555 0100": the trunk prefix and the country code are the same digit
    if digits.startswith(trunk):
        return f"+{country}{digits[len(trunk) :]}"
    if digits.startswith(country) and len(digits) >= 11:
        return "+" + digits
    if len(digits) < 6:
        raise ValueError(f"too short for a phone number (an extension?): {digits!r}")
    return f"+{country}{digits}"
