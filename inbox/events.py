"""The append-only event log: event types, the record clients receive, append and replay.

Only `inbox.service` appends (inside its transaction, last); the stream replays with `after()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Table, delete, func, insert
from sqlmodel import col, select

from inbox.clock import iso, utcnow
from inbox.models import Cursor, Event

PRUNE_MARK = "events.pruned_through"
EVENT_TABLE: Table = Event.metadata.tables["event"]


class EventType(StrEnum):
    """Every event type the agent stream can carry (documented in the README; a test checks)."""

    MESSAGE_CREATED = "message.created"
    MESSAGE_UPDATED = "message.updated"
    CONVERSATION_CREATED = "conversation.created"
    CONVERSATION_UPDATED = "conversation.updated"
    CONTACT_CREATED = "contact.created"
    CONTACT_UPDATED = "contact.updated"
    CONTACT_MERGED = "contact.merged"
    INBOX_UPDATED = "inbox.updated"
    AGENT_UPDATED = "agent.updated"
    LABEL_UPDATED = "label.updated"


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One committed event as the broker carries it and clients receive it."""

    id: int
    type: str
    inbox_id: int | None
    conversation_id: int | None
    data: dict[str, Any]
    created_at: str | None

    def frame(self) -> dict[str, Any]:
        """The stream frame: `{"id", "type", "data"}`."""
        return {"id": self.id, "type": self.type, "data": self.data}

    @classmethod
    def of(cls, row: Event) -> EventRecord:
        assert row.id is not None
        return cls(row.id, row.type, row.inbox_id, row.conversation_id, dict(row.payload), iso(row.created_at))


async def append(
    session: Any,
    type_: EventType,
    data: dict[str, Any],
    *,
    inbox_id: int | None = None,
    conversation_id: int | None = None,
) -> Event:
    """Add one event to the open transaction; its id is known after flush."""
    row = Event(type=str(type_), inbox_id=inbox_id, conversation_id=conversation_id, payload=data)
    session.add(row)
    await session.flush()
    return row


async def append_many(
    session: Any, items: Sequence[tuple[EventType, dict[str, Any], int | None, int | None]]
) -> list[EventRecord]:
    """Append `(type, data, inbox_id, conversation_id)` events with one multi-row INSERT; answers their records.

    The rows of one INSERT get their ids in the order given (SQLite under its write lock, PostgreSQL's
    sequence row by row), so the ids returned, sorted, belong to the items in order. No ORM rows are built:
    at batch sizes their construction cost more than the INSERT.
    """
    if not items:
        return []
    now = utcnow()
    values: list[dict[str, Any]] = [
        {
            "type": str(type_),
            "inbox_id": inbox_id,
            "conversation_id": conversation_id,
            "payload": data,
            "created_at": now,
        }
        for type_, data, inbox_id, conversation_id in items
    ]
    ids = sorted((await session.execute(insert(EVENT_TABLE).returning(EVENT_TABLE.c.id), values)).scalars())
    created_at = iso(now)
    return [
        EventRecord(event_id, str(type_), inbox_id, conversation_id, data, created_at)
        for event_id, (type_, data, inbox_id, conversation_id) in zip(ids, items, strict=True)
    ]


async def after(session: Any, event_id: int, *, limit: int = 500) -> list[EventRecord]:
    """Events with id greater than `event_id`, oldest first."""
    rows = (
        await session.execute(select(Event).where(col(Event.id) > event_id).order_by(col(Event.id)).limit(limit))
    ).scalars()
    return [EventRecord.of(row) for row in rows]


async def latest_id(session: Any) -> int:
    """The newest event id, or 0 for an empty log."""
    value = (await session.execute(select(func.max(Event.id)))).scalar()
    return int(value or 0)


async def pruned_through(session: Any) -> int:
    """Every event id up to this one may have been deleted; resuming from below it needs a resync."""
    row = await session.get(Cursor, PRUNE_MARK)
    return int(row.value) if row is not None else 0


async def prune(session: Any, *, retention_days: int) -> int:
    """Delete events older than the retention window and record the highest deleted id."""
    cutoff = utcnow() - timedelta(days=retention_days)
    highest = (await session.execute(select(func.max(Event.id)).where(col(Event.created_at) < cutoff))).scalar()
    if not highest:
        return 0
    result = await session.execute(delete(Event).where(col(Event.id) <= highest))
    mark = await session.get(Cursor, PRUNE_MARK)
    if mark is None:
        session.add(Cursor(key=PRUNE_MARK, value=str(highest)))
    else:
        mark.value = str(max(int(mark.value), int(highest)))
        mark.updated_at = utcnow()
    return int(result.rowcount or 0)
