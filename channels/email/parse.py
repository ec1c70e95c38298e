"""Turning raw RFC 5322 bytes into a `ParsedMail`: pure functions, no I/O.

The header section is capped before the stdlib parser sees it (cpython's header parser is quadratic on
hostile input); bodies are decoded with charset fallbacks; HTML is sanitised with nh3 with remote images
blocked (the UI restores them from `data-blocked-src` on "show images"); `cid:` images point at their
attachment; filenames are normalised; quoted history and signatures are split from the new text.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime

from channels.base import clean_name
from channels.email.html import html_to_text, sanitize_html
from channels.email.loop import DeliveryReport, automatic_reason, delivery_report
from channels.email.quote import split_quoted

MESSAGE_ID = re.compile(r"<([^<>\s]{1,500})>")  # longer ids do not fit the store's index: ignored
FALLBACK_CHARSETS = ("utf-8", "cp1252")
MAX_FILENAME_BYTES = 200
MAX_SUBJECT = 998  # RFC 5322 line limit; also the store's column size
MAX_ADDRESS = 254  # RFC 5321 path limit
MBOX_FROM = re.compile(rb"From [^\r\n]*\r?\n")  # the envelope line an mbox file puts before each mail


class MailError(ValueError):
    """The bytes are not a mail we can read (the message says why); such mail is quarantined."""


@dataclass(frozen=True, slots=True)
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None
    inline: bool = False


@dataclass(frozen=True, slots=True)
class ParsedMail:
    """One mail, decoded and made safe to show."""

    message_id: str  # "<id>" as sent, or a synthesised "<sha256@switchboard.invalid>"
    subject: str
    from_name: str
    from_address: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    reply_to: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    date: datetime | None
    text: str  # the whole plain text (or text made from the HTML)
    visible_text: str  # the new part: quoted history and signature folded away
    quoted_text: str
    html: str | None  # sanitised
    attachments: tuple[ParsedAttachment, ...]
    automatic: str | None  # why this is machine-generated mail, if it is
    report: DeliveryReport | None
    return_path: str | None
    defects: tuple[str, ...] = field(default=())
    digest: str = ""  # `body_digest` of the raw mail: with the Message-ID, what makes two mails the same mail

    @property
    def recipients(self) -> tuple[str, ...]:
        return self.to + self.cc


def cap_headers(raw: bytes, limit: int) -> tuple[bytes, bool]:
    """Cut the header section to at most `limit` bytes at a header boundary; say whether it was cut."""
    match = re.search(rb"\r?\n\r?\n", raw)
    end = match.start() if match else len(raw)
    if end <= limit:
        return raw, False
    head = raw[:limit]
    # Keep whole header fields only: cut before the last line that starts a field within the limit.
    starts = [m.start() + 1 for m in re.finditer(rb"\n(?![ \t])", head)]
    cut = starts[-1] if starts else 0
    body = raw[match.end() :] if match else b""
    return head[:cut].rstrip(b"\r\n") + b"\r\n\r\n" + body, True


def parse_email(raw: bytes, *, max_header_bytes: int = 65_536, max_bytes: int = 26_214_400) -> ParsedMail:
    """Parse and make safe one mail; raises `MailError` for bytes that are not mail at all."""
    if len(raw) > max_bytes:
        raise MailError(f"mail is {len(raw)} bytes, larger than the {max_bytes}-byte limit")
    raw = strip_mbox_line(raw)
    digest = body_digest(raw)
    if not re.match(rb"[!-9;-~]+:", raw.lstrip(b"\r\n")[:1000]):
        raise MailError("no header section: the data does not start with a header field")
    raw, truncated = cap_headers(raw, max_header_bytes)
    defects: list[str] = ["headers truncated"] if truncated else []
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    from_name, from_address = _first_address(message, "from")
    if not from_address:
        from_name, from_address = _first_address(message, "sender")
    if not from_address:
        raise MailError("no sender: neither From nor Sender holds an address")
    _reply_name, reply_address = _first_address(message, "reply-to")
    body = _Body()
    _walk(message, body, defects)
    defects += sorted({type(item).__name__ for part in message.walk() for item in part.defects})
    html = None
    if body.html:
        html = sanitize_html("\n".join(body.html), body.cids)
    text = "\n\n".join(part.strip("\n") for part in body.text) if body.text else ""
    if not text.strip() and body.html:
        text = html_to_text("\n".join(body.html))
    visible, quoted = split_quoted(text)
    message_id = _ids(_header(message, "message-id"))
    return ParsedMail(
        message_id=message_id[0] if message_id else f"<{hashlib.sha256(raw).hexdigest()}@switchboard.invalid>",
        subject=" ".join(_header(message, "subject").split())[:MAX_SUBJECT],
        from_name=from_name,
        from_address=from_address,
        to=_addresses(message, "to"),
        cc=_addresses(message, "cc"),
        reply_to=reply_address or None,
        in_reply_to=tuple(_ids(_header(message, "in-reply-to"))),
        references=tuple(_ids(_header(message, "references"))),
        date=_date(message),
        text=text,
        visible_text=visible,
        quoted_text=quoted,
        html=html,
        attachments=tuple(body.attachments),
        automatic=automatic_reason(message, from_address),
        report=delivery_report(message),
        return_path=_return_path(message),
        defects=tuple(defects),
        digest=digest,
    )


def body_digest(raw: bytes) -> str:
    """The first 16 hex digits of the SHA-256 of a mail's body (the bytes after the header section), with line
    endings normalised to LF; an IMAP `BODY[TEXT]` gives the same bytes, so a reader can compare before fetching.

    Two mails with one Message-ID and the same digest are one mail sent again; a different digest is another mail.
    """
    raw = strip_mbox_line(raw)
    end = re.search(rb"\r?\n\r?\n", raw)
    return text_digest(raw[end.end() :] if end else b"")


def text_digest(body: bytes) -> str:
    """`body_digest` of a body alone (an IMAP `BODY[TEXT]`)."""
    return hashlib.sha256(body.replace(b"\r\n", b"\n")).hexdigest()[:16]


def header_sender(raw: bytes, max_header_bytes: int = 65_536) -> tuple[str, str]:
    """(sender address, subject) read from the header section alone, the way `parse_email` reads them (From,
    else Sender); for mail that could not be parsed as a whole, so its quarantine entry names the same sender
    the mail would have been stored under. Never raises; ('', '') when nothing can be read."""
    try:
        head, _ = cap_headers(strip_mbox_line(raw[: max_header_bytes + 4]), max_header_bytes)
        message = BytesParser(policy=policy.default).parsebytes(head, headersonly=True)
        _name, address = _first_address(message, "from")
        if not address:
            _name, address = _first_address(message, "sender")
        return address, " ".join(_header(message, "subject").split())[:MAX_SUBJECT]
    except Exception:  # a quarantine entry must be written whatever the bytes are
        return "", ""


def strip_mbox_line(raw: bytes) -> bytes:
    """Drop a leading mbox `From sender date` line (mail saved from an mbox file or piped by an MTA)."""
    match = MBOX_FROM.match(raw.lstrip(b"\r\n"))
    return raw.lstrip(b"\r\n")[match.end() :] if match else raw


# ── headers ─────────────────────────────────────────────────────────────────────────────────
def _header(message: Message, name: str) -> str:
    """A header's decoded value with undecodable 8-bit bytes repaired; '' when absent or broken."""
    try:
        value = message.get(name)
    except Exception:  # the stdlib raises on some malformed structured headers
        value = None
    if value is None:
        raw = _raw_headers(message, name)  # absent, or the stdlib could not parse it: decode it plainly
        return _repair(_decode_words(raw[0])) if raw else ""
    return _repair(str(value))


def _repair(value: str) -> str:
    """Strings from raw 8-bit headers carry surrogate escapes: re-decode them as UTF-8, else cp1252."""
    try:
        value.encode("utf-8")
        cleaned = value
    except UnicodeEncodeError:
        data = value.encode("utf-8", "surrogateescape")
        try:
            cleaned = data.decode("utf-8")
        except UnicodeDecodeError:
            cleaned = data.decode("cp1252", "replace")
    return "".join(ch for ch in cleaned if unicodedata.category(ch) not in ("Cc", "Cf") or ch in "\t")


def _address_pairs(message: Message, name: str) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address header; never raises."""
    try:
        value = message.get(name)
        return getaddresses([_repair(str(value))]) if value is not None else []
    except Exception:
        # The stdlib refuses a display name that decodes to CR/LF (a header-injection attempt) with
        # ValueError: split the raw field ourselves and decode each display name on its own.
        return [(_decode_words(display), address) for display, address in getaddresses(_raw_headers(message, name))]


def _first_address(message: Message, name: str) -> tuple[str, str]:
    for display, address in _address_pairs(message, name):
        if "@" in address and len(address) <= MAX_ADDRESS:
            return _clean_name(display), address.strip().lower()
    return "", ""


def _raw_headers(message: Message, name: str) -> list[str]:
    """A header's values exactly as sent (encoded words not decoded), unfolded, 8-bit repaired."""
    return [
        _repair(str(value).replace("\r\n", "").replace("\n", ""))
        for key, value in message.raw_items()
        if key.lower() == name
    ]


def _decode_words(value: str) -> str:
    """RFC 2047 encoded words → text; the value as it is when they cannot be decoded."""
    try:
        return str(make_header(decode_header(value)))
    except (LookupError, UnicodeDecodeError, ValueError):
        return value


def _clean_name(name: str) -> str:
    """Display names are shown to agents: one line, no control characters, bounded."""
    return clean_name(name)[:200]


def _addresses(message: Message, name: str) -> tuple[str, ...]:
    found = _address_pairs(message, name)
    return tuple(
        dict.fromkeys(address.strip().lower() for _, address in found if "@" in address and len(address) <= MAX_ADDRESS)
    )


def _ids(value: str) -> list[str]:
    return [f"<{item}>" for item in MESSAGE_ID.findall(value)]


def _date(message: Message) -> datetime | None:
    value = _header(message, "date")
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError, IndexError):
        return None


def _return_path(message: Message) -> str | None:
    if "return-path" not in message:
        return None
    value = _header(message, "return-path").strip()
    return value.strip("<>").strip().lower()


# ── body ────────────────────────────────────────────────────────────────────────────────────
@dataclass
class _Body:
    text: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[ParsedAttachment] = field(default_factory=list)
    cids: dict[str, int] = field(default_factory=dict)


def _walk(part: Message, body: _Body, defects: list[str], in_report: bool = False) -> None:
    """Depth first: text/plain and text/html leaves become the body, every other leaf an attachment."""
    ctype = part.get_content_type()
    if part.is_multipart() and ctype.startswith("multipart/"):
        children = part.get_payload()
        for child in children if isinstance(children, list) else ():
            if isinstance(child, Message):
                _walk(child, body, defects, in_report or ctype == "multipart/report")
        return
    _leaf(part, body, defects, in_report)


def _leaf(part: Message, body: _Body, defects: list[str], in_report: bool = False) -> None:
    ctype = part.get_content_type()
    disposition = (part.get_content_disposition() or "").lower()
    filename = _param_filename(part)
    if ctype.startswith("multipart/"):  # a multipart the parser could not split (no boundary): show as text
        ctype = "text/plain"
    if disposition != "attachment" and not filename and ctype in ("text/plain", "text/html"):
        content = _decode_text(part, defects)
        (body.text if ctype == "text/plain" else body.html).append(content)
        return
    data = _payload_bytes(part)
    content_id = _ids(_header(part, "content-id"))
    name = normalise_filename(filename or _part_name(part, ctype, in_report), ctype)
    if content_id:
        body.cids[content_id[0][1:-1]] = len(body.attachments)
    body.attachments.append(
        ParsedAttachment(
            name, _safe_ctype(ctype), data, content_id[0][1:-1] if content_id else None, disposition == "inline"
        )
    )


# Names for the parts of reports and forwards that come without one (not "attachment.bin").
PART_NAMES = {
    "message/delivery-status": "delivery-status.txt",
    "message/global-delivery-status": "delivery-status.txt",
    "message/disposition-notification": "read-receipt.txt",
    "message/global-disposition-notification": "read-receipt.txt",
    "text/rfc822-headers": "original-headers.txt",
    "message/rfc822-headers": "original-headers.txt",
    "message/global-headers": "original-headers.txt",
}


def _part_name(part: Message, ctype: str, in_report: bool) -> str:
    """A name a person understands for a part that has none; '' to let `normalise_filename` pick one.

    The mail a delivery report returns is "original-message.eml"; a forwarded mail is named by its subject.
    """
    if ctype in PART_NAMES:
        return PART_NAMES[ctype]
    if ctype in ("message/rfc822", "message/global"):
        if in_report:
            return "original-message.eml"
        inner = part.get_payload()
        first = inner[0] if isinstance(inner, list) and inner else None
        subject = " ".join(_header(first, "subject").split())[:80] if isinstance(first, Message) else ""
        return f"{subject}.eml" if subject else "forwarded-message.eml"
    return ""


def _param_filename(part: Message) -> str:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    return _repair(str(name)) if name else ""


def _payload_bytes(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    inner = part.get_payload()
    if isinstance(inner, list):  # message/rfc822 and friends: keep the whole embedded mail
        return b"".join(
            m.as_bytes(policy=policy.default.clone(linesep="\r\n")) for m in inner if isinstance(m, Message)
        )
    return str(inner).encode("utf-8", "surrogateescape")


def _decode_text(part: Message, defects: list[str]) -> str:
    """Decode with the declared charset, then UTF-8, then cp1252 (which never fails on its own range)."""
    data = _payload_bytes(part)
    declared = (part.get_content_charset() or "").lower()
    for charset in (declared, *FALLBACK_CHARSETS) if declared else FALLBACK_CHARSETS:
        try:
            if charset in ("us-ascii", "ascii") and not data.isascii():
                continue  # declared ASCII but 8-bit: the sender lied; try the fallbacks
            text = data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
        if declared and charset != declared:
            defects.append(f"charset {declared!r} did not decode; used {charset}")
        return text.replace("\r\n", "\n")
    defects.append(f"charset {declared or 'none'!r} did not decode; replaced bad bytes")
    return data.decode("utf-8", "replace").replace("\r\n", "\n")


def _safe_ctype(ctype: str) -> str:
    return ctype if re.fullmatch(r"[a-z0-9.+-]+/[a-z0-9.+-]+", ctype) else "application/octet-stream"


def normalise_filename(name: str, content_type: str = "application/octet-stream") -> str:
    """NFKC, control and format characters stripped, no path parts, bounded; never empty."""
    name = unicodedata.normalize("NFKC", name)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = re.split(r"[/\\]", name)[-1].strip().lstrip(".").strip()
    if name in ("", ".", ".."):
        name = ""
    while len(name.encode("utf-8")) > MAX_FILENAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:-1] + dot + ext) if dot and len(ext) < 16 and stem else name[:-1]
    if not name:
        name = "attachment" + (mimetypes.guess_extension(content_type) or ".bin")
    return name
