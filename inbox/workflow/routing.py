"""Routing: who gets a new conversation. Per inbox `off`, `round_robin` or `least_loaded`, among the inbox's
members who are online and under capacity; what cannot be assigned waits in a FIFO queue, oldest first.

The queue is not a table of its own: it is every open, unassigned conversation of an inbox that routes,
oldest customer message first (`last_incoming_at`, else `created_at`). So nothing can fall out of it — a
restart, a missed event or an agent unassigning a conversation leaves it in the queue, where the next pass
finds it — and its length and oldest wait are one grouped query (`queue_stats`).

Capacity is counted in open conversations assigned to the agent in every inbox; the limit is the inbox's
`routing_capacity` when set, else the agent's own (`AgentCapacity`), else `DEFAULT_CAPACITY`.

One process of the cluster routes (app.py holds the `timer:routing` lease around `Router.run`); every process
wakes it on the events that may free capacity or add work, and it also looks every `interval_seconds`. The
assignment itself (`InboxService.auto_assign`) is a conditional UPDATE, so even two routers running side by
side never assign one conversation twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox.clock import parse_iso, utcnow
from inbox.realtime.events import EventRecord, EventType
from inbox.service import InboxService
from inbox.store.models import Agent, AgentCapacity, Availability, Conversation, Inbox, InboxMember, Status, key
from inbox.workflow import settings as workflow_settings
from inbox.workflow.settings import DEFAULT_CAPACITY, Routing

log = logging.getLogger(__name__)

BATCH = 200  # queued conversations looked at per inbox per pass
WAKING = frozenset(
    {EventType.CONVERSATION_CREATED, EventType.CONVERSATION_UPDATED, EventType.AGENT_UPDATED, EventType.INBOX_UPDATED}
)


@dataclass(frozen=True, slots=True)
class Candidate:
    """An online member of the inbox and how many open conversations they hold now."""

    agent_id: int
    name: str
    open: int
    capacity: int


@dataclass(frozen=True, slots=True)
class QueueStat:
    inbox_id: int
    length: int
    oldest_wait_seconds: float


def _rotation(agent_id: int, after: int | None) -> tuple[bool, int]:
    """Order agents by id starting just after `after` (the one chosen last), wrapping around."""
    return (after is not None and agent_id <= after, agent_id)


def choose(candidates: Sequence[Candidate], mode: Routing, after: int | None = None) -> tuple[Candidate, str] | None:
    """The agent to assign and the reason shown to agents, or None when everyone is at capacity.

    `least_loaded`: the fewest open conversations, ties broken in turn after the agent chosen last.
    `round_robin`: the next agent after the one chosen last, skipping those at capacity."""
    free = [candidate for candidate in candidates if candidate.open < candidate.capacity]
    if not free or mode == Routing.OFF:
        return None
    if mode == Routing.LEAST_LOADED:
        pick = min(free, key=lambda c: (c.open, _rotation(c.agent_id, after)))
        how = "least loaded"
    else:
        pick = min(free, key=lambda c: _rotation(c.agent_id, after))
        how = "round robin"
    return pick, f"Auto-assigned to {pick.name}: {how}, {pick.open + 1} of {pick.capacity} open"


def _waiting_since() -> Any:
    return func.coalesce(col(Conversation.last_incoming_at), col(Conversation.created_at))


def _queued(inbox_ids: Sequence[int]) -> list[Any]:
    return [
        col(Conversation.inbox_id).in_(inbox_ids),
        col(Conversation.status) == Status.OPEN,
        col(Conversation.assignee_id).is_(None),
    ]


async def routed_inboxes(session: AsyncSession) -> list[tuple[Inbox, workflow_settings.InboxWorkflow]]:
    rows = (await session.execute(select(Inbox).order_by(col(Inbox.id)))).scalars()
    found = [(row, workflow_settings.of(row.settings)) for row in rows]
    return [(row, settings) for row, settings in found if settings.routing != Routing.OFF]


async def queue_stats(session: AsyncSession, now: datetime) -> list[QueueStat]:
    """Per routing inbox: how many conversations wait for an agent and how long the oldest has waited."""
    inbox_ids = [key(row) for row, _ in await routed_inboxes(session)]
    if not inbox_ids:
        return []
    rows = (
        await session.execute(
            select(col(Conversation.inbox_id), func.count(), func.min(_waiting_since()))
            .where(*_queued(inbox_ids))
            .group_by(col(Conversation.inbox_id))
        )
    ).all()
    waiting = {inbox_id: (count, oldest) for inbox_id, count, oldest in rows}
    stats = []
    for inbox_id in inbox_ids:
        count, oldest = waiting.get(inbox_id, (0, None))
        wait = max(0.0, (now - _aware(oldest)).total_seconds()) if oldest is not None else 0.0
        stats.append(QueueStat(inbox_id, int(count), wait))
    return stats


def _aware(value: Any) -> datetime:
    """`min()` over a coalesce comes back as text on SQLite; the stored values are UTC."""
    if isinstance(value, str):
        return parse_iso(value)
    assert isinstance(value, datetime)
    return parse_iso(value.isoformat()) if value.tzinfo is None else value


class Router:
    """Assigns queued conversations of every routing inbox; `run` loops until cancelled."""

    def __init__(
        self,
        service: InboxService,
        *,
        interval_seconds: float = 5.0,
        default_capacity: int = DEFAULT_CAPACITY,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.service = service
        self.store = service.store
        self.interval = interval_seconds
        self.default_capacity = default_capacity
        self.clock = clock
        self._wake = asyncio.Event()
        self._last: dict[int, int] = {}  # inbox id → agent chosen last (the rotation point)

    # ── waking ──────────────────────────────────────────────────────────────────────────────
    async def on_event(self, event: EventRecord) -> None:
        """Broker subscriber: work may have arrived or capacity freed; look now rather than at the next tick."""
        if event.type in WAKING:
            self._wake.set()

    async def on_ephemeral(self, frame: dict[str, Any], inbox_id: int | None) -> None:
        if frame.get("type") == "presence":
            self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Route, then sleep until woken or `interval_seconds` passed; one failed pass is logged."""
        while True:
            self._wake.clear()
            try:
                await self.route_all()
            except Exception:
                log.exception("routing: a pass failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)

    # ── routing ─────────────────────────────────────────────────────────────────────────────
    async def route_all(self) -> int:
        """One pass over every routing inbox; answers how many conversations were assigned."""
        async with self.store.session() as session:
            inboxes = await routed_inboxes(session)
        assigned = 0
        for inbox, settings in inboxes:
            assigned += await self.route_inbox(key(inbox), settings)
        return assigned

    async def route_inbox(self, inbox_id: int, settings: workflow_settings.InboxWorkflow) -> int:
        async with self.store.session() as session:
            queue = list(
                (
                    await session.execute(
                        select(Conversation.id)
                        .where(*_queued([inbox_id]))
                        .order_by(_waiting_since(), col(Conversation.id))
                        .limit(BATCH)
                    )
                ).scalars()
            )
            if not queue:
                return 0
            candidates = await self.candidates(session, inbox_id, settings.capacity)
        assigned = 0
        for conversation_id in queue:
            choice = choose(list(candidates.values()), settings.routing, self._last.get(inbox_id))
            if choice is None:
                break  # everyone is at capacity: the rest waits, in order
            pick, reason = choice
            if await self.service.auto_assign(conversation_id, pick.agent_id, reason=reason) is None:
                continue  # assigned or closed meanwhile
            candidates[pick.agent_id] = Candidate(pick.agent_id, pick.name, pick.open + 1, pick.capacity)
            self._last[inbox_id] = pick.agent_id
            assigned += 1
        return assigned

    async def candidates(self, session: AsyncSession, inbox_id: int, override: int | None) -> dict[int, Candidate]:
        """The inbox's online, active members with their open load and capacity."""
        agents = list(
            (
                await session.execute(
                    select(Agent)
                    .join(InboxMember, col(InboxMember.agent_id) == Agent.id)
                    .where(
                        col(InboxMember.inbox_id) == inbox_id,
                        col(Agent.active),
                        col(Agent.availability) == Availability.ONLINE,
                    )
                )
            ).scalars()
        )
        if not agents:
            return {}
        ids = [key(agent) for agent in agents]
        capacities = dict(
            (
                await session.execute(
                    select(AgentCapacity.agent_id, AgentCapacity.capacity).where(col(AgentCapacity.agent_id).in_(ids))
                )
            ).all()
        )
        loads = dict(
            (
                await session.execute(
                    select(col(Conversation.assignee_id), func.count())
                    .where(col(Conversation.assignee_id).in_(ids), col(Conversation.status) == Status.OPEN)
                    .group_by(col(Conversation.assignee_id))
                )
            ).all()
        )
        return {
            key(agent): Candidate(
                key(agent),
                agent.name,
                int(loads.get(key(agent), 0)),
                override or capacities.get(key(agent)) or self.default_capacity,
            )
            for agent in agents
        }
