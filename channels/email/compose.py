"""Composing outbound mail from an agent's Markdown reply. Pure: builds an `EmailMessage`, sends nothing.

Markdown is rendered with markdown-it-py (CommonMark, raw HTML disabled) and the result is sanitised
again with nh3; the plain-text part is the Markdown source itself, which reads well as text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

import nh3
from markdown_it import MarkdownIt

from channels.base import clean_name

_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")
REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|antw|fwd?)\s*(\[\d+\])?\s*:\s*)+", re.I)


@dataclass(frozen=True, slots=True)
class OutgoingFile:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Reply:
    """Everything `compose_reply` needs; built by the channel from an `Outbound`."""

    from_name: str
    from_address: str
    to: Sequence[str]
    message_id: str
    markdown: str
    subject: str
    conversation_number: int
    cc: Sequence[str] = ()
    reply_to: str | None = None
    in_reply_to: str | None = None
    references: Sequence[str] = ()
    signature: str = ""
    attachments: Sequence[OutgoingFile] = field(default=())
    automatic: bool = False
    date: datetime | None = None


def render_markdown(text: str) -> str:
    """Markdown → sanitised HTML."""
    return nh3.clean(_MARKDOWN.render(text), link_rel="noopener noreferrer")


def reply_subject(subject: str, number: int) -> str:
    """`Re: <subject> [#<number>]`, without piling up prefixes or tags."""
    base = REPLY_PREFIX.sub("", subject or "").strip()
    tag = f"[#{number}]"
    if tag not in base:
        base = f"{base} {tag}".strip()
    return f"Re: {base}"


def compose_reply(reply: Reply) -> EmailMessage:
    """The full MIME message: text + HTML alternative, attachments, threading and loop-safety headers."""
    message = EmailMessage()
    # An agent's or inbox's name: no control character (CR/LF, NUL, ESC) may reach the header.
    message["From"] = formataddr((clean_name(reply.from_name), reply.from_address))
    message["To"] = ", ".join(reply.to)
    if reply.cc:
        message["Cc"] = ", ".join(reply.cc)
    if reply.reply_to:
        message["Reply-To"] = reply.reply_to
    message["Subject"] = reply_subject(reply.subject, reply.conversation_number)
    message["Message-ID"] = reply.message_id
    message["Date"] = format_datetime(reply.date or datetime.now(UTC))
    if reply.in_reply_to:
        message["In-Reply-To"] = reply.in_reply_to
    references = list(dict.fromkeys([*reply.references, *([reply.in_reply_to] if reply.in_reply_to else [])]))
    if references:
        # RFC 5322 allows trimming: keep the root and the most recent ids.
        kept = references if len(references) <= 20 else [references[0], *references[-19:]]
        message["References"] = " ".join(kept)
    if reply.automatic:
        message["Auto-Submitted"] = "auto-replied"
        message["X-Auto-Response-Suppress"] = "All"
    text = reply.markdown.rstrip()
    html = render_markdown(reply.markdown)
    if reply.signature.strip():
        text += "\n\n-- \n" + reply.signature.strip()
        html += '<div class="signature">' + render_markdown(reply.signature) + "</div>"
    message.set_content(text + "\n")
    message.add_alternative(f"<!doctype html><html><body>{html}</body></html>\n", subtype="html")
    for item in reply.attachments:
        maintype, _, subtype = item.content_type.partition("/")
        message.add_attachment(
            item.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=item.filename,
        )
    return message
