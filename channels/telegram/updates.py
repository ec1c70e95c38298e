"""Telegram `Update` → `Inbound` | `Edit` | None, and the files a message carries. Pure: no I/O.

One conversation per chat: `thread_key` is the chat id (private chats: the user's id; groups, when the
inbox enables them: the group's id, each message carrying its sender's name). `external_id` is
`"<chat id>:<message id>"`, so an edit finds the message it changes and a replay stores nothing new.
Media are described in the text (a caption when there is one) and listed by `files_in` for download.
A forwarded message starts with a line naming who it was forwarded from (`forward_origin`, Bot API 7+),
and the origin is kept in its metadata.
"""

from __future__ import annotations

import dataclasses
import mimetypes
import warnings
from dataclasses import dataclass
from typing import Any

from telegram import (
    Chat,
    ChatMember,
    Message,
    MessageOrigin,
    MessageOriginChannel,
    MessageOriginChat,
    MessageOriginHiddenUser,
    MessageOriginUser,
    Update,
    User,
)
from telegram.warnings import PTBDeprecationWarning

from channels.base import Edit, Identity, IdentityKind, Inbound, clean_name

PRIVATE = Chat.PRIVATE
GROUPS = (Chat.GROUP, Chat.SUPERGROUP)


@dataclass(frozen=True, slots=True)
class FileRef:
    """A file to fetch with `getFile` and store as an attachment."""

    file_id: str
    file_unique_id: str
    filename: str
    content_type: str
    size: int | None


def identity_of(user: User) -> Identity:
    return Identity(IdentityKind.TELEGRAM, str(user.id), name=user.full_name[:300])


def external_id(message: Message) -> str:
    return f"{message.chat.id}:{message.message_id}"


def start_payload(message: Message) -> str | None:
    """The deep-link payload of `/start <payload>` in a private chat (`t.me/bot?start=<payload>`)."""
    text = message.text or ""
    if message.chat.type != PRIVATE or not (text == "/start" or text.startswith("/start ")):
        return None
    payload = text.removeprefix("/start").strip()
    return payload or None


def inbound_from_update(inbox_id: int, update: Update, *, groups: bool = False) -> Inbound | Edit | None:
    """Normalise a message or an edit; None for what the inbox does not take (other update kinds,
    groups when disabled, channel posts, service messages without content)."""
    message = update.message or update.edited_message
    if message is None or message.from_user is None or message.from_user.is_bot:
        return None
    chat = message.chat
    if chat.type not in (PRIVATE, *GROUPS) or (chat.type in GROUPS and not groups):
        return None
    text, meta = describe(message)
    if not text and not files_in(message):
        return None
    metadata: dict[str, Any] = {"telegram": {"chat_id": chat.id, "message_id": message.message_id, **meta}}
    if message.from_user.username:
        metadata["telegram"]["username"] = message.from_user.username
    if chat.type in GROUPS:
        metadata["telegram"]["chat_type"] = chat.type
        metadata["telegram"]["chat_title"] = chat.title
    payload = start_payload(message)
    if payload is not None:
        metadata["start_payload"] = payload
    if message.reply_to_message is not None:
        metadata["telegram"]["reply_to"] = external_id(message.reply_to_message)
    if message.forward_origin is not None:
        origin = forward_origin(message.forward_origin)
        metadata["telegram"]["forwarded_from"] = origin
        text = f"Forwarded from {origin['name']}\n{text}" if text else f"Forwarded from {origin['name']}"
    inbound = Inbound(
        inbox_id=inbox_id,
        external_id=external_id(message),
        thread_key=str(chat.id),
        sender=identity_of(message.from_user),
        text=text,
        subject=chat.title if chat.type in GROUPS else None,
        sent_at=message.date,
        metadata=metadata,
    )
    if update.edited_message is not None:
        return Edit(inbound, edited_at=message.edit_date)
    return inbound


def forward_origin(origin: MessageOrigin) -> dict[str, Any]:
    """Who a forwarded message came from, as metadata: its kind, a name to show and the ids Telegram gave."""
    facts: dict[str, Any] = {"type": origin.type, "date": origin.date.isoformat()}
    if isinstance(origin, MessageOriginUser):
        user = origin.sender_user
        facts |= {"name": user.full_name, "user_id": user.id, "username": user.username}
    elif isinstance(origin, MessageOriginHiddenUser):
        facts["name"] = origin.sender_user_name
    elif isinstance(origin, MessageOriginChat):
        chat = origin.sender_chat
        facts |= {"name": chat.title or chat.full_name or "", "chat_id": chat.id, "username": chat.username}
        facts["author_signature"] = origin.author_signature
    elif isinstance(origin, MessageOriginChannel):
        chat = origin.chat
        facts |= {"name": chat.title or "", "chat_id": chat.id, "message_id": origin.message_id}
        facts |= {"username": chat.username, "author_signature": origin.author_signature}
    name = clean_name(str(facts.get("name") or ""))[:300]
    signature = clean_name(str(facts.get("author_signature") or ""))[:300]
    facts["name"] = f"{name} ({signature})" if name and signature else name or signature or "a hidden sender"
    return {key: value for key, value in facts.items() if value is not None}


def reachability(update: Update) -> tuple[Identity, bool] | None:
    """A private chat's `my_chat_member` update: the customer blocked (False) or restarted (True) the bot."""
    change = update.my_chat_member
    if change is None or change.chat.type != PRIVATE:
        return None
    status = change.new_chat_member.status
    if status == ChatMember.BANNED:
        return identity_of(change.from_user), False
    if status == ChatMember.MEMBER:
        return identity_of(change.from_user), True
    return None


def describe(message: Message) -> tuple[str, dict[str, Any]]:
    """The text shown in the thread and structured facts for the message's metadata."""
    caption = message.caption or ""
    if message.text:
        return message.text, {}
    if message.photo:
        return caption or "[Photo]", {"kind": "photo"}
    if message.sticker:
        emoji = f" {message.sticker.emoji}" if message.sticker.emoji else ""
        return f"[Sticker{emoji}]", {"kind": "sticker", "set_name": message.sticker.set_name}
    if message.voice:
        return caption or f"[Voice message, {_duration(message.voice)}]", {"kind": "voice"}
    if message.video:
        return caption or f"[Video, {_duration(message.video)}]", {"kind": "video"}
    if message.document:
        return caption or f"[Document: {message.document.file_name or 'file'}]", {"kind": "document"}
    if message.location:
        lat, lon = message.location.latitude, message.location.longitude
        link = f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=16/{lat}/{lon}"
        return f"[Location] {lat}, {lon}\n{link}", {"kind": "location", "latitude": lat, "longitude": lon}
    if message.contact:
        shared = message.contact
        name = " ".join(part for part in (shared.first_name, shared.last_name) if part)
        facts = {"kind": "contact", "phone_number": shared.phone_number, "name": name, "user_id": shared.user_id}
        return f"[Contact] {name}: {shared.phone_number}", facts
    return caption, {}


def _duration(media: Any) -> str:
    with warnings.catch_warnings():
        # PTB 22 warns that `duration` becomes a timedelta; both forms are handled here.
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = media.duration
    seconds = int(value.total_seconds()) if hasattr(value, "total_seconds") else int(value or 0)
    return f"{seconds // 60}:{seconds % 60:02d}"


def files_in(message: Message) -> list[FileRef]:
    """The files worth storing: the largest photo size, documents, voice, video, stickers."""
    return [dataclasses.replace(ref, filename=ref.filename[-255:]) for ref in _files(message)]


def _files(message: Message) -> list[FileRef]:
    base = f"{message.chat.id}_{message.message_id}"
    if message.photo:
        largest = max(message.photo, key=lambda size: (size.width * size.height, size.file_size or 0))
        return [FileRef(largest.file_id, largest.file_unique_id, f"photo_{base}.jpg", "image/jpeg", largest.file_size)]
    if message.document:
        doc = message.document
        content_type = doc.mime_type or _guess(doc.file_name) or "application/octet-stream"
        name = doc.file_name or f"document_{base}{mimetypes.guess_extension(content_type) or ''}"
        return [FileRef(doc.file_id, doc.file_unique_id, name, content_type, doc.file_size)]
    if message.voice:
        voice = message.voice
        content_type = voice.mime_type or "audio/ogg"
        return [FileRef(voice.file_id, voice.file_unique_id, f"voice_{base}.ogg", content_type, voice.file_size)]
    if message.video:
        video = message.video
        content_type = video.mime_type or "video/mp4"
        name = video.file_name or f"video_{base}.mp4"
        return [FileRef(video.file_id, video.file_unique_id, name, content_type, video.file_size)]
    if message.sticker:
        sticker = message.sticker
        if sticker.is_animated:
            ext, content_type = ".tgs", "application/x-tgsticker"
        elif sticker.is_video:
            ext, content_type = ".webm", "video/webm"
        else:
            ext, content_type = ".webp", "image/webp"
        return [
            FileRef(sticker.file_id, sticker.file_unique_id, f"sticker_{base}{ext}", content_type, sticker.file_size)
        ]
    return []


def _guess(filename: str | None) -> str | None:
    return mimetypes.guess_type(filename)[0] if filename else None
