"""VK Callback API events → what the channel does with them. Pure: no I/O, no clock.

An event is the JSON body VK POSTs: `{"type", "group_id", "event_id", "v", "secret", "object"}` (API 5.103+
object shapes: `message_new` wraps `{"message", "client_info"}`; `message_edit`/`message_reply` carry the
message itself; `message_allow` is `{"user_id", "key"}`, `message_deny` is `{"user_id"}`).

One conversation per dialog: `thread_key` is the dialog's `peer_id` (private dialogs: the user's id; group
chats, when the inbox takes them: 2000000000 + chat id). `external_id` is `"<peer_id>:<conversation_message_id>"`
(the per-dialog message number VK keeps across edits and shows to bots in chats, where `id` is 0), so an edit
finds the message it changes and a retried event stores nothing new. The sender is `Identity(VK, "<user id>")`;
VK sends no names, the channel looks them up. Files are listed as `FileRef`s (URLs to download); attachments
without a file (video, link, wall post …) are described in the text.
"""

from __future__ import annotations

import hmac
import mimetypes
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from channels.base import Edit, Identity, IdentityKind, Inbound
from channels.vk.settings import InboxSettings

CHAT_PEER_BASE = 2_000_000_000  # peer ids of group chats start here
DENIED = "the customer turned off messages from the community"


class EventError(ValueError):
    """An event from VK lacks a field the channel needs; the message names it."""


class Refused(Exception):
    """The event is not from VK for this inbox's community (wrong secret or group); nothing may be done with it."""


@dataclass(frozen=True, slots=True)
class FileRef:
    """A file an inbound message carries, to download from VK and store as an attachment."""

    url: str
    filename: str
    content_type: str
    size: int | None = None


@dataclass(frozen=True, slots=True)
class Confirm:
    """The `confirmation` handshake: answer the code instead of "ok"."""

    code: str


@dataclass(frozen=True, slots=True)
class Received:
    """A customer's new message (`message_new`)."""

    inbound: Inbound
    files: Sequence[FileRef] = ()


@dataclass(frozen=True, slots=True)
class Edited:
    """A customer changed a message (`message_edit`)."""

    edit: Edit
    files: Sequence[FileRef] = ()


@dataclass(frozen=True, slots=True)
class Echo:
    """Our own outgoing message as VK reports it back (`message_reply`); `external_id` as `send` answered it."""

    external_id: str


@dataclass(frozen=True, slots=True)
class Reachability:
    """`message_allow` (True) or `message_deny` (False): whether the community may write to this person."""

    identity: Identity
    reachable: bool


@dataclass(frozen=True, slots=True)
class Ignored:
    """An event the inbox does not take, and why (kept for the logs)."""

    reason: str


Action = Confirm | Received | Edited | Echo | Reachability | Ignored


def check_event(settings: InboxSettings, event: Mapping[str, Any]) -> None:
    """Raise `Refused` unless the event is for this community and carries its secret key.

    The secret is compared in constant time. A `confirmation` without a `secret` field is accepted (VK may send
    the handshake before a key is set; it reveals only the confirmation code); any secret it carries must match.
    """
    if event.get("group_id") != settings.group_id:
        raise Refused(f"group_id: expected {settings.group_id}, got {event.get('group_id')!r}")
    given = event.get("secret")
    if given is None and event.get("type") == "confirmation":
        return
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), settings.secret_key.encode()):
        raise Refused("secret: missing or wrong")


def event_key(event: Mapping[str, Any]) -> str | None:
    """VK's `event_id`: the same for every retry of one event."""
    value = event.get("event_id")
    return value if isinstance(value, str) and value else None


def external_id(peer_id: int, conversation_message_id: int) -> str:
    return f"{peer_id}:{conversation_message_id}"


def outbound_external_id(peer_id: int, message_id: int) -> str:
    """Our sent message's id as `send` records it (and a `message_reply` echo finds it again)."""
    return f"{peer_id}:out:{message_id}"


def identity_of(user_id: int, name: str = "") -> Identity:
    return Identity(IdentityKind.VK, str(user_id), name=name[:300])


def action_of(inbox_id: int, settings: InboxSettings, event: Mapping[str, Any]) -> Action:
    """What to do with one checked event; raises `EventError` when a needed field is missing."""
    kind = event.get("type")
    obj = event.get("object")
    if kind == "confirmation":
        return Confirm(settings.confirmation_code)
    if kind in ("message_allow", "message_deny"):
        user_id = _int(obj, "user_id", "object")
        return Reachability(identity_of(user_id), kind == "message_allow")
    if kind == "message_reply":
        message = _message(obj)
        return Echo(outbound_external_id(_int(message, "peer_id", "object"), _int(message, "id", "object")))
    if kind in ("message_new", "message_edit"):
        return _customer_message(inbox_id, settings, kind, _message(obj))
    return Ignored(f"event type {kind!r} is not taken")


def _customer_message(inbox_id: int, settings: InboxSettings, kind: str, message: Mapping[str, Any]) -> Action:
    peer_id = _int(message, "peer_id", "message")
    from_id = _int(message, "from_id", "message")
    cmid = _int(message, "conversation_message_id", "message")
    if message.get("out") == 1 or from_id <= 0:
        return Ignored("sent by the community (or another community), not by a customer")
    chat = peer_id >= CHAT_PEER_BASE
    if chat and not settings.groups:
        return Ignored(f"group chat {peer_id}: the inbox takes private messages only")
    if not chat and peer_id != from_id:
        return Ignored(f"peer {peer_id} is neither the sender's private dialog nor a group chat")
    text, kinds, files = describe(message, f"{peer_id}_{cmid}")
    if not text and not files:
        return Ignored("the message has neither text nor anything the inbox can show")
    vk: dict[str, Any] = {"peer_id": peer_id, "from_id": from_id, "conversation_message_id": cmid}
    if isinstance(message.get("id"), int) and message["id"]:
        vk["id"] = message["id"]
    if kinds:
        vk["attachments"] = kinds
    if chat:
        vk["chat_id"] = peer_id - CHAT_PEER_BASE
    reply = message.get("reply_message")
    if isinstance(reply, Mapping) and isinstance(reply.get("conversation_message_id"), int):
        vk["reply_to"] = external_id(int(reply.get("peer_id") or peer_id), reply["conversation_message_id"])
    forwarded = _forwarded(message)
    if forwarded:
        vk["forwarded"] = forwarded
    if isinstance(message.get("payload"), str):
        vk["payload"] = message["payload"]
    inbound = Inbound(
        inbox_id=inbox_id,
        external_id=external_id(peer_id, cmid),
        thread_key=str(peer_id),
        sender=identity_of(from_id),
        text=text,
        sent_at=_time(message.get("date")),
        metadata={"vk": vk},
    )
    if kind == "message_edit":
        return Edited(Edit(inbound, edited_at=_time(message.get("update_time"))), files)
    return Received(inbound, files)


def describe(message: Mapping[str, Any], base: str) -> tuple[str, list[str], list[FileRef]]:
    """The text shown in the thread, the attachment kinds, and the files to download.

    The customer's own text comes first; an attachment with a file is described only when there is no text
    (the file itself shows); one without a file (video, link, wall post …) is always described, or it would
    be lost; a location and forwarded messages follow.
    """
    own = str(message.get("text") or "").strip()
    lines = [own] if own else []
    kinds: list[str] = []
    files: list[FileRef] = []
    for index, item in enumerate(message.get("attachments") or ()):
        if not isinstance(item, Mapping) or not isinstance(item.get("type"), str):
            continue
        kind = item["type"]
        kinds.append(kind)
        body = item.get(kind)
        body = body if isinstance(body, Mapping) else {}
        label, ref = _attachment(kind, body, f"{base}_{index + 1}")
        if ref is not None:
            files.append(ref)
        if ref is None or not own:
            lines.append(label)
    geo = message.get("geo")
    if isinstance(geo, Mapping) and isinstance(geo.get("coordinates"), Mapping):
        lat, lon = geo["coordinates"].get("latitude"), geo["coordinates"].get("longitude")
        link = f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=16/{lat}/{lon}"
        lines.append(f"[Location] {lat}, {lon}\n{link}")
        kinds.append("geo")
    for fwd in _forwarded(message):
        lines.append(f"[Forwarded] {fwd['text']}" if fwd["text"] else "[Forwarded message]")
    return "\n".join(lines), kinds, [_trimmed(ref) for ref in files]


def _attachment(kind: str, body: Mapping[str, Any], base: str) -> tuple[str, FileRef | None]:
    if kind == "photo":
        url = _largest(body.get("sizes"))
        return "[Photo]", FileRef(url, f"photo_{base}.jpg", "image/jpeg") if url else None
    if kind == "doc":
        title = str(body.get("title") or "file")
        ext = str(body.get("ext") or "").lower()
        name = title if not ext or title.lower().endswith(f".{ext}") else f"{title}.{ext}"
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        url = body.get("url")
        size = body.get("size") if isinstance(body.get("size"), int) else None
        ref = FileRef(url, name, content_type, size) if isinstance(url, str) and url else None
        return f"[Document: {title}]", ref
    if kind == "audio_message":
        seconds = int(body.get("duration") or 0)
        label = f"[Voice message, {seconds // 60}:{seconds % 60:02d}]"
        if isinstance(body.get("link_ogg"), str) and body["link_ogg"]:
            return label, FileRef(body["link_ogg"], f"voice_{base}.ogg", "audio/ogg")
        if isinstance(body.get("link_mp3"), str) and body["link_mp3"]:
            return label, FileRef(body["link_mp3"], f"voice_{base}.mp3", "audio/mpeg")
        return label, None
    if kind == "sticker":
        url = _largest(body.get("images")) or _largest(body.get("images_with_background"))
        return "[Sticker]", FileRef(url, f"sticker_{base}.png", "image/png") if url else None
    if kind == "video":
        return f"[Video: {body.get('title') or 'video'}]", None
    if kind == "audio":
        return f"[Audio: {body.get('artist') or '?'} – {body.get('title') or '?'}]", None
    if kind == "link":
        return f"[Link] {body.get('url') or ''}".rstrip(), None
    return f"[{kind.replace('_', ' ').capitalize()}]", None


def _largest(sizes: Any) -> str | None:
    """The URL of the largest image of a VK size list (`[{"url"|"src", "width", "height"}]`)."""
    best: tuple[int, int] | None = None
    url: str | None = None
    for position, size in enumerate(sizes if isinstance(sizes, list) else ()):
        if not isinstance(size, Mapping):
            continue
        link = size.get("url") or size.get("src")
        if not isinstance(link, str) or not link:
            continue
        # Some size types report 0×0; among equals the later entry (VK lists sizes small to large) wins.
        key = (int(size.get("width") or 0) * int(size.get("height") or 0), position)
        if best is None or key > best:
            best, url = key, link
    return url


def _forwarded(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for item in message.get("fwd_messages") or ():
        if isinstance(item, Mapping):
            found.append(
                {"from_id": item.get("from_id"), "date": item.get("date"), "text": str(item.get("text") or "")}
            )
    return found


def _message(obj: Any) -> Mapping[str, Any]:
    """`message_new` wraps the message (`{"message", "client_info"}`); `message_edit`/`message_reply` do not."""
    if not isinstance(obj, Mapping):
        raise EventError("object: expected a JSON object")
    inner = obj.get("message")
    return inner if isinstance(inner, Mapping) else obj


def _int(obj: Any, key: str, where: str) -> int:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise EventError(f"{where}.{key}: expected an integer, got {value!r}")
    return value


def _time(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) and value > 0 else None


def _trimmed(ref: FileRef) -> FileRef:
    name = ref.filename.replace("/", "_").replace("\\", "_")[-255:]
    return FileRef(ref.url, name, ref.content_type, ref.size)
