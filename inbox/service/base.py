"""The shared base of `InboxService`: its dependencies and the event plumbing every write uses."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox.errors import NotFound
from inbox.read import views
from inbox.realtime import events
from inbox.realtime.broker import Broker
from inbox.realtime.events import EventRecord, EventType
from inbox.store.blobs import BlobStore
from inbox.store.engine import Store
from inbox.store.models import (
    Contact,
    Conversation,
    ConversationLabel,
    Label,
    Message,
    MessageKind,
    MessageStatus,
    Outbox,
    key,
)

log = logging.getLogger(__name__)

UNSET: Any = object()


class ServiceBase:
    """What every part of the service shares: the store, the broker, the blobs, and appending and
    publishing events (each write appends inside its transaction and publishes after the commit)."""

    def __init__(self, store: Store, broker: Broker, blobs: BlobStore) -> None:
        self.store = store
        self.broker = broker
        self.blobs = blobs
        self.on_queued: list[Callable[[], None]] = []
        # Called with the conversation id after a change to `resolved` was published (CSAT surveys).
        self.on_resolved: list[Callable[[int], Awaitable[Any]]] = []

    # ── messages are built here, and queued for sending here ────────────────────────────────────
    @staticmethod
    def activity_message(
        conversation_id: int,
        inbox_id: int,
        body: str,
        *,
        now: datetime,
        meta: dict[str, Any] | None = None,
        sender_type: str = "system",
        sender_id: int | None = None,
        sender_name: str = "",
    ) -> Message:
        """An activity line (not sent anywhere): what happened, shown in the thread."""
        return Message(
            conversation_id=conversation_id,
            inbox_id=inbox_id,
            kind=MessageKind.ACTIVITY,
            body=body,
            sender_type=sender_type,
            sender_id=sender_id,
            sender_name=sender_name,
            status=MessageStatus.SENT if sender_type == "system" else MessageStatus.RECEIVED,
            meta=meta or {},
            created_at=now,
            updated_at=now,
        )

    async def queue_system_message(
        self,
        tx: AsyncSession,
        conversation: Conversation,
        body: str,
        *,
        now: datetime,
        meta: dict[str, Any],
        sender_name: str = "",
        kind: MessageKind = MessageKind.OUTGOING,
        inbox_id: int | None = None,
    ) -> Message:
        """A message the system sends (a survey, a continuity mail), queued in the outbox in `tx` like any
        reply, so it goes out on the conversation's channel with the outbox's retries; `wake_outbox` after the
        commit. The one place besides agents' replies where outbox rows are added. `inbox_id`: another inbox
        sends it (a chat continued by email)."""
        message = Message(
            conversation_id=key(conversation),
            inbox_id=conversation.inbox_id if inbox_id is None else inbox_id,
            kind=kind,
            body=body,
            sender_type="system",
            sender_name=sender_name,
            status=MessageStatus.QUEUED,
            client_id=str(uuid.uuid4()),
            meta=meta,
            created_at=now,
            updated_at=now,
        )
        tx.add(message)
        await tx.flush()
        tx.add(Outbox(message_id=key(message), delivery_id=str(uuid.uuid4()), next_attempt_at=now))
        return message

    def wake_outbox(self) -> None:
        """Tell the outbox workers that rows were queued (after the commit)."""
        for wake in self.on_queued:
            wake()

    async def _conversation_view(
        self, tx: AsyncSession, conversation: Conversation, *, labels: list[str] | None = None
    ) -> dict[str, Any]:
        """The conversation as events carry it; `labels` when the caller knows them already."""
        contact = await tx.get(Contact, conversation.contact_id)
        if labels is not None:
            return views.conversation(conversation, contact, labels)
        labels = list(
            (
                await tx.execute(
                    select(Label.name)
                    .join(ConversationLabel, col(ConversationLabel.label_id) == Label.id)
                    .where(col(ConversationLabel.conversation_id) == conversation.id)
                )
            ).scalars()
        )
        return views.conversation(conversation, contact, labels)

    async def _append(
        self,
        tx: AsyncSession,
        pending: Sequence[tuple[EventType, dict[str, Any]]],
        *,
        inbox_id: int | None = None,
        conversation_id: int | None = None,
    ) -> list[EventRecord]:
        rows = [
            await events.append(tx, type_, data, inbox_id=inbox_id, conversation_id=conversation_id)
            for type_, data in pending
        ]
        return [EventRecord.of(row) for row in rows]

    async def _publish(self, records: Iterable[EventRecord]) -> None:
        for record in records:
            await self.broker.publish(record)

    async def append(
        self,
        tx: AsyncSession,
        pending: Sequence[tuple[EventType, dict[str, Any]]],
        *,
        inbox_id: int | None = None,
        conversation_id: int | None = None,
    ) -> list[EventRecord]:
        """Append events inside a sibling writer's open transaction (see `inbox.admin.directory`); publish after commit."""
        return await self._append(tx, pending, inbox_id=inbox_id, conversation_id=conversation_id)

    async def publish(self, records: Iterable[EventRecord]) -> None:
        """Publish events appended with `append`, once their transaction has committed."""
        await self._publish(records)

    async def _follow_merge(self, tx: AsyncSession, contact: Contact) -> Contact:
        while contact.merged_into_id is not None:
            contact = await _get(tx, Contact, contact.merged_into_id)
        return contact


async def _get(session: AsyncSession, model: Any, key: Any) -> Any:
    row = await session.get(model, key)
    if row is None:
        raise NotFound(f"{model.__tablename__} {key} not found")
    return row
