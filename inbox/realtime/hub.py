"""Hub: the set of live agent-stream connections in this process and the fan-out to them.

Each connection has a bounded queue. A connection whose queue is full is cut off (the client resumes with
`after=`), so one slow reader never delays the others.

The hub hands events on in id order, each once. Events may reach it out of order or not at all (several
processes publish concurrently; Redis pub/sub drops what is published while a subscriber is disconnected),
so when an id is skipped the hub waits a moment for the missing one and then reads the gap from the event
log through the `read_log` function it was given; `catch_up()` does the same for everything after the last
id (called when the broker reconnects and periodically). The hub never writes anything.

A missing id is either late (its transaction is still running: on PostgreSQL writers commit concurrently) or
a hole (its transaction rolled back). The log read (`inbox.realtime.events.read_settled`) tells the two apart: it
answers up to which id everything is final, so the hub passes a hole once it is known to be one and holds
the events after a late id until that id is read or arrives — it never hands on N+2 and then drops N+1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from inbox.realtime.events import EventRecord, LogRead
from inbox.realtime.wsserver import text_frame

log = logging.getLogger(__name__)

OVERFLOW = object()
LogReader = Callable[[int, int], Awaitable[LogRead]]  # (after id, limit) -> settled events, oldest first
FILL_BATCH = 500
ENCODED_CACHE = 2048


# Events about reference data that every agent may read (labels), sent to every subscriber.
EVERYONE = frozenset({"label.updated"})


@dataclass(eq=False)
class Subscription:
    """One agent connection: who it is, which inboxes it may see, and its outgoing queue."""

    agent_id: int
    is_admin: bool
    inbox_ids: frozenset[int]
    queue: asyncio.Queue[Any]
    overflowed: bool = False
    on_cut_off: Callable[[], None] | None = None

    def may_see(self, inbox_id: int | None) -> bool:
        if self.is_admin:
            return True
        return inbox_id is not None and inbox_id in self.inbox_ids

    def sees(self, event: EventRecord) -> bool:
        """Whether this agent gets `event`: its inbox's events, plus reference data every agent may read."""
        return event.type in EVERYONE or self.may_see(event.inbox_id)

    def apply_membership(self, event: EventRecord) -> None:
        """Follow membership and role changes carried by `inbox.updated` / `agent.updated` events."""
        if event.type == "inbox.updated" and event.inbox_id is not None:
            members = event.data.get("agent_ids", [])
            if self.agent_id in members:
                self.inbox_ids = self.inbox_ids | {event.inbox_id}
            else:
                self.inbox_ids = self.inbox_ids - {event.inbox_id}
        elif event.type == "agent.updated" and event.data.get("id") == self.agent_id:
            self.is_admin = event.data.get("role") == "admin"
            if not event.data.get("active", True):
                self.cut_off()

    def cut_off(self) -> None:
        """Drop what is queued and tell the writer to close the connection."""
        self.overflowed = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(OVERFLOW)
        if self.on_cut_off is not None:
            # The writer may be blocked sending to a client that stopped reading: stop it now.
            self.on_cut_off()

    def offer(self, item: Any) -> None:
        """Queue an item without waiting; a full queue marks the connection for disconnection."""
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.cut_off()


class Hub:
    """Routes events and ephemeral frames to the subscriptions allowed to see them, in event-id order."""

    def __init__(
        self,
        queue_size: int = 1000,
        *,
        read_log: LogReader | None = None,
        settle_seconds: float = 0.05,
    ) -> None:
        self.queue_size = queue_size
        self.read_log = read_log
        self.settle_seconds = settle_seconds
        self.last_id: int | None = None  # the newest event handed on; None until the first event or start()
        self._pending: dict[int, EventRecord] = {}  # arrived ahead of a missing id
        self._subscriptions: set[Subscription] = set()
        self._filler: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.gaps_filled = 0
        self._encoded: dict[int, str] = {}  # event id -> frame JSON, shared by every connection
        self._framed: dict[int, bytes] = {}  # event id -> the websocket frame carrying it (`wsserver.text_frame`)

    def start(self, last_id: int) -> None:
        """Begin after `last_id` (the log's newest id when the process starts)."""
        self.last_id = last_id

    async def stop(self) -> None:
        if self._filler is not None:
            self._filler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._filler

    def subscribe(self, agent_id: int, *, is_admin: bool, inbox_ids: frozenset[int]) -> Subscription:
        subscription = Subscription(agent_id, is_admin, inbox_ids, asyncio.Queue(self.queue_size))
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    @property
    def connections(self) -> int:
        return len(self._subscriptions)

    def connected_agents(self) -> set[int]:
        return {subscription.agent_id for subscription in self._subscriptions}

    async def on_event(self, event: EventRecord) -> None:
        if self.last_id is None or self.read_log is None:
            self._route(event)
            return
        if event.id <= self.last_id:
            return  # already handed on (a duplicate, or read from the log while it was in flight)
        if event.id == self.last_id + 1:
            self._route(event)
            self._drain()
            return
        self._pending[event.id] = event
        if self._filler is None or self._filler.done():
            self._filler = asyncio.create_task(self._fill_gap(), name="hub-fill")

    async def catch_up(self) -> int:
        """Hand on every logged event after the last one handed on; answer how many were found."""
        if self.read_log is None or self.last_id is None:
            return 0
        found = await self._read_through(None)
        if self._pending and (self._filler is None or self._filler.done()):
            self._filler = asyncio.create_task(self._fill_gap(), name="hub-fill")
        return found

    def encode(self, event: EventRecord) -> str:
        """The event's stream frame as JSON, serialised once however many connections send it."""
        text = self._encoded.get(event.id)
        if text is None:
            text = json.dumps(event.frame(), separators=(",", ":"))
            self._encoded[event.id] = text
            if len(self._encoded) > ENCODED_CACHE:
                del self._encoded[next(iter(self._encoded))]
        return text

    def framed(self, event: EventRecord) -> bytes:
        """The event's websocket frame, made once however many connections send it."""
        frame = self._framed.get(event.id)
        if frame is None:
            frame = self._framed[event.id] = text_frame(self.encode(event).encode())
            if len(self._framed) > ENCODED_CACHE:
                del self._framed[next(iter(self._framed))]
        return frame

    def _route(self, event: EventRecord) -> None:
        self.last_id = event.id if self.last_id is None else max(self.last_id, event.id)
        for subscription in list(self._subscriptions):
            subscription.apply_membership(event)
            if subscription.sees(event):
                subscription.offer(event)

    def _drain(self) -> None:
        assert self.last_id is not None
        while self._pending:
            following = self._pending.pop(self.last_id + 1, None)
            if following is None:
                break
            self._route(following)
        if self._pending:
            for stale in [key for key in self._pending if key <= self.last_id]:
                del self._pending[stale]

    async def _fill_gap(self) -> None:
        """Give the missing event a moment to arrive, then read the gap from the log."""
        try:
            while self._pending:
                # A missing event is usually just a few ms behind; if it arrives, `on_event` drains.
                await asyncio.sleep(self.settle_seconds)
                if self._pending:
                    await self._read_through(max(self._pending))
        except Exception:
            log.exception("hub: reading an event gap from the log failed; the next catch-up retries")

    async def _read_through(self, until: int | None) -> int:
        """Route logged events after `last_id` (up to `until`, or to the end), then whatever was pending."""
        assert self.read_log is not None
        found = 0
        async with self._lock:
            settled = self.last_id
            while self.last_id is not None and (until is None or self.last_id < until):
                read = await self.read_log(self.last_id, FILL_BATCH)
                for event in read.events:
                    if event.id > self.last_id and (until is None or event.id <= until):
                        self._pending.pop(event.id, None)
                        self._route(event)
                        found += 1
                settled = read.through if settled is None else max(settled, read.through)
                if not read.more or not read.settled:
                    break
            if until is not None and settled is not None:
                # Pending events at or below the settled horizon that the log did not return were pruned
                # meanwhile: they still go out, in order. Those above it wait for the missing id.
                for key in sorted(key for key in self._pending if key <= min(until, settled)):
                    event = self._pending.pop(key)
                    if self.last_id is None or key > self.last_id:
                        self._route(event)
            self._drain()
        if found:
            self.gaps_filled += 1
            log.info("hub: %d event(s) read from the log to fill a gap", found)
        return found

    async def on_ephemeral(self, frame: dict[str, Any], inbox_id: int | None) -> None:
        for subscription in list(self._subscriptions):
            visible = inbox_id is None or subscription.may_see(inbox_id)
            if visible and frame.get("agent_id") != subscription.agent_id:
                subscription.offer(frame)
