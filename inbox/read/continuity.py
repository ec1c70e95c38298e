"""Email continuity for live chat: agent replies a widget visitor has not seen go to them by email, batched.

A webchat inbox names an email inbox in its settings (`email_continuity_inbox_id`). The worker (one per
cluster, under a lease) follows the event log from a durable cursor: an agent reply in such an inbox schedules
its conversation. When the agent has been quiet for `delay_seconds` (at most `max_delay_seconds` after the
first unseen reply), every reply newer than what the visitor has seen (the widget's "seen" frames, recorded
durably by `ContinuityWorker.record_seen`), what was emailed before and the visitor's own last message becomes ONE mail to the
contact's email address. The decision and the mail are one transaction: an activity line ("Sent by email …")
travelling through the email inbox, with an outbox row — so the outbox sends it once, retries it, and a
restart neither loses nor doubles it. The email channel threads the visitor's answer back into the chat
conversation (cross-inbox match by the continuity mail's token; the core accepts it because of the setting).

This module holds the rules as pure functions (settings, the mail's text, its `Outbound`), used by the service,
the host, the directory and the outbox; `inbox.continuity.worker` does the I/O. It names no concrete channel:
the mail is an `Outbound` for whatever channel the named inbox has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from channels.base import Identity, IdentityKind, InboxInfo, Outbound, OutboundAttachment
from inbox.errors import Invalid
from inbox.store.models import Conversation, Message, key

INBOX_KEY = "email_continuity_inbox_id"  # webchat inbox setting: the email inbox that carries continuity mail
LINK_KEY = "email_continuity_chat_url"  # webchat inbox setting: the page with the widget, linked from the mail
CURSOR = "continuity.events"
EVENT_BATCH = 500
MAX_REPLIES = 50  # replies in one mail; more go into the next one


# ── settings (pure) ─────────────────────────────────────────────────────────────────────────
def email_inbox_of(settings: Mapping[str, Any]) -> int | None:
    """The email inbox a chat inbox's settings name for continuity, or None when it is off."""
    value = settings.get(INBOX_KEY)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def links(chat_settings: Mapping[str, Any], email_inbox_id: int) -> bool:
    """Whether a conversation of the chat inbox with these settings may receive mail through `email_inbox_id`."""
    return email_inbox_of(chat_settings) == email_inbox_id


def check_settings(channel: str, settings: Mapping[str, Any], inboxes: Mapping[int, str]) -> None:
    """Refuse bad continuity settings with an error naming the key; `inboxes` maps inbox ids to channels."""
    value = settings.get(INBOX_KEY)
    if value is not None:
        if channel != "webchat":
            raise Invalid(f"settings.{INBOX_KEY}: only a webchat inbox continues its chats by email")
        if isinstance(value, bool) or not isinstance(value, int) or inboxes.get(value) != "email":
            raise Invalid(f"settings.{INBOX_KEY}: expected the id of an email inbox, got {value!r}")
    link = settings.get(LINK_KEY)
    if link is not None and link != "":
        parts = urlsplit(link) if isinstance(link, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or len(link) > 2000:
            raise Invalid(f"settings.{LINK_KEY}: expected an http(s) address of the page with the chat, got {link!r}")


# ── the mail (pure) ─────────────────────────────────────────────────────────────────────────
def compose_text(inbox_name: str, replies: Sequence[Message], link: str | None) -> str:
    """The mail's Markdown: every unseen reply with its author, then how to answer."""
    count = len(replies)
    lines = [f"You have {count} new {'reply' if count == 1 else 'replies'} in your chat with {inbox_name}:", ""]
    for reply in replies:
        lines += [f"**{reply.sender_name or inbox_name}:**", "", reply.body.strip(), "", "---", ""]
    lines.append("Reply to this email to answer; your answer joins the same conversation.")
    if link:
        lines += ["", f"Or continue the chat: <{link}>"]
    return "\n".join(lines)


def activity_text(address: str, count: int) -> str:
    return f"Sent by email to {address} ({count} {'reply' if count == 1 else 'replies'} the visitor had not seen)"


def reply_ids(message: Message) -> list[int]:
    """The chat replies a continuity mail carries (empty for any other message)."""
    meta = message.meta.get("continuity")
    found = meta.get("replies") if isinstance(meta, dict) else None
    return [item for item in found if isinstance(item, int)] if isinstance(found, list) else []


def outbound(
    message: Message,
    conversation: Conversation,
    inbox: InboxInfo,
    delivery_id: str,
    files: Sequence[OutboundAttachment],
) -> Outbound | None:
    """The `Outbound` of a continuity mail (the outbox sends it through `inbox`); None for other messages."""
    meta = message.meta.get("continuity")
    if not isinstance(meta, dict):
        return None
    address = str(meta["to"])
    return Outbound(
        inbox=inbox,
        message_id=key(message),
        conversation_id=key(conversation),
        delivery_id=delivery_id,
        thread_key=conversation.thread_key,
        recipient=Identity(IdentityKind.EMAIL, address, name=str(meta.get("name") or ""), email=address),
        text=str(meta["text"]),
        agent_name=str(meta.get("from_name") or ""),
        subject=str(meta.get("subject") or "") or None,
        attachments=files,
        metadata={
            "automatic": True,  # Auto-Submitted: the visitor's autoresponder must not answer into the chat
            "reply_all": False,
            "continuity": True,
            "in_reply_to": meta.get("in_reply_to"),
            "in_reply_to_meta": {"email": {"references": list(meta.get("references") or [])}},
        },
    )


def address_of(value: str | None) -> str | None:
    """The visitor's address when it looks like one we can mail, else None."""
    if not value:
        return None
    value = value.strip()
    local, at, domain = value.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() or c in "<>,;" for c in value):
        return None
    return value


def chat_link(settings: Mapping[str, Any]) -> str | None:
    value = settings.get(LINK_KEY)
    return value if isinstance(value, str) and value.startswith(("http://", "https://")) else None
