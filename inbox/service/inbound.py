"""Inbound writes of `InboxService`: storing customer messages once, finding or creating their contact
and conversation, and edits of stored messages."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from channels.base import Delivered, Inbound
from inbox.clock import utcnow
from inbox.errors import NotFound
from inbox.read import continuity, views
from inbox.read.queries import attachments_of
from inbox.realtime.events import EventType
from inbox.service.base import ServiceBase, _get
from inbox.service.ingest.batcher import DeliveryBatcher
from inbox.service.rows import Written, incoming_message, opened_conversation, touch_conversation
from inbox.store.models import (
    Attachment,
    Contact,
    Conversation,
    Identity,
    Inbox,
    Message,
    key,
)

log = logging.getLogger(__name__)


class InboundWrites(ServiceBase):
    """Customer messages coming in: delivery (through the group-commit batcher), contacts by identity, edits."""

    batcher: DeliveryBatcher  # set by `InboxService.__init__` (it needs the whole service)

    # ── inbound ─────────────────────────────────────────────────────────────────────────────
    async def deliver(self, inbound: Inbound) -> Delivered:
        """Store one inbound message once; find or open its conversation; publish.

        Concurrent deliveries are written together by `self.batcher` (group commit, `inbox.service.ingest.batcher`).
        """
        stored = [(item, await self.blobs.save(item.data)) for item in inbound.attachments]
        return await self.batcher.submit(inbound, stored)

    async def deliver_one(self, inbound: Inbound, stored: Sequence[tuple[Any, Any]]) -> Delivered:
        """The per-message path: one delivery in its own transaction (the batcher's fallback)."""
        for attempt in range(3):
            try:
                return await self._deliver(inbound, stored)
            except IntegrityError:
                # A concurrent delivery of the same message or identity won the race: look again.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _deliver(self, inbound: Inbound, stored: Sequence[tuple[Any, Any]]) -> Delivered:
        async with self.store.transaction() as tx:
            written = await self.deliver_in(tx, inbound, stored, utcnow())
            if isinstance(written, Delivered):
                return written
            records = await self._append(
                tx, written.pending(), inbox_id=written.conversation.inbox_id, conversation_id=written.conversation.id
            )
        await self._publish(records)
        return written.delivered(self.blobs)

    async def deliver_in(
        self, tx: AsyncSession, inbound: Inbound, stored: Sequence[tuple[Any, Any]], now: datetime
    ) -> Delivered | Written:
        """Write one inbound message inside `tx`: a duplicate answers its `Delivered`, a new one its `Written`."""
        duplicate = (
            await tx.execute(
                select(Message).where(
                    col(Message.inbox_id) == inbound.inbox_id, col(Message.external_id) == inbound.external_id
                )
            )
        ).scalar_one_or_none()
        if duplicate is not None:
            conversation = await tx.get(Conversation, duplicate.conversation_id)
            assert duplicate.id is not None and conversation is not None
            return Delivered(duplicate.id, duplicate.conversation_id, conversation.contact_id, False)
        conversation = None
        if inbound.conversation_id is not None:
            # The channel threaded this message itself (email); trust it only within the same inbox, or in
            # a chat inbox that continues its conversations through this one (inbox.read.continuity).
            conversation = await tx.get(Conversation, inbound.conversation_id)
            if conversation is not None and conversation.inbox_id != inbound.inbox_id:
                chat = await tx.get(Inbox, conversation.inbox_id)
                if chat is None or not continuity.links(chat.settings, inbound.inbox_id):
                    conversation = None
        contact, contact_created = await self.contact_for(tx, inbound, conversation)
        conversation = (
            conversation
            or (
                await tx.execute(
                    select(Conversation)
                    .where(
                        col(Conversation.inbox_id) == inbound.inbox_id,
                        col(Conversation.thread_key) == inbound.thread_key,
                    )
                    .order_by(col(Conversation.id).desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
        )
        conversation_created = conversation is None
        reopened = False
        if conversation is None:
            # A conversation found in this inbox proves the inbox exists; only a new one needs the check
            # (a contact created above is rolled back with the error).
            if await tx.get(Inbox, inbound.inbox_id) is None:
                raise NotFound(f"inbox {inbound.inbox_id} not found")
            # Inserted with its first activity already set (no UPDATE after the message).
            conversation = opened_conversation(inbound, key(contact), now)
            tx.add(conversation)
            await tx.flush()
        else:
            # The conversation's activity is written in the same flush as the message.
            reopened = touch_conversation(conversation, inbound, now)
        message = incoming_message(inbound, contact, conversation, now)
        tx.add(message)
        await tx.flush()
        attachments = [
            Attachment(
                message_id=message.id,
                filename=item.filename,
                content_type=item.content_type,
                size=blob.size,
                sha256=blob.sha256,
                storage_name=blob.storage_name,
            )
            for item, blob in stored
        ]
        if attachments:
            tx.add_all(attachments)
            await tx.flush()
        before: list[tuple[EventType, dict[str, Any]]] = []
        if contact_created:
            before.append((EventType.CONTACT_CREATED, views.contact(contact)))
        # A conversation opened in this transaction has no labels yet: no need to ask.
        conversation_view = await self._conversation_view(tx, conversation, labels=[] if conversation_created else None)
        if conversation_created:
            before.append((EventType.CONVERSATION_CREATED, conversation_view))
        elif reopened:
            before.append((EventType.CONVERSATION_UPDATED, {**conversation_view, "changes": ["status"]}))
        return Written(message, contact, conversation, conversation_view, before, attachments)

    async def contact_for(
        self, tx: AsyncSession, inbound: Inbound, threaded: Conversation | None = None
    ) -> tuple[Contact, bool]:
        """Find the contact through the sender's identity (or a verified email); create one otherwise.

        A new email identity whose address is the email the `threaded` conversation's contact gave (a chat
        visitor answering a continuity mail) joins that contact instead of starting another one."""
        sender = inbound.sender
        # The identity's contact in one statement (the identity row itself is not needed).
        contact = (
            await tx.execute(
                select(Contact)
                .join(Identity, col(Identity.contact_id) == col(Contact.id))
                .where(col(Identity.kind) == sender.kind, col(Identity.value) == sender.value)
            )
        ).scalar_one_or_none()
        if contact is not None:
            contact = await self._follow_merge(tx, contact)
            if sender.name and not contact.name:
                contact.name = sender.name
            return contact, False
        contact = None
        if sender.email and sender.verified:
            by_email = (
                await tx.execute(
                    select(Identity).where(col(Identity.kind) == "email", col(Identity.value) == sender.email.lower())
                )
            ).scalar_one_or_none()
            if by_email is not None:
                contact = await self._follow_merge(tx, await _get(tx, Contact, by_email.contact_id))
        if contact is None and threaded is not None and sender.kind == "email":
            owner = await self._follow_merge(tx, await _get(tx, Contact, threaded.contact_id))
            if owner.email and owner.email.lower() == sender.value.lower():
                contact = owner
        created = contact is None
        if contact is None:
            contact = Contact(name=sender.name, email=sender.email.lower() if sender.email else None)
            tx.add(contact)
            await tx.flush()
        tx.add(
            Identity(
                contact_id=key(contact),
                kind=str(sender.kind),
                value=sender.value,
                name=sender.name,
                verified=sender.verified,
            )
        )
        await tx.flush()
        return contact, created

    async def edit_incoming(self, inbound: Inbound, edited_at: datetime | None = None) -> Delivered | None:
        """A customer edited a message: store the new text, mark it edited, publish `message.updated`.

        Answers None when `(inbox, external_id)` was never stored.
        """
        now = utcnow()
        async with self.store.transaction() as tx:
            message = (
                await tx.execute(
                    select(Message).where(
                        col(Message.inbox_id) == inbound.inbox_id, col(Message.external_id) == inbound.external_id
                    )
                )
            ).scalar_one_or_none()
            if message is None:
                return None
            conversation = await _get(tx, Conversation, message.conversation_id)
            result = Delivered(key(message), message.conversation_id, conversation.contact_id, False)
            if message.body == inbound.text and message.html == inbound.html:
                return result
            message.body = inbound.text
            message.html = inbound.html
            message.meta = {**message.meta, **inbound.metadata, "edited_at": (edited_at or now).isoformat()}
            message.updated_at = now
            attachments = await attachments_of(tx, [key(message)])
            records = await self._append(
                tx,
                [(EventType.MESSAGE_UPDATED, views.message(message, attachments.get(key(message), [])))],
                inbox_id=message.inbox_id,
                conversation_id=message.conversation_id,
            )
        await self._publish(records)
        return result
