"""WhatsApp webhooks → what the core takes: the GET handshake, the X-Hub-Signature-256 check, and a
notification (`{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages",
"value": {...}}]}]}`) read into `Received` messages and `StatusUpdate` receipts. Pure: no I/O, no logging;
what is not taken is returned in `Notification.skipped` with the reason, for the caller to log.

One conversation per customer number: `thread_key` and the sender's PHONE identity are the wa_id in E.164
(`"+" + wa_id`). `external_id` is the message's wamid, so a replayed webhook stores nothing new. Media
(image, audio/voice, video, document, sticker) are described in the text (or their caption) and listed as
`MediaRef`s to download; a reply keeps the quoted message's wamid in `metadata["whatsapp"]["reply_to"]`.
"""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from channels.base import DeliveryStatus, Identity, IdentityKind, Inbound
from channels.whatsapp.errors import describe, error_fields

SIGNATURE_HEADER = "x-hub-signature-256"
MEDIA_KINDS = ("image", "audio", "voice", "video", "document", "sticker")
DEFAULT_TYPES = {
    "image": "image/jpeg",
    "audio": "audio/ogg",
    "voice": "audio/ogg",
    "video": "video/mp4",
    "document": "application/octet-stream",
    "sticker": "image/webp",
}


class PayloadError(ValueError):
    """The body is not a WhatsApp Business Account notification at all."""


@dataclass(frozen=True, slots=True)
class MediaRef:
    """A file to fetch: GET /{media_id} gives a short-lived URL, fetched with the same bearer token."""

    media_id: str
    filename: str
    content_type: str
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class Received:
    """One customer message and the files still to download for it."""

    inbound: Inbound
    media: tuple[MediaRef, ...] = ()


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A delivery receipt of one of our messages (`external_id` = the wamid our send got back)."""

    external_id: str
    status: DeliveryStatus
    recipient: str  # E.164
    at: datetime | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    messages: list[Received] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "wamid.X: why", for the log


# ── handshake and signature ─────────────────────────────────────────────────────────────────────
def verify_handshake(params: Mapping[str, str], verify_token: str) -> str | None:
    """The `hub.challenge` to echo when Meta's subscription request carries our verify token, else None."""
    if params.get("hub.mode") != "subscribe":
        return None
    given = params.get("hub.verify_token", "")
    challenge = params.get("hub.challenge")
    if not challenge or not hmac.compare_digest(given.encode(), verify_token.encode()):
        return None
    return challenge


def signature(body: bytes, app_secret: str) -> str:
    """The X-Hub-Signature-256 value Meta sends for `body`: "sha256=" + hex HMAC-SHA256 with the app secret."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(body: bytes, header: str | None, app_secret: str) -> bool:
    """Whether `header` signs exactly these raw bytes (constant-time; a missing header is invalid)."""
    if not header:
        return False
    return hmac.compare_digest(header.strip().lower().encode(), signature(body, app_secret).encode())


# ── notifications ───────────────────────────────────────────────────────────────────────────────
def read_notification(inbox_id: int, payload: Any, phone_number_id: str) -> Notification:
    """Messages and receipts for our business number; changes for other numbers or fields are skipped."""
    if not isinstance(payload, Mapping) or payload.get("object") != "whatsapp_business_account":
        raise PayloadError('body: expected {"object": "whatsapp_business_account", "entry": [...]}')
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise PayloadError("body.entry: expected a list")
    result = Notification()
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, Mapping) else None
        for change in changes if isinstance(changes, list) else []:
            _read_change(inbox_id, change, phone_number_id, result)
    return result


def _read_change(inbox_id: int, change: Any, phone_number_id: str, result: Notification) -> None:
    if not isinstance(change, Mapping) or not isinstance(change.get("value"), Mapping):
        result.skipped.append("change: no value object")
        return
    if change.get("field") != "messages":
        result.skipped.append(f"change: field {change.get('field')!r} is not handled")
        return
    value = change["value"]
    metadata = value.get("metadata") if isinstance(value.get("metadata"), Mapping) else {}
    number = str(metadata.get("phone_number_id", ""))
    if number != phone_number_id:
        result.skipped.append(f"change: for phone number id {number!r}, not this inbox's {phone_number_id!r}")
        return
    names = _profile_names(value.get("contacts"))
    for message in _objects(value.get("messages")):
        try:
            received = inbound_from_message(inbox_id, message, names, phone_number_id=number)
        except (KeyError, TypeError, ValueError) as exc:
            result.skipped.append(f"{message.get('id', 'message')}: unreadable ({exc!r})")
            continue
        if isinstance(received, str):
            result.skipped.append(f"{message.get('id', 'message')}: {received}")
        else:
            result.messages.append(received)
    for status in _objects(value.get("statuses")):
        update = status_update(status)
        if isinstance(update, str):
            result.skipped.append(f"{status.get('id', 'status')}: {update}")
        else:
            result.statuses.append(update)
    for error in _objects(value.get("errors")):
        code, title, details = error_fields(error)
        result.skipped.append(f"notification error: {describe(code, title, details)}")


def _objects(items: Any) -> list[Mapping[str, Any]]:
    return [item for item in items if isinstance(item, Mapping)] if isinstance(items, list) else []


def _profile_names(contacts: Any) -> dict[str, str]:
    names: dict[str, str] = {}
    for contact in _objects(contacts):
        profile = contact.get("profile")
        if isinstance(profile, Mapping) and isinstance(profile.get("name"), str):
            names[str(contact.get("wa_id", ""))] = profile["name"]
    return names


def e164(wa_id: str) -> str:
    """A wa_id ("4915112345678") as an E.164 number; ValueError when it is not one."""
    digits = wa_id.removeprefix("+")
    if not (digits.isascii() and digits.isdigit() and 6 <= len(digits) <= 15):
        raise ValueError(f"not a WhatsApp phone number: {wa_id!r}")
    return "+" + digits


def timestamp(value: Any) -> datetime | None:
    """WhatsApp's unix seconds (a string in webhooks) as an aware UTC datetime."""
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def inbound_from_message(
    inbox_id: int, message: Mapping[str, Any], names: Mapping[str, str], *, phone_number_id: str = ""
) -> Received | str:
    """One webhook message as a `Received`, or the reason it is not taken (a string)."""
    wamid = message.get("id")
    if not isinstance(wamid, str) or not wamid:
        return "message without an id"
    wa_id = str(message["from"])
    number = e164(wa_id)
    kind = str(message.get("type", "unknown"))
    if kind == "request_welcome":
        return "a welcome request carries no message"
    text, facts, media = describe_message(message, kind, wamid)
    meta: dict[str, Any] = {"wa_id": wa_id, "message_id": wamid, "type": kind, **facts}
    if phone_number_id:
        meta["phone_number_id"] = phone_number_id
    context = message.get("context")
    if isinstance(context, Mapping):
        if isinstance(context.get("id"), str):
            meta["reply_to"] = context["id"]
        if context.get("forwarded") or context.get("frequently_forwarded"):
            meta["forwarded"] = True
    referral = message.get("referral")
    if isinstance(referral, Mapping):
        meta["referral"] = {
            k: v for k, v in referral.items() if k in ("source_url", "source_id", "source_type", "headline")
        }
    inbound = Inbound(
        inbox_id=inbox_id,
        external_id=wamid,
        thread_key=number,
        sender=Identity(IdentityKind.PHONE, number, name=names.get(wa_id, "")[:300]),
        text=text,
        sent_at=timestamp(message.get("timestamp")),
        metadata={"whatsapp": meta},
    )
    return Received(inbound, tuple(media))


def describe_message(message: Mapping[str, Any], kind: str, wamid: str) -> tuple[str, dict[str, Any], list[MediaRef]]:
    """The text shown in the thread, structured facts for the metadata, and the files to fetch."""
    found = message.get(kind)
    body: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    if kind == "text":
        return str(body["body"]), {}, []
    if kind in MEDIA_KINDS:
        return _media(kind, body, wamid)
    if kind == "location":
        return _location(body)
    if kind == "contacts":
        return _contacts(message.get("contacts"))
    if kind == "reaction":
        emoji = str(body.get("emoji") or "")
        facts = {"reaction": {"message_id": body.get("message_id"), "emoji": emoji}}
        return (f"[Reaction {emoji}]" if emoji else "[Reaction removed]"), facts, []
    if kind == "button":  # a quick-reply button of a template
        return str(body.get("text", "")), {"button_payload": body.get("payload")}, []
    if kind == "interactive":
        reply = body.get(str(body.get("type")))
        if isinstance(reply, Mapping):
            return str(reply.get("title", "")), {"interactive": {"type": body.get("type"), "id": reply.get("id")}}, []
    if kind == "system":
        return f"[System] {body.get('body', '')}".strip(), {"system": dict(body)}, []
    code, title, details = error_fields(next(iter(_objects(message.get("errors"))), None))
    reason = describe(code, title, details) if code is not None else f"message type {kind!r}"
    return f"[Unsupported WhatsApp message: {reason}]", {"unsupported": True}, []


def _media(kind: str, body: Mapping[str, Any], wamid: str) -> tuple[str, dict[str, Any], list[MediaRef]]:
    voice = kind == "voice" or (kind == "audio" and bool(body.get("voice")))
    shown = "voice" if voice else kind
    content_type = str(body.get("mime_type") or DEFAULT_TYPES[kind])
    caption = str(body.get("caption") or "")
    filename = str(body.get("filename") or "") if kind == "document" else ""
    labels = {
        "image": "[Photo]",
        "audio": "[Audio]",
        "voice": "[Voice message]",
        "video": "[Video]",
        "sticker": "[Sticker]",
        "document": f"[Document: {filename or 'file'}]",
    }
    if not filename:
        bare = content_type.split(";", 1)[0].strip()
        extension = ".ogg" if bare == "audio/ogg" else mimetypes.guess_extension(bare) or ""
        filename = f"{shown}_{_tail(wamid)}{extension}"
    facts: dict[str, Any] = {"kind": shown}
    if kind == "sticker" and body.get("animated"):
        facts["animated"] = True
    media_id = body.get("id")
    if not isinstance(media_id, str) or not media_id:
        return caption or labels[shown], facts, []
    ref = MediaRef(
        media_id, filename[-255:], content_type, body.get("sha256") if isinstance(body.get("sha256"), str) else None
    )
    return caption or labels[shown], facts, [ref]


def _tail(wamid: str) -> str:
    """A short, file-name-safe piece of the wamid (its last characters)."""
    safe = "".join(c for c in wamid.removeprefix("wamid.") if c.isalnum())
    return safe[-16:] or "file"


def _location(body: Mapping[str, Any]) -> tuple[str, dict[str, Any], list[MediaRef]]:
    lat, lon = float(body["latitude"]), float(body["longitude"])
    label = ", ".join(str(body[k]) for k in ("name", "address") if body.get(k))
    link = f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=16/{lat}/{lon}"
    text = "\n".join(part for part in (f"[Location] {lat}, {lon}", label, link) if part)
    facts = {
        "kind": "location",
        "latitude": lat,
        "longitude": lon,
        "name": body.get("name"),
        "address": body.get("address"),
    }
    return text, facts, []


def _contacts(cards: Any) -> tuple[str, dict[str, Any], list[MediaRef]]:
    lines: list[str] = []
    shared: list[dict[str, Any]] = []
    for card in _objects(cards):
        name_part = card.get("name")
        name = str(name_part.get("formatted_name", "")) if isinstance(name_part, Mapping) else ""
        phones = [str(p.get("phone")) for p in _objects(card.get("phones")) if p.get("phone")]
        emails = [str(e.get("email")) for e in _objects(card.get("emails")) if e.get("email")]
        lines.append(f"[Contact] {name or 'unnamed'}: {', '.join(phones + emails) or 'no number'}")
        shared.append({"name": name, "phones": phones, "emails": emails})
    if not lines:
        raise ValueError("contacts message without contacts")
    return "\n".join(lines), {"kind": "contacts", "contacts": shared}, []


# ── receipts ────────────────────────────────────────────────────────────────────────────────────
def status_update(status: Mapping[str, Any]) -> StatusUpdate | str:
    """One `statuses[]` item as a `StatusUpdate`, or why it is not taken."""
    wamid = status.get("id")
    if not isinstance(wamid, str) or not wamid:
        return "receipt without a message id"
    try:
        value = DeliveryStatus(str(status.get("status")))
    except ValueError:
        return f"receipt status {status.get('status')!r} is not tracked"
    try:
        recipient = e164(str(status.get("recipient_id", "")))
    except ValueError:
        recipient = str(status.get("recipient_id", ""))
    error = None
    if value is DeliveryStatus.FAILED:
        errors = _objects(status.get("errors"))
        code, title, details = error_fields(errors[0] if errors else None)
        error = describe(code, title, details) if errors else "WhatsApp reported the message as failed"
    return StatusUpdate(wamid, value, recipient, timestamp(status.get("timestamp")), error)


def latest_statuses(updates: Sequence[StatusUpdate]) -> list[StatusUpdate]:
    """One receipt per message, the furthest along (`DeliveryStatus.supersedes`), in first-seen order.

    A batch can carry "read" before "delivered" for the same wamid; only "read" needs to reach the core.
    """
    kept: dict[str, StatusUpdate] = {}
    for update in updates:
        current = kept.get(update.external_id)
        if current is None or update.status.supersedes(current.status):
            kept[update.external_id] = update
    return list(kept.values())
