"""Splitting a plain-text reply into what is new and what is quoted history or signature.

Recognises `>` quoting, "On … wrote:" (Gmail, Apple Mail, Thunderbird, also in a few other languages),
Outlook's "-----Original Message-----" and "From: … Sent: …" blocks, underscore separators and the `-- `
signature delimiter. The full text is always kept elsewhere; this only decides what is shown unfolded.
"""

from __future__ import annotations

import re

WROTE = re.compile(
    r"^(On|Am|Le|El|Il|Op|Den|W dniu)\b.{0,300}\b(wrote|schrieb|a écrit|escribió|ha scritto|schreef|skrev|napisał)\b.{0,300}:\s*$",
    re.IGNORECASE,
)
OUTLOOK = re.compile(r"^-{2,}\s*(Original Message|Ursprüngliche Nachricht|Message d'origine)\s*-{2,}\s*$", re.I)
UNDERSCORES = re.compile(r"^_{20,}\s*$")
HEADER_BLOCK = re.compile(r"^\*?(From|Von|De)\s*:\*?\s", re.IGNORECASE)
SENT_LINE = re.compile(r"^\*?(Sent|Date|Gesendet|Envoyé)\s*:\*?\s", re.IGNORECASE)


def split_quoted(text: str) -> tuple[str, str]:
    """`(new text, quoted history and signature)`; their concatenation is the original (modulo spacing)."""
    lines = text.splitlines()
    cut = _quote_start(lines)
    cut = min(cut, _signature_start(lines, cut))
    visible = "\n".join(lines[:cut]).rstrip()
    quoted = "\n".join(lines[cut:]).strip("\n")
    if not visible.strip():  # all quoted (e.g. a forward): show everything rather than nothing
        return text.strip("\n"), ""
    return visible, quoted


def _quote_start(lines: list[str]) -> int:
    for index, line in enumerate(lines):
        stripped = line.strip()
        if OUTLOOK.match(stripped) or UNDERSCORES.match(stripped):
            return index
        if WROTE.match(stripped):
            return index
        # "On Tue, … <x@y>\nwrote:" — Gmail wraps long attribution lines
        if (
            index + 1 < len(lines)
            and re.match(r"^(On|Am|Le)\b", stripped)
            and WROTE.match(f"{stripped} {lines[index + 1].strip()}")
        ):
            return index
        if HEADER_BLOCK.match(stripped) and any(SENT_LINE.match(n.strip()) for n in lines[index + 1 : index + 4]):
            return index
        if stripped.startswith(">") and all(not n.strip() or n.lstrip().startswith(">") for n in lines[index:]):
            return index
    return len(lines)


def _signature_start(lines: list[str], limit: int) -> int:
    for index in range(limit):
        if lines[index] in ("-- ", "--") and limit - index <= 15:
            return index
    return limit
