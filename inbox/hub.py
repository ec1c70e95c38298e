"""Hub: the set of live agent-stream connections in this process and the fan-out to them.

Each connection has a bounded queue. A connection whose queue is full is cut off (the client resumes with
`after=`), so one slow reader never delays the others. The hub only routes; it never touches the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inbox.events import EventRecord

log = logging.getLogger(__name__)

OVERFLOW = object()


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
    """Routes events and ephemeral frames to the subscriptions allowed to see them."""

    def __init__(self, queue_size: int = 1000) -> None:
        self.queue_size = queue_size
        self._subscriptions: set[Subscription] = set()

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
        for subscription in list(self._subscriptions):
            subscription.apply_membership(event)
            if subscription.may_see(event.inbox_id):
                subscription.offer(event)

    async def on_ephemeral(self, frame: dict[str, Any], inbox_id: int | None) -> None:
        for subscription in list(self._subscriptions):
            visible = inbox_id is None or subscription.may_see(inbox_id)
            if visible and frame.get("agent_id") != subscription.agent_id:
                subscription.offer(frame)
