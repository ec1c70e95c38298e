"""Pure helpers of self-service answers: Markdown rendering, search terms, excerpts, URL patterns.

No I/O here. Markdown is rendered the way outgoing email is (markdown-it-py, CommonMark with raw HTML
disabled) and then sanitised again with nh3, so an article can never carry script into a page.
"""

from __future__ import annotations

import fnmatch
import re

import nh3
from markdown_it import MarkdownIt

_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
_WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 8
MIN_TERM = 2


def render_markdown(text: str) -> str:
    """Markdown → sanitised HTML (links get `rel="noopener noreferrer"`)."""
    return nh3.clean(_MARKDOWN.render(text), link_rel="noopener noreferrer")


def terms(query: str) -> list[str]:
    """The words of a search query, lower-cased, at most `MAX_TERMS`; punctuation and operators dropped."""
    words = [word.lower() for word in _WORD.findall(query) if len(word) >= MIN_TERM]
    return list(dict.fromkeys(words))[:MAX_TERMS]


def fts5_query(words: list[str]) -> str:
    """An FTS5 MATCH expression: each word as a quoted prefix, any of them (ranked by bm25)."""
    return " OR ".join(f'"{word}"*' for word in words)


def tsquery(words: list[str]) -> str:
    """A PostgreSQL `to_tsquery('simple', …)` expression: each word as a prefix, any of them."""
    return " | ".join(f"{word}:*" for word in words)


def excerpt(body: str, length: int = 160) -> str:
    """The first words of an article's Markdown as plain text."""
    plain = re.sub(r"[#>*_`\[\]()!|-]+", " ", body)
    plain = " ".join(plain.split())
    return plain if len(plain) <= length else plain[: length - 1].rsplit(" ", 1)[0] + "…"


def url_matches(pattern: str, url: str) -> bool:
    """Whether a page URL matches a rule's glob (`*` any run, `?` one character); an empty pattern matches all."""
    return not pattern or fnmatch.fnmatchcase(url, pattern)


def language(locale: str | None) -> str:
    """The language part of a locale tag (`pt-BR` → `pt`), lower-cased; "" for none."""
    if not locale:
        return ""
    return locale.split("-")[0].split("_")[0].lower()[:16]
