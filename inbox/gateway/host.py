"""The core as a channel sees it: `channels.base.Host`, implemented over the store, the service and the hub."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlmodel import col, select

from channels.base import (
    Delivered,
    DeliveryStatus,
    Edit,
    FailureRun,
    Identity,
    Inbound,
    InboxInfo,
    OutboundAttachment,
    ThreadInfo,
    ThreadMessage,
)
from inbox.clock import utcnow
from inbox.gateway.admission import Admission
from inbox.gateway.outbox import inbox_info
from inbox.gateway.quarantine import Quarantine
from inbox.read import access, continuity
from inbox.realtime.hub import Hub
from inbox.service import InboxService
from inbox.store.blobs import BlobStore
from inbox.store.engine import Store
from inbox.store.models import (
    Agent,
    Attachment,
    Contact,
    Conversation,
    Cursor,
    Inbox,
    Message,
    MessageKind,
    MessageStatus,
    Status,
)
from inbox.store.models import Identity as IdentityRow

log = logging.getLogger(__name__)
VISIBLE_KINDS = (MessageKind.INCOMING, MessageKind.OUTGOING)
# A delivery failing with one of these is the store being unreachable, not a bad message.
UNREACHABLE = (OperationalError, InterfaceError, OSError, TimeoutError)
PARTICIPANT_SCAN = 200  # incoming messages looked at when listing a conversation's participants


class CoreHost:
    """What adapters may ask of the core: deliver or edit messages, look up inboxes, threads and cursors,
    and a few live-chat needs."""

    def __init__(
        self, store: Store, service: InboxService, hub: Hub | None = None, admission: Admission | None = None
    ) -> None:
        self.store = store
        self.service = service
        self.hub = hub
        self.quarantined = Quarantine(store, service.blobs)
        self.on_seen: list[Callable[[int, int], Awaitable[None]]] = []  # (conversation id, message id)
        self.admission = admission or Admission(0)
        self.delivering = FailureRun(log, "deliveries (the database is unreachable)")

    async def deliver(self, inbound: Inbound) -> Delivered:
        """Store one inbound message; raises `Overloaded` (nothing written) when too many are in flight.

        While the store is unreachable every delivery fails: logged as one line when that starts and one, with
        the count, when deliveries succeed again (the channel answers each sender "try again later").
        """
        with self.admission.slot():
            try:
                delivered = await self.service.deliver(inbound)
            except UNREACHABLE as error:
                self.delivering.failed(error)
                raise
        self.delivering.succeeded()
        return delivered

    async def inbox(self, inbox_id: int) -> InboxInfo | None:
        async with self.store.session() as session:
            row = await session.get(Inbox, inbox_id)
        return inbox_info(row) if row is not None else None

    async def inboxes(self, channel: str) -> Sequence[InboxInfo]:
        async with self.store.session() as session:
            rows = (
                await session.execute(select(Inbox).where(col(Inbox.channel) == channel).order_by(col(Inbox.id)))
            ).scalars()
            return [inbox_info(row) for row in rows]

    # ── live channels ───────────────────────────────────────────────────────────────────────
    async def thread(self, inbox_id: int, thread_key: str, *, after: int | None, limit: int) -> Sequence[ThreadMessage]:
        query = (
            select(Message)
            .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
            .where(
                col(Conversation.inbox_id) == inbox_id,
                col(Conversation.thread_key) == thread_key,
                col(Message.kind).in_(VISIBLE_KINDS),
            )
        )
        if after is None:
            query = query.order_by(col(Message.id).desc()).limit(limit)
        else:
            query = query.where(col(Message.id) > after).order_by(col(Message.id)).limit(limit)
        async with self.store.session() as session:
            rows = sorted((await session.execute(query)).scalars(), key=lambda row: row.id or 0)
            ids = [row.id for row in rows if row.id is not None]
            files: dict[int, list[Attachment]] = {}
            if ids:
                found = await session.execute(
                    select(Attachment).where(col(Attachment.message_id).in_(ids)).order_by(col(Attachment.id))
                )
                for item in found.scalars():
                    assert item.message_id is not None
                    files.setdefault(item.message_id, []).append(item)
        return [
            ThreadMessage(
                id=row.id,
                conversation_id=row.conversation_id,
                kind=row.kind,
                text=row.body,
                sender_name=row.sender_name,
                external_id=row.external_id,
                created_at=row.created_at,
                attachments=[self._file(item) for item in files.get(row.id, [])],
            )
            for row in rows
            if row.id is not None
        ]

    async def attachment(self, inbox_id: int, message_id: int, index: int) -> OutboundAttachment | None:
        async with self.store.session() as session:
            message = await session.get(Message, message_id)
            if message is None or message.kind not in VISIBLE_KINDS:
                return None
            # The conversation's inbox decides (a visitor's answer by email travelled through an email inbox).
            conversation = await session.get(Conversation, message.conversation_id)
            if conversation is None or conversation.inbox_id != inbox_id:
                return None
            rows = list(
                (
                    await session.execute(
                        select(Attachment).where(col(Attachment.message_id) == message_id).order_by(col(Attachment.id))
                    )
                ).scalars()
            )
        return self._file(rows[index]) if 0 <= index < len(rows) else None

    def _file(self, row: Attachment) -> OutboundAttachment:
        blobs: BlobStore = self.service.blobs
        return OutboundAttachment(row.filename, row.content_type, row.size, str(blobs.path(row.storage_name)))

    async def update_contact(self, sender: Identity) -> bool:
        async with self.store.session() as session:
            identity = (
                await session.execute(
                    select(IdentityRow).where(
                        col(IdentityRow.kind) == str(sender.kind), col(IdentityRow.value) == sender.value
                    )
                )
            ).scalar_one_or_none()
            if identity is None:
                return False
            contact = await session.get(Contact, identity.contact_id)
            while contact is not None and contact.merged_into_id is not None:
                contact = await session.get(Contact, contact.merged_into_id)
        if contact is None or contact.id is None:
            return False
        fields: dict[str, Any] = {}
        if sender.name and sender.name != contact.name:
            fields["name"] = sender.name
        if sender.email and sender.email.lower() != contact.email:
            fields["email"] = sender.email.lower()
        if fields:
            await self.service.update_contact(contact.id, fields)
        return True

    async def signal(self, inbox_id: int, thread_key: str, frame: Mapping[str, Any]) -> None:
        async with self.store.session() as session:
            conversation_id = (
                await session.execute(
                    select(Conversation.id)
                    .where(col(Conversation.inbox_id) == inbox_id, col(Conversation.thread_key) == thread_key)
                    .order_by(col(Conversation.id).desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
        if conversation_id is None:
            return
        await self.service.broker.publish_ephemeral({**frame, "conversation_id": conversation_id}, inbox_id)
        message_id = frame.get("message_id")
        if frame.get("type") == "seen" and frame.get("sender") == "contact" and isinstance(message_id, int):
            for on_seen in self.on_seen:  # e.g. continuity: replies the visitor saw are never emailed
                await on_seen(conversation_id, message_id)

    async def signal_contact(self, inbox_id: int, identity: Identity, frame: Mapping[str, Any]) -> None:
        """`channels.base.ContactSignalling`: an ephemeral frame about a person (a phone ringing) to the inbox's agents.

        Adds `contact` ({id, name, open_conversations}) when the identity belongs to a contact, and
        `conversation_id` (the inbox's newest conversation with that contact) when there is one. Nothing is stored.
        """
        extra: dict[str, Any] = {}
        async with self.store.session() as session:
            row = (
                await session.execute(
                    select(IdentityRow).where(
                        col(IdentityRow.kind) == str(identity.kind), col(IdentityRow.value) == identity.value
                    )
                )
            ).scalar_one_or_none()
            contact = await session.get(Contact, row.contact_id) if row is not None else None
            while contact is not None and contact.merged_into_id is not None:
                contact = await session.get(Contact, contact.merged_into_id)
            if contact is not None and contact.id is not None:
                # Conversations moved by a merge point at the surviving contact.
                conversations = list(
                    (
                        await session.execute(
                            select(Conversation.id, Conversation.inbox_id, Conversation.status).where(
                                col(Conversation.contact_id) == contact.id
                            )
                        )
                    ).all()
                )
                open_count = sum(1 for _, _, status in conversations if status != Status.RESOLVED)
                extra["contact"] = {"id": contact.id, "name": contact.name, "open_conversations": open_count}
                here = [conversation_id for conversation_id, inbox, _ in conversations if inbox == inbox_id]
                if here:
                    extra["conversation_id"] = max(here)
        await self.service.broker.publish_ephemeral({**frame, **extra}, inbox_id)

    async def record_status(
        self,
        inbox_id: int,
        external_id: str,
        status: DeliveryStatus,
        *,
        at: datetime | None = None,
        error: str | None = None,
    ) -> bool:
        """`channels.base.StatusRecording`: a delivery receipt of our outgoing message, applied by the service."""
        return await self.service.record_delivery_status(
            inbox_id, external_id, MessageStatus(str(status)), supersedes=status.supersedes, at=at, error=error
        )

    async def agents_online(self, inbox_id: int) -> bool:
        """An agent counts as online while their agent stream is connected to this process."""
        if self.hub is None:
            return False
        connected = self.hub.connected_agents()
        if not connected:
            return False
        async with self.store.session() as session:
            agents = list((await session.execute(select(Agent).where(col(Agent.id).in_(connected)))).scalars())
        for agent in agents:
            if agent.active and await access.may_see_inbox(self.store, agent, inbox_id):
                return True
        return False

    async def edit(self, edit: Edit) -> Delivered | None:
        return await self.service.edit_incoming(edit.inbound, edit.edited_at)

    async def set_contact_attributes(self, identity: Identity, attributes: Mapping[str, Any]) -> None:
        await self.service.set_contact_attributes(str(identity.kind), identity.value, attributes)

    async def load_cursor(self, key: str) -> str | None:
        async with self.store.session() as session:
            row = await session.get(Cursor, key)
        return row.value if row is not None else None

    async def quarantine(self, inbox_id: int, raw: bytes, reason: str, *, sender: str = "", subject: str = "") -> int:
        # Poison mail is for admins (inbox.gateway.quarantine), never conversation data.
        return await self.quarantined.hold(inbox_id, raw, reason, sender=sender, subject=subject)

    async def save_cursor(self, key: str, value: str) -> None:
        # A cursor is a channel's own position, not conversation data: written here, not by the service.
        for attempt in range(2):
            try:
                async with self.store.transaction() as tx:
                    row = await tx.get(Cursor, key)
                    if row is None:
                        tx.add(Cursor(key=key, value=value, updated_at=utcnow()))
                    else:
                        row.value = value
                        row.updated_at = utcnow()
                return
            except IntegrityError:
                if attempt == 1:  # another process inserted the same key at the same moment: update it instead
                    raise

    async def find_conversation(
        self, inbox_id: int, *, conversation_id: int | None = None, external_id: str | None = None
    ) -> ThreadInfo | None:
        async with self.store.session() as session:
            if conversation_id is None and external_id is not None:
                conversation_id = (
                    await session.execute(
                        select(Message.conversation_id).where(
                            col(Message.inbox_id) == inbox_id, col(Message.external_id) == external_id
                        )
                    )
                ).scalar_one_or_none()
            if conversation_id is None:
                return None
            conversation = await session.get(Conversation, conversation_id)
            if conversation is None:
                return None
            participants: set[str] = set()
            if conversation.inbox_id != inbox_id:
                # A chat continued by email through this inbox (inbox.read.continuity): the address the visitor gave.
                chat = await session.get(Inbox, conversation.inbox_id)
                if chat is None or not continuity.links(chat.settings, inbox_id):
                    return None
                contact = await session.get(Contact, conversation.contact_id)
                if contact is not None and contact.email:
                    participants.add(contact.email)
            identities = (
                await session.execute(
                    select(IdentityRow.value).where(
                        col(IdentityRow.contact_id) == conversation.contact_id, col(IdentityRow.kind) == "email"
                    )
                )
            ).scalars()
            participants.update(identities)
            metas = (
                await session.execute(
                    select(Message.meta)
                    .where(col(Message.conversation_id) == conversation_id, col(Message.kind) == MessageKind.INCOMING)
                    .order_by(col(Message.id).desc())
                    .limit(PARTICIPANT_SCAN)
                )
            ).scalars()
            for meta in metas:
                participants.update(_addresses(meta))
            agents = (await session.execute(select(Agent.email).where(col(Agent.active) == True))).scalars()  # noqa: E712
            participants.update(agents)
        return ThreadInfo(conversation_id, frozenset(item.lower() for item in participants if item))

    async def known_external_ids(self, inbox_id: int, external_ids: Sequence[str]) -> set[str]:
        if not external_ids:
            return set()
        async with self.store.session() as session:
            rows = (
                await session.execute(
                    select(Message.external_id).where(
                        col(Message.inbox_id) == inbox_id, col(Message.external_id).in_(list(external_ids))
                    )
                )
            ).scalars()
            return {row for row in rows if row is not None}

    async def message_digests(self, inbox_id: int, external_ids: Sequence[str]) -> dict[str, str | None]:
        """`channels.base.MessageDigests`: the digest stored with each of these messages (`meta.email.digest`)."""
        if not external_ids:
            return {}
        async with self.store.session() as session:
            rows = (
                await session.execute(
                    select(Message.external_id, Message.meta).where(
                        col(Message.inbox_id) == inbox_id, col(Message.external_id).in_(list(external_ids))
                    )
                )
            ).all()
        found: dict[str, str | None] = {}
        for external_id, meta in rows:
            email = meta.get("email") if isinstance(meta, dict) else None
            digest = email.get("digest") if isinstance(email, dict) else None
            if external_id is not None:
                found[external_id] = digest if isinstance(digest, str) else None
        return found

    async def mark_failed(self, inbox_id: int, external_id: str, reason: str) -> bool:
        async with self.store.session() as session:
            message_id = (
                await session.execute(
                    select(Message.id).where(
                        col(Message.inbox_id) == inbox_id,
                        col(Message.external_id) == external_id,
                        # our replies, and continuity mails (activity lines that travelled by email)
                        col(Message.kind).in_((MessageKind.OUTGOING, MessageKind.ACTIVITY)),
                    )
                )
            ).scalar_one_or_none()
        if message_id is None:
            return False
        await self.service.mark_failed(message_id, reason)
        return True


def _addresses(meta: Any) -> list[str]:
    """Addresses a stored incoming message names: its sender and, for email, its recipients."""
    found: list[str] = []
    identity = meta.get("identity") if isinstance(meta, dict) else None
    if isinstance(identity, dict):
        found += [value for value in (identity.get("email"), identity.get("value")) if isinstance(value, str)]
    email = meta.get("email") if isinstance(meta, dict) else None
    if isinstance(email, dict):
        for name in ("to", "cc"):
            values = email.get(name)
            if isinstance(values, list):
                found += [value for value in values if isinstance(value, str)]
    return found
