"""Agents' Markdown → Telegram text plus `MessageEntity` list, and splitting over the 4096 limit. Pure.

Entities (not MarkdownV2) are used so that no character of the agent's text can break parsing on
Telegram's side: whatever is not recognised below is sent literally. Offsets and lengths are in UTF-16
code units, as the Bot API requires. Recognised: ``` fences (with a language), `code`, **bold**,
__bold__, *italic*, _italic_, ~~strike~~, [text](url), `# heading` lines (bold), backslash escapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from telegram import MessageEntity

LIMIT = 4096
FENCE = re.compile(r"```([\w+-]*)[ \t]*\n(.*?)\n?```", re.DOTALL)
INLINE = re.compile(
    r"(?P<code>`[^`\n]+`)"
    r"|\*\*(?P<bold>.+?)\*\*"
    r"|(?<!\w)__(?P<bold2>.+?)__(?!\w)"
    r"|~~(?P<strike>.+?)~~"
    r"|(?<![\w*])\*(?P<italic>[^\s*](?:.*?[^\s\\])?)\*(?![\w*])"
    r"|(?<![\w_])_(?P<italic2>[^\s_](?:.*?[^\s\\])?)_(?![\w_])"
    r"|\[(?P<label>[^\]\n]+)\]\((?P<url>(?:https?|tg|mailto):[^)\s]+)\)"
    r"|\\(?P<escaped>[\\`*_{}\[\]()#+\-.!~>|])"
)
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class _Builder:
    parts: list[str] = field(default_factory=list)
    position: int = 0  # in UTF-16 units
    entities: list[MessageEntity] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.position += utf16_len(text)

    def wrap(self, kind: str, inner: str, *, parse: bool = True, **extra: str) -> None:
        start = self.position
        if parse:
            self.inline(inner)
        else:
            self.add(inner)
        if self.position > start:
            self.entities.append(MessageEntity(kind, start, self.position - start, **extra))  # type: ignore[arg-type]

    def inline(self, text: str) -> None:
        index = 0
        for match in INLINE.finditer(text):
            self.add(text[index : match.start()])
            index = match.end()
            group = match.lastgroup
            if group == "code":
                self.wrap(MessageEntity.CODE, match.group("code")[1:-1], parse=False)
            elif group in ("bold", "bold2"):
                self.wrap(MessageEntity.BOLD, match.group(group))
            elif group == "strike":
                self.wrap(MessageEntity.STRIKETHROUGH, match.group("strike"))
            elif group in ("italic", "italic2"):
                self.wrap(MessageEntity.ITALIC, match.group(group))
            elif group in ("label", "url"):
                self.wrap(MessageEntity.TEXT_LINK, match.group("label"), url=match.group("url"))
            else:
                self.add(match.group("escaped"))
        self.add(text[index:])

    def block(self, text: str) -> None:
        index = 0
        for match in HEADING.finditer(text):
            self.inline(text[index : match.start()])
            self.wrap(MessageEntity.BOLD, match.group(1))
            index = match.end()
        self.inline(text[index:])


def to_entities(markdown: str) -> tuple[str, list[MessageEntity]]:
    """Plain text and its formatting entities for one Markdown message."""
    builder = _Builder()
    source = markdown.strip()
    index = 0
    for match in FENCE.finditer(source):
        builder.block(source[index : match.start()])
        language = match.group(1)
        body = match.group(2)
        if language:
            builder.wrap(MessageEntity.PRE, body, parse=False, language=language)
        else:
            builder.wrap(MessageEntity.PRE, body, parse=False)
        index = match.end()
    builder.block(source[index:])
    return "".join(builder.parts), sorted(builder.entities, key=lambda e: (e.offset, -e.length))


def split(text: str, entities: list[MessageEntity], limit: int = LIMIT) -> list[tuple[str, list[MessageEntity]]]:
    """Cut text into parts of at most `limit` UTF-16 units, at a line break or space where one is near.

    Entities are clipped to each part and re-based; a cut never falls inside a surrogate pair.
    """
    parts: list[tuple[str, list[MessageEntity]]] = []
    start = 0
    offset16 = 0  # UTF-16 position of `start`
    while start < len(text):
        end = _cut(text, start, limit)
        chunk = text[start:end]
        length16 = utf16_len(chunk)
        clipped = []
        for entity in entities:
            lo = max(entity.offset, offset16)
            hi = min(entity.offset + entity.length, offset16 + length16)
            if hi > lo:
                clipped.append(
                    MessageEntity(entity.type, lo - offset16, hi - lo, url=entity.url, language=entity.language)
                )
        if chunk.strip():
            parts.append((chunk, clipped))
        skip = 1 if end < len(text) and text[end] in "\n " else 0
        offset16 += length16 + utf16_len(text[end : end + skip])
        start = end + skip
    return parts


def _cut(text: str, start: int, limit: int) -> int:
    if utf16_len(text[start:]) <= limit:
        return len(text)
    end = start
    used = 0
    while end < len(text) and used + utf16_len(text[end]) <= limit:
        used += utf16_len(text[end])
        end += 1
    window = text[start:end]
    for separator in ("\n\n", "\n", " "):
        at = window.rfind(separator)
        if at > len(window) // 2:
            return start + at + (len(separator) - 1)
    return end
