"""Writes of `InboxService` outside conversations' flow: reply delivery results, uploads and contacts."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import col, select

from inbox.clock import utcnow
from inbox.errors import Conflict, Invalid
from inbox.read import views
from inbox.read.queries import attachments_of
from inbox.realtime.events import EventType
from inbox.service.base import ServiceBase, _get
from inbox.store import audit
from inbox.store.blobs import StoredBlob
from inbox.store.models import (
    Agent,
    Attachment,
    Contact,
    Conversation,
    Identity,
    Message,
    MessageKind,
    MessageStatus,
    Outbox,
)

log = logging.getLogger(__name__)


class DeliveryResults(ServiceBase):
    """What the outbox reports back about replies: sent, failed, retrying; and a manual retry."""

    async def mark_sent(self, message_id: int, external_id: str | None) -> None:
        await self._set_delivery(message_id, MessageStatus.SENT, None, external_id=external_id, done=True)

    async def mark_failed(self, message_id: int, reason: str) -> None:
        await self._set_delivery(message_id, MessageStatus.FAILED, reason, done=True)

    async def record_delivery_status(
        self,
        inbox_id: int,
        external_id: str,
        status: MessageStatus,
        *,
        supersedes: Callable[[str], bool],
        at: datetime | None = None,
        error: str | None = None,
    ) -> bool:
        """Apply a channel's receipt (delivered, read, failed) to our outgoing message with this channel id.

        The message is found by `(inbox_id, external_id)` among outgoing messages; `supersedes(current status)`
        decides, inside the transaction, whether the receipt moves it forwards (receipts arrive out of order).
        Publishes `message.updated` only when the status changed. Answers False when no such message exists.
        """
        async with self.store.transaction() as tx:
            message = (
                await tx.execute(
                    select(Message).where(
                        col(Message.inbox_id) == inbox_id,
                        col(Message.external_id) == external_id,
                        col(Message.kind) == MessageKind.OUTGOING,
                    )
                )
            ).scalar_one_or_none()
            if message is None or message.id is None:
                return False
            if not supersedes(message.status):
                return True
            message.status = status
            message.error = (error or "failed") if status == MessageStatus.FAILED else None
            message.updated_at = utcnow()
            if at is not None:  # when the channel saw each step, for the message's details
                message.meta = {
                    **message.meta,
                    "receipts": {**message.meta.get("receipts", {}), status: at.isoformat()},
                }
            attachments = await attachments_of(tx, [message.id])
            view = views.message(message, attachments.get(message.id, []))
            records = await self._append(
                tx, [(EventType.MESSAGE_UPDATED, view)], inbox_id=inbox_id, conversation_id=message.conversation_id
            )
        await self._publish(records)
        return True

    async def note_retry(self, message_id: int, reason: str, next_attempt_at: datetime) -> None:
        """Record a transient failure; the message stays queued (no event: nothing changed for agents)."""
        async with self.store.transaction() as tx:
            await tx.execute(
                update(Outbox)
                .where(col(Outbox.message_id) == message_id)
                .values(last_error=reason, next_attempt_at=next_attempt_at)
            )

    async def retry(self, message_id: int) -> dict[str, Any]:
        """Queue a failed outgoing message again (the retry button)."""
        async with self.store.session() as session:
            message = await _get(session, Message, message_id)
        mail = message.kind == MessageKind.ACTIVITY and "continuity" in message.meta  # a continuity mail
        if not (message.kind == MessageKind.OUTGOING or mail) or message.status != MessageStatus.FAILED:
            raise Conflict(f"message {message_id} is not a failed outgoing message")
        view = await self._set_delivery(message_id, MessageStatus.QUEUED, None, done=False, reset=True)
        for wake in self.on_queued:
            wake()
        return view

    async def _set_delivery(
        self,
        message_id: int,
        status: MessageStatus,
        error: str | None,
        *,
        done: bool,
        external_id: str | None = None,
        reset: bool = False,
    ) -> dict[str, Any]:
        now = utcnow()
        async with self.store.transaction() as tx:
            message = await _get(tx, Message, message_id)
            message.status = status
            message.error = error
            message.updated_at = now
            if external_id is not None:
                message.external_id = external_id
            values: dict[str, Any] = {"done": done}
            if reset:
                values.update(attempts=0, next_attempt_at=now, last_error=None)
            elif error is not None:
                values["last_error"] = error
            await tx.execute(update(Outbox).where(col(Outbox.message_id) == message_id).values(**values))
            attachments = await attachments_of(tx, [message_id])
            view = views.message(message, attachments.get(message_id, []))
            conversation = await _get(tx, Conversation, message.conversation_id)
            records = await self._append(
                tx,
                [(EventType.MESSAGE_UPDATED, view)],
                inbox_id=conversation.inbox_id,  # a continuity mail travels through another inbox
                conversation_id=message.conversation_id,
            )
        await self._publish(records)
        return view


class Uploads(ServiceBase):
    """Files an agent uploads before attaching them to a reply, and the cleanup of those never attached."""

    async def add_upload(self, *, by: Agent, filename: str, content_type: str, blob: StoredBlob) -> dict[str, Any]:
        """Record an agent's upload, not yet part of a message (no event: only its uploader can use it)."""
        async with self.store.transaction() as tx:
            row = Attachment(
                uploaded_by=by.id,
                filename=filename,
                content_type=content_type,
                size=blob.size,
                sha256=blob.sha256,
                storage_name=blob.storage_name,
            )
            tx.add(row)
            await tx.flush()
            view = views.attachment(row)
        return view

    async def remove_unattached_uploads(self, older_than: timedelta, *, limit: int = 500) -> int:
        """Delete uploads never attached to a message, older than `older_than`, with their files.

        Each row is deleted only while still unattached, so a reply claiming it at the same moment wins;
        a file is removed once no other attachment row names it. No event: only the uploader knew of it.
        """
        cutoff = utcnow() - older_than
        async with self.store.transaction() as tx:
            rows = list(
                (
                    await tx.execute(
                        select(Attachment.id, Attachment.storage_name)
                        .where(col(Attachment.message_id).is_(None), col(Attachment.created_at) < cutoff)
                        .order_by(col(Attachment.id))
                        .limit(limit)
                    )
                ).all()
            )
            removed: list[str] = []
            for attachment_id, storage_name in rows:
                result = await tx.execute(
                    delete(Attachment).where(col(Attachment.id) == attachment_id, col(Attachment.message_id).is_(None))
                )
                if getattr(result, "rowcount", 0):
                    removed.append(storage_name)
            still_used = (
                set(
                    (
                        await tx.execute(
                            select(Attachment.storage_name).where(col(Attachment.storage_name).in_(removed))
                        )
                    ).scalars()
                )
                if removed
                else set()
            )
        for storage_name in removed:
            if storage_name not in still_used:
                await self.blobs.delete(storage_name)
        return len(removed)


class ContactWrites(ServiceBase):
    """Edits, attributes and merges of contacts."""

    async def update_contact(self, contact_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        async with self.store.transaction() as tx:
            contact = await _get(tx, Contact, contact_id)
            for key, value in fields.items():
                setattr(contact, key, value)
            contact.updated_at = utcnow()
            identities = list(
                (await tx.execute(select(Identity).where(col(Identity.contact_id) == contact_id))).scalars()
            )
            view = views.contact(contact, identities)
            records = await self._append(tx, [(EventType.CONTACT_UPDATED, view)])
        await self._publish(records)
        return view

    async def set_contact_attributes(self, kind: str, value: str, attributes: Mapping[str, Any]) -> None:
        """Merge attributes into the contact owning identity `(kind, value)`; None removes a key.

        Channels use it for facts they learn (a Telegram username, "unreachable"); no event when unchanged.
        """
        async with self.store.transaction() as tx:
            identity = (
                await tx.execute(select(Identity).where(col(Identity.kind) == kind, col(Identity.value) == value))
            ).scalar_one_or_none()
            if identity is None:
                return
            contact = await self._follow_merge(tx, await _get(tx, Contact, identity.contact_id))
            merged = {**contact.attributes}
            for name, item in attributes.items():
                if item is None:
                    merged.pop(name, None)
                else:
                    merged[name] = item
            if merged == contact.attributes:
                return
            contact.attributes = merged
            contact.updated_at = utcnow()
            identities = list(
                (await tx.execute(select(Identity).where(col(Identity.contact_id) == contact.id))).scalars()
            )
            records = await self._append(tx, [(EventType.CONTACT_UPDATED, views.contact(contact, identities))])
        await self._publish(records)

    async def merge_contacts(self, source_id: int, target_id: int) -> dict[str, Any]:
        """Fold `source` into `target`: identities and conversations move; source points at target."""
        if source_id == target_id:
            raise Invalid("into_id: a contact cannot be merged into itself")
        async with self.store.transaction() as tx:
            source = await _get(tx, Contact, source_id)
            target = await _get(tx, Contact, target_id)
            if source.merged_into_id is not None or target.merged_into_id is not None:
                raise Conflict("contact was already merged")
            await tx.execute(update(Identity).where(col(Identity.contact_id) == source_id).values(contact_id=target_id))
            await tx.execute(
                update(Conversation).where(col(Conversation.contact_id) == source_id).values(contact_id=target_id)
            )
            target.name = target.name or source.name
            target.email = target.email or source.email
            target.phone = target.phone or source.phone
            target.attributes = {**source.attributes, **target.attributes}
            target.updated_at = utcnow()
            source.merged_into_id = target_id
            await audit.record(
                tx, "contact.merged", target_type="contact", target_id=target_id, before={"contact_id": source_id}
            )
            identities = list(
                (await tx.execute(select(Identity).where(col(Identity.contact_id) == target_id))).scalars()
            )
            view = views.contact(target, identities)
            records = await self._append(tx, [(EventType.CONTACT_MERGED, {**view, "merged_id": source_id})])
        await self._publish(records)
        return view
