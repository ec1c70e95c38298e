"""The append-only event log: event types, the record clients receive, append and replay.

Only `inbox.service.core` appends (inside its transaction, last); the stream and the hub read with `read_settled()`.

Event ids come from a sequence, so on PostgreSQL, where writers commit concurrently (no lock), ids do not
become visible in id order: a transaction holding id N may commit after the one holding N+1, and a rolled-back
one leaves N as a hole forever. A reader that handed on N+1 and moved its cursor past N would skip N for good.
So readers treat an id as final only below a settled horizon. The argument, for a missing id G below a visible
id r: G's writer took G from the sequence before r's writer took r, and r committed before our snapshot; every
INSERT into `event` holds the table's RowExclusiveLock from before it takes its id (the lock is taken when the
statement starts) until its transaction has ended and its commit is visible. So G's writer is either finished —
G is visible in any later snapshot, or it never will be (a hole) — or it is among the transactions holding that
lock right after our read. `read_settled` waits for exactly those transactions (listed in `pg_locks`) to end,
then reads again: every gap below the highest id of the first read is then final. Contiguous reads (the common
case) need no wait. SQLite has one writer at a time, so its ids are visible in order and need none of this.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Table, delete, func, text
from sqlmodel import col, select

from inbox.clock import iso, utcnow
from inbox.store.engine import Store, insert_ids
from inbox.store.models import Cursor, Event

log = logging.getLogger(__name__)

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
    CONTACT_ERASED = "contact.erased"
    INBOX_UPDATED = "inbox.updated"
    AGENT_UPDATED = "agent.updated"
    LABEL_UPDATED = "label.updated"
    SLA_WARNING = "sla.warning"
    SLA_BREACHED = "sla.breached"


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

    The ids come back in the order of the items, paired by `inbox.store.engine.insert_ids`, never by position on
    trust. No ORM rows are built: at
    batch sizes their construction cost more than the INSERT.
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
    ids = await insert_ids(session, EVENT_TABLE, values)
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


@dataclass(frozen=True, slots=True)
class LogRead:
    """What `read_settled` found after a cursor.

    `events`: logged events in id order, all with ids up to `through`; every id in (after, through] is final
    (an id not in `events` is a hole that will never fill, or was pruned). `more`: the log may hold further
    settled events after `through` now (the read stopped at its limit). `settled`: False when the read
    stopped at a gap whose writer was still running when the wait ran out; read again later.
    """

    events: list[EventRecord]
    through: int
    more: bool
    settled: bool = True


# Transactions that may still commit an event: those holding the event table's write lock. `database`
# matters: relation oids are per database and one server holds many databases.
_WRITERS = """
SELECT DISTINCT virtualtransaction FROM pg_locks
WHERE locktype = 'relation' AND mode = 'RowExclusiveLock' AND pid <> pg_backend_pid()
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND relation = 'event'::regclass
"""
_STILL_RUNNING = "SELECT count(*) FROM pg_locks WHERE locktype = 'virtualxid' AND virtualxid = ANY(:ids)"


async def _wait_for_writers(session: Any, wait_seconds: float) -> bool:
    """Wait until every transaction that holds the event table's write lock now has ended; False on timeout."""
    writers = [str(row) for row in (await session.execute(text(_WRITERS))).scalars()]
    if not writers:
        return True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    pause = 0.002
    while True:
        running = (await session.execute(text(_STILL_RUNNING), {"ids": writers})).scalar()
        if not running:
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.02)


async def _rows(session: Any, after: int, through: int | None, limit: int) -> list[EventRecord]:
    query = select(Event).where(col(Event.id) > after)
    if through is not None:
        query = query.where(col(Event.id) <= through)
    rows = (await session.execute(query.order_by(col(Event.id)).limit(limit))).scalars()
    return [EventRecord.of(row) for row in rows]


def _contiguous_prefix(after: int, found: list[EventRecord]) -> list[EventRecord]:
    prefix: list[EventRecord] = []
    for event in found:
        if event.id != after + 1 + len(prefix):
            break
        prefix.append(event)
    return prefix


async def read_settled(store: Store, after: int, *, limit: int = 500, wait_seconds: float = 5.0) -> LogRead:
    """Events after `after` whose ids are final, oldest first (see the module docstring).

    On PostgreSQL a read with a gap waits (up to `wait_seconds`) for the event writers running at that
    moment to end; if they do not, it answers only the contiguous part before the gap, with `settled=False`.
    """
    async with store.session() as session:
        found = await _rows(session, after, None, limit)
        if not found:
            return LogRead([], after, more=False)
        full = len(found) == limit
        prefix = _contiguous_prefix(after, found)
        if store.is_sqlite or len(prefix) == len(found):
            return LogRead(found, found[-1].id, more=full)
        through = found[-1].id
        if not await _wait_for_writers(session, wait_seconds):
            log.info("event log: id %d is not settled yet (a writer is still running)", after + len(prefix) + 1)
            return LogRead(prefix, prefix[-1].id if prefix else after, more=False, settled=False)
        # A new statement, a new snapshot (READ COMMITTED): what those writers committed is visible now.
        final = await _rows(session, after, through, limit)
        if len(final) == limit:
            return LogRead(final, final[-1].id, more=True)
        return LogRead(final, through, more=full)


async def latest_settled(store: Store, *, wait_seconds: float = 30.0) -> int:
    """The newest event id below which every id is final (0 for an empty log): where a new reader starts."""
    async with store.session() as session:
        latest = await latest_id(session)
        if latest and not store.is_sqlite and not await _wait_for_writers(session, wait_seconds):
            log.warning(
                "event log: writers still running after %.0fs; starting after id %d may miss an event they commit",
                wait_seconds,
                latest,
            )
        return latest


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
