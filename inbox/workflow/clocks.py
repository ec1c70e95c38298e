"""SLA clocks, stored: follows the event log, keeps one `SlaClock` row per running promise, and records
warnings and breaches through the service (`InboxService.record_sla_alert`, once each).

One process of the cluster runs `SlaClocks.run` (app.py holds the `timer:sla` lease around it). It reads the
log after its own cursor (`Cursor` row `workflow:sla:events`), so a restart misses nothing; a new install
starts at the log's end. What an event does:

- `conversation.created`: start the first-response and resolution promises of the policy that applies;
- `message.created`, incoming: start a next-response promise when the first response was given (each
  customer message waiting for a reply; one clock covers a run of them);
- `message.created`, outgoing (an agent's reply): the first and next response promises are met;
- `conversation.updated` with a status change: pending/snoozed pause every clock, open resumes them,
  resolved meets the resolution promise and pauses the others.

Times are the events' own (when the change was committed), counted in the inbox's business hours. The
warning comes `warning_seconds` (wall clock) before the due time. This module writes only `SlaClock` rows and
its cursor; activity lines and events go through the service.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox.clock import iso, parse_iso, utcnow
from inbox.realtime import events
from inbox.realtime.events import EventRecord, EventType
from inbox.service import InboxService
from inbox.store.models import Conversation, Cursor, Inbox, MessageKind, SlaClock, SlaPolicy, Status
from inbox.workflow.calendars import calendar_of
from inbox.workflow.hours import Calendar
from inbox.workflow.sla import Policy, Promise, Target, policy_for

log = logging.getLogger(__name__)

CURSOR = "workflow:sla:events"
BATCH = 500
MAX_WARNING = timedelta(days=7)
NAMES = {
    Target.FIRST_RESPONSE: "first response",
    Target.NEXT_RESPONSE: "next response",
    Target.RESOLUTION: "resolution",
}


def policy_of(row: SlaPolicy) -> Policy:
    assert row.id is not None
    return Policy(
        row.id,
        row.inbox_id,
        row.priority,
        row.first_response_seconds,
        row.next_response_seconds,
        row.resolution_seconds,
        row.warning_seconds,
    )


def promise_of(row: SlaClock) -> Promise:
    return Promise(row.target_seconds, row.started_at, row.elapsed, row.running_since, row.met_at)


def _store(row: SlaClock, promise: Promise, calendar: Calendar) -> None:
    row.elapsed = promise.elapsed
    row.running_since = promise.running_since
    row.met_at = promise.met_at
    row.due_at = promise.due_at(calendar)


class SlaClocks:
    """Keeps the SLA clocks of open conversations and raises their warnings and breaches."""

    def __init__(
        self, service: InboxService, *, interval_seconds: float = 5.0, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.service = service
        self.store = service.store
        self.interval = interval_seconds
        self.clock = clock

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("sla: a pass failed; trying again")
            await asyncio.sleep(self.interval)

    async def tick(self) -> int:
        """Follow new events, then raise what is due; answers how many alerts were recorded."""
        while await self.follow_events() == BATCH:
            pass
        return await self.alert_due(self.clock())

    # ── following the log ───────────────────────────────────────────────────────────────────
    async def follow_events(self) -> int:
        async with self.store.session() as session:
            mark = await session.get(Cursor, CURSOR)
            after = int(mark.value) if mark is not None else None
            if after is None:
                latest = await events.latest_id(session)
            else:
                records = await events.after(session, after, limit=BATCH)
        if after is None:
            await self._save_cursor(latest)
            return 0
        if not records:
            return 0
        async with self.store.transaction() as tx:
            policies = [policy_of(row) for row in (await tx.execute(select(SlaPolicy))).scalars()]
            for record in records:
                if policies:
                    await self._apply(tx, record, policies)
            await self._cursor(tx, records[-1].id)
        return len(records)

    async def _save_cursor(self, value: int) -> None:
        async with self.store.transaction() as tx:
            await self._cursor(tx, value)

    async def _cursor(self, tx: AsyncSession, value: int) -> None:
        mark = await tx.get(Cursor, CURSOR)
        if mark is None:
            tx.add(Cursor(key=CURSOR, value=str(value)))
        else:
            mark.value = str(value)
            mark.updated_at = utcnow()

    async def _apply(self, tx: AsyncSession, record: EventRecord, policies: list[Policy]) -> None:
        conversation_id = record.conversation_id
        if conversation_id is None or record.created_at is None:
            return
        at = parse_iso(record.created_at)
        data = record.data
        if record.type == EventType.CONVERSATION_CREATED:
            conversation = await tx.get(Conversation, conversation_id)
            if conversation is None:
                return
            policy = policy_for(policies, conversation.inbox_id, conversation.priority)
            calendar = await self._calendar(tx, conversation.inbox_id)
            for target in (Target.FIRST_RESPONSE, Target.RESOLUTION):
                await self._start(tx, conversation, policy, target, at, calendar)
        elif record.type == EventType.MESSAGE_CREATED and data.get("kind") in (
            MessageKind.INCOMING,
            MessageKind.OUTGOING,
        ):
            clocks = await self._clocks(tx, conversation_id)
            if not clocks and data.get("kind") == MessageKind.OUTGOING:
                return
            conversation = await tx.get(Conversation, conversation_id)
            if conversation is None:
                return
            calendar = await self._calendar(tx, conversation.inbox_id)
            if data.get("kind") == MessageKind.OUTGOING:
                for target in (Target.FIRST_RESPONSE, Target.NEXT_RESPONSE):
                    row = clocks.get(target)
                    if row is not None and row.met_at is None:
                        _store(row, promise_of(row).meet(at, calendar), calendar)
                return
            first = clocks.get(Target.FIRST_RESPONSE)
            waiting = clocks.get(Target.NEXT_RESPONSE)
            if (first is None or first.met_at is not None) and (waiting is None or waiting.met_at is not None):
                policy = policy_for(policies, conversation.inbox_id, conversation.priority)
                await self._start(tx, conversation, policy, Target.NEXT_RESPONSE, at, calendar, waiting)
        elif record.type == EventType.CONVERSATION_UPDATED and "status" in (data.get("changes") or []):
            clocks = await self._clocks(tx, conversation_id)
            if not clocks:
                return
            calendar = await self._calendar(tx, int(data.get("inbox_id") or 0))
            status = data.get("status")
            for kind, row in clocks.items():
                promise = promise_of(row)
                if status == Status.OPEN:
                    promise = promise.resume(at)
                elif status == Status.RESOLVED and kind == Target.RESOLUTION:
                    promise = promise.meet(at, calendar)
                else:
                    promise = promise.pause(at, calendar)
                _store(row, promise, calendar)

    async def _start(
        self,
        tx: AsyncSession,
        conversation: Conversation,
        policy: Policy | None,
        target: Target,
        at: datetime,
        calendar: Calendar,
        existing: SlaClock | None = None,
    ) -> None:
        seconds = policy.seconds(target) if policy is not None else None
        if policy is None or seconds is None:
            return
        row = existing or SlaClock(
            conversation_id=conversation.id,  # type: ignore[arg-type]
            target=target,
            inbox_id=conversation.inbox_id,
            target_seconds=seconds,
            started_at=at,
        )
        row.policy_id, row.target_seconds, row.warning_seconds = policy.id, seconds, policy.warning_seconds
        row.started_at, row.warned_at, row.breached_at = at, None, None
        promise = Promise.start(seconds, at)
        if conversation.status != Status.OPEN:
            promise = promise.pause(at, calendar)
        _store(row, promise, calendar)
        if existing is None:
            tx.add(row)
        await tx.flush()

    async def _clocks(self, tx: AsyncSession, conversation_id: int) -> dict[str, SlaClock]:
        rows = (await tx.execute(select(SlaClock).where(col(SlaClock.conversation_id) == conversation_id))).scalars()
        return {row.target: row for row in rows}

    async def _calendar(self, tx: AsyncSession, inbox_id: int) -> Calendar:
        return await calendar_of(tx, await tx.get(Inbox, inbox_id))

    # ── alerts ──────────────────────────────────────────────────────────────────────────────
    async def alert_due(self, now: datetime) -> int:
        """Record the warnings and breaches that are due at `now` (each once)."""
        async with self.store.session() as session:
            rows = list(
                (
                    await session.execute(
                        select(SlaClock).where(
                            col(SlaClock.due_at) <= now + MAX_WARNING,
                            col(SlaClock.met_at).is_(None),
                            col(SlaClock.breached_at).is_(None),
                        )
                    )
                ).scalars()
            )
        recorded = 0
        for row in rows:
            due = row.due_at
            assert due is not None
            name = NAMES[Target(row.target)]
            if now >= due:
                line = f"SLA breached: {name} was due {due:%Y-%m-%d %H:%M} UTC"
                recorded += await self.service.record_sla_alert(row.conversation_id, row.target, "breach", line=line)
            elif row.warned_at is None and now >= due - timedelta(seconds=row.warning_seconds):
                minutes = max(1, round((due - now).total_seconds() / 60))
                line = f"SLA warning: {name} due in {minutes} min ({due:%Y-%m-%d %H:%M} UTC)"
                recorded += await self.service.record_sla_alert(row.conversation_id, row.target, "warning", line=line)
        return recorded


def describe(row: SlaClock) -> dict[str, Any]:
    """A clock as the API shows it."""

    return {
        "conversation_id": row.conversation_id,
        "target": row.target,
        "inbox_id": row.inbox_id,
        "policy_id": row.policy_id,
        "target_seconds": row.target_seconds,
        "started_at": iso(row.started_at),
        "due_at": iso(row.due_at),
        "paused": row.running_since is None and row.met_at is None,
        "met_at": iso(row.met_at),
        "warned_at": iso(row.warned_at),
        "breached_at": iso(row.breached_at),
    }
