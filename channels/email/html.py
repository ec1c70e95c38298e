"""HTML from mail: sanitised with nh3, remote images blocked, `cid:` images tied to attachments.

A blocked image keeps its address in `data-blocked-src` (the UI moves it back to `src` when the agent
clicks "show images"); a `cid:` image gets `data-attachment-index`, the position of its attachment.
Pure functions.
"""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Mapping
from html.parser import HTMLParser

import nh3

TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del", "div", "dl", "dt",
    "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "ol", "p", "pre",
    "q", "s", "small", "span", "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "tt", "u", "ul",
}  # fmt: skip
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan", "align", "valign"},
    "th": {"colspan", "rowspan", "align", "valign"},
    "blockquote": {"type"},
    "div": {"class", "id"},
    "*": {"dir", "lang"},
}
# Classes and ids mail clients put on quoted history, kept so the UI can fold them.
QUOTE_MARKERS = {"gmail_quote", "gmail_signature", "moz-cite-prefix", "divRplyFwdMsg", "appendonsend"}
IMG_SRC = re.compile(r'<img\b([^>]*?)\ssrc="([^"]*)"')


def _filter(tag: str, attribute: str, value: str) -> str | None:
    if attribute in ("class", "id"):
        kept = [item for item in value.split() if item in QUOTE_MARKERS]
        return " ".join(kept) or None
    if tag == "a" and attribute == "href" and not value.lower().startswith(("http://", "https://", "mailto:")):
        return None
    if tag == "img" and attribute == "src" and not value.lower().startswith(("http://", "https://", "cid:")):
        return None
    return value


def sanitize_html(raw: str, cids: Mapping[str, int] | None = None) -> str:
    """Clean untrusted mail HTML; block remote images; point `cid:` images at their attachment index."""
    cleaned = nh3.clean(
        raw,
        tags=TAGS,
        attributes=ATTRIBUTES,
        attribute_filter=_filter,
        url_schemes={"http", "https", "mailto", "cid"},
        link_rel="noopener noreferrer nofollow",
        clean_content_tags={"script", "style", "title", "head"},
        strip_comments=True,
    )
    found = cids or {}

    def rewrite(match: re.Match[str]) -> str:
        before, src = match.group(1), match.group(2)
        if src.lower().startswith("cid:"):
            index = found.get(htmllib.unescape(src[4:]).strip("<>"))
            extra = f' data-attachment-index="{index}"' if index is not None else ""
            return f'<img{before} src=""{extra}'
        return f'<img{before} src="" data-blocked-src="{src}"'

    # nh3 serialises attributes double-quoted with `"` escaped, so this match cannot be fooled by content.
    return IMG_SRC.sub(rewrite, cleaned)


class _Text(HTMLParser):
    BLOCK = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "hr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head", "title"):
            self.skip += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head", "title"):
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_to_text(raw: str) -> str:
    """Readable plain text from HTML, for mail that has no text part."""
    parser = _Text()
    parser.feed(raw)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
