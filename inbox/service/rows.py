"""Rows and events of one inbound message, shared by the per-message and the batched delivery paths."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from channels.base import Delivered, Inbound, OutboundAttachment, ThreadMessage
from inbox.read import views
from inbox.realtime.events import EventType
from inbox.store.blobs import BlobStore
from inbox.store.models import Attachment, Contact, Conversation, Message, MessageKind, MessageStatus, Status, key

PREVIEW_LENGTH = 160


@dataclass(slots=True)
class Written:
    """One new inbound message written (not yet committed): what its events and `Delivered` need."""

    message: Message
    contact: Contact
    conversation: Conversation
    conversation_view: dict[str, Any]
    before: list[tuple[EventType, dict[str, Any]]]  # contact.created / conversation.created / .updated
    attachments: list[Attachment]

    def pending(self) -> list[tuple[EventType, dict[str, Any]]]:
        """Its events; call after the message was flushed (the view carries its id)."""
        created = {**views.message(self.message, self.attachments), "conversation": self.conversation_view}
        return [*self.before, (EventType.MESSAGE_CREATED, created)]

    def delivered(self, blobs: BlobStore) -> Delivered:
        """The answer to the channel, with the stored message (files at their paths in `blobs`)."""
        message = self.message
        stored = ThreadMessage(
            id=key(message),
            conversation_id=key(self.conversation),
            kind=str(message.kind),
            text=message.body,
            sender_name=message.sender_name,
            external_id=message.external_id,
            created_at=message.created_at,
            attachments=[
                OutboundAttachment(row.filename, row.content_type, row.size, str(blobs.path(row.storage_name)))
                for row in self.attachments
            ],
        )
        return Delivered(key(message), key(self.conversation), key(self.contact), True, stored)


def touch_conversation(conversation: Conversation, inbound: Inbound, now: datetime) -> bool:
    """Record an incoming message's activity on its conversation; True when this reopened it.

    Machine-generated mail (`inbound.metadata["automatic"]`: an out-of-office reply, a bounce) is stored and
    shown, but stays out of the agents' way: it neither reopens the conversation nor raises its unread count.
    """
    reopened = False
    automatic = is_automatic(inbound)
    if conversation.status != Status.OPEN and not automatic:
        reopened = True
        conversation.status = Status.OPEN
        conversation.snoozed_until = None
        conversation.resolved_at = None
    conversation.last_activity_at = now
    conversation.last_incoming_at = now
    conversation.updated_at = now
    if not automatic:
        conversation.unread_count += 1
    conversation.preview = preview(inbound.text)
    return reopened


def is_automatic(inbound: Inbound) -> bool:
    """Whether the channel says a machine wrote this message (`Inbound.metadata["automatic"]`, a reason)."""
    return bool(inbound.metadata.get("automatic"))


def incoming_message(inbound: Inbound, contact: Contact, conversation: Conversation, now: datetime) -> Message:
    """The row of an incoming message (not yet added to a session)."""
    return Message(
        conversation_id=key(conversation),
        inbox_id=inbound.inbox_id,
        kind=MessageKind.INCOMING,
        body=inbound.text,
        html=inbound.html,
        sender_type="contact",
        sender_id=contact.id,
        sender_name=inbound.sender.name or contact.name,
        status=MessageStatus.RECEIVED,
        external_id=inbound.external_id,
        # Who wrote it, so a reply goes back to the same identity on the same channel.
        meta={
            **inbound.metadata,
            **({"thread_reason": inbound.thread_reason} if inbound.thread_reason else {}),
            "identity": {
                "kind": str(inbound.sender.kind),
                "value": inbound.sender.value,
                "email": inbound.sender.email,
            },
        },
        created_at=now,
        updated_at=now,
    )


def opened_conversation(inbound: Inbound, contact_id: int, now: datetime) -> Conversation:
    """The row of a conversation an inbound message opens, inserted with that message's activity already
    set (the message does not touch it again)."""
    return Conversation(
        inbox_id=inbound.inbox_id,
        contact_id=contact_id,
        thread_key=inbound.thread_key,
        subject=inbound.subject,
        created_at=now,
        updated_at=now,
        last_activity_at=now,
        last_incoming_at=now,
        unread_count=1,
        preview=preview(inbound.text),
    )


def preview(text: str) -> str:
    """A conversation's one-line preview of its latest message."""
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_LENGTH else flat[: PREVIEW_LENGTH - 1] + "…"
