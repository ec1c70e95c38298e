"""Broker: carries committed events and ephemeral frames to every process's hub.

`LocalBroker` is the single-process implementation; a Redis one implements the same `Broker` protocol.
The broker never stores anything: durability is the event log's job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from inbox.realtime.events import EventRecord

EventHandler = Callable[[EventRecord], Awaitable[None]]
EphemeralHandler = Callable[[dict[str, Any], int | None], Awaitable[None]]


class Broker(Protocol):
    async def publish(self, event: EventRecord) -> None: ...

    async def publish_ephemeral(self, frame: dict[str, Any], inbox_id: int | None) -> None: ...

    def subscribe(self, on_event: EventHandler, on_ephemeral: EphemeralHandler) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class LocalBroker:
    """In-process fan-out: publish calls every subscriber directly."""

    def __init__(self) -> None:
        self._event_handlers: list[EventHandler] = []
        self._ephemeral_handlers: list[EphemeralHandler] = []

    def subscribe(self, on_event: EventHandler, on_ephemeral: EphemeralHandler) -> None:
        self._event_handlers.append(on_event)
        self._ephemeral_handlers.append(on_ephemeral)

    async def publish(self, event: EventRecord) -> None:
        for handler in self._event_handlers:
            await handler(event)

    async def publish_ephemeral(self, frame: dict[str, Any], inbox_id: int | None) -> None:
        for handler in self._ephemeral_handlers:
            await handler(frame, inbox_id)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
