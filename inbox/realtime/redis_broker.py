"""RedisBroker: the `Broker` for several processes, on Redis pub/sub (`redis.asyncio`).

Every process publishes committed events and ephemeral frames to two Redis channels and subscribes to
both. A publisher hands its own messages to its local handlers directly (no round trip through Redis for
the websockets it holds) and tags what it sends with its origin, so it skips its own messages when they come
back. Publishing to Redis happens in one background task that drains a bounded queue and pipelines what has
piled up, so a request never waits for Redis (nor hangs on an unreachable one). Pub/sub keeps nothing: a
message published while a subscriber is disconnected is gone. So the broker never claims durability: after
a reconnect it calls its `on_resume` callbacks, and the hub re-reads the event log from the last id it handed
on. A failed or dropped publish is logged, never raised: the event is already committed and the other
processes find it in the log on their next catch-up.

Wire format: `<origin>|<json>`; events are `{"id","type","inbox_id","conversation_id","data","created_at"}`,
ephemeral frames `{"frame": {…}, "inbox_id": N|null}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from inbox.realtime.broker import EphemeralHandler, EventHandler
from inbox.realtime.events import EventRecord

log = logging.getLogger(__name__)

ResumeHandler = Callable[[], Awaitable[Any]]


def encode_event(event: EventRecord) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "inbox_id": event.inbox_id,
        "conversation_id": event.conversation_id,
        "data": event.data,
        "created_at": event.created_at,
    }


def decode_event(data: dict[str, Any]) -> EventRecord:
    return EventRecord(
        int(data["id"]),
        str(data["type"]),
        data.get("inbox_id"),
        data.get("conversation_id"),
        dict(data["data"]),
        data.get("created_at"),
    )


class RedisBroker:
    """Fan-out between processes through Redis pub/sub; reconnects with backoff and reports resumption."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "switchboard",
        reconnect_max_seconds: float = 5.0,
        max_backlog: int = 10_000,
    ) -> None:
        self.url = url
        self.events_channel = f"{prefix}:events"
        self.ephemeral_channel = f"{prefix}:ephemeral"
        self.origin = uuid.uuid4().hex[:12]
        self.reconnect_max_seconds = reconnect_max_seconds
        self.on_resume: list[ResumeHandler] = []
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.publish_failures = 0
        self._event_handlers: list[EventHandler] = []
        self._ephemeral_handlers: list[EphemeralHandler] = []
        self._client: redis.Redis | None = None
        self._listener: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._outgoing: asyncio.Queue[tuple[str, str]] = asyncio.Queue(max_backlog)
        self._resume_tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, on_event: EventHandler, on_ephemeral: EphemeralHandler) -> None:
        self._event_handlers.append(on_event)
        self._ephemeral_handlers.append(on_ephemeral)

    async def start(self) -> None:
        self._client = redis.Redis.from_url(
            self.url, socket_connect_timeout=2.0, socket_timeout=5.0, health_check_interval=10
        )
        self._listener = asyncio.create_task(self._listen(), name="redis-broker")
        self._sender = asyncio.create_task(self._send_loop(), name="redis-broker-publish")

    async def flush(self) -> None:
        """Wait until everything published so far has been handed to Redis (or given up on)."""
        await self._outgoing.join()

    async def stop(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), 2.0)
        for task in (self._listener, self._sender):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._client is not None:
            await self._client.aclose()

    async def publish(self, event: EventRecord) -> None:
        for handler in self._event_handlers:
            await handler(event)
        await self._send(self.events_channel, encode_event(event))

    async def publish_ephemeral(self, frame: dict[str, Any], inbox_id: int | None) -> None:
        for handler in self._ephemeral_handlers:
            await handler(frame, inbox_id)
        await self._send(self.ephemeral_channel, {"frame": frame, "inbox_id": inbox_id})

    async def _send(self, channel: str, payload: dict[str, Any]) -> None:
        if self._client is None:
            raise RuntimeError("RedisBroker.start() was not called")
        message = f"{self.origin}|{json.dumps(payload, separators=(',', ':'))}"
        try:
            self._outgoing.put_nowait((channel, message))
        except asyncio.QueueFull:
            # Redis is gone for a long while: peers will read these events from the log.
            self.publish_failures += 1
            log.warning("redis broker: publish backlog full; dropping a message peers will read from the log")

    async def _send_loop(self) -> None:
        """Hand queued messages to Redis, pipelining whatever piled up since the last round trip."""
        assert self._client is not None
        while True:
            batch = [await self._outgoing.get()]
            while not self._outgoing.empty() and len(batch) < 500:
                batch.append(self._outgoing.get_nowait())
            try:
                pipeline = self._client.pipeline(transaction=False)
                for channel, message in batch:
                    pipeline.publish(channel, message)
                await pipeline.execute()
            except (RedisError, OSError) as exc:
                self.publish_failures += len(batch)
                log.warning(
                    "redis broker: publishing %d message(s) failed (%s); peers will catch up from the log",
                    len(batch),
                    exc,
                )
            finally:
                for _ in batch:
                    self._outgoing.task_done()

    async def _listen(self) -> None:
        """Subscribe, hand on messages; on any connection error back off and subscribe again."""
        assert self._client is not None
        delay = 0.05
        first = True
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.events_channel, self.ephemeral_channel)
                if pubsub.connection is not None:
                    # redis-py may reconnect and re-subscribe by itself; hear about it to catch up.
                    pubsub.connection.register_connect_callback(self._reconnected)
                self.connected.set()
                delay = 0.05
                if not first:
                    self.reconnects += 1
                    log.info("redis broker: subscribed again; catching up from the event log")
                    await self._resumed()
                first = False
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        await self._dispatch(message)
            except (RedisError, OSError) as exc:
                self.connected.clear()
                log.warning("redis broker: connection lost (%s); retrying in %.2fs", exc, delay)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(self.reconnect_max_seconds, delay * 2)

    def _reconnected(self, _connection: Any) -> None:
        self.reconnects += 1
        log.info("redis broker: reconnected by the client library; catching up from the event log")
        task = asyncio.create_task(self._resumed(), name="redis-broker-resume")
        self._resume_tasks.add(task)
        task.add_done_callback(self._resume_tasks.discard)

    async def _resumed(self) -> None:
        for handler in self.on_resume:
            try:
                await handler()
            except Exception:
                log.exception("redis broker: a resume handler failed")

    async def _dispatch(self, message: dict[str, Any]) -> None:
        raw = message.get("data")
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        origin, _, body = text.partition("|")
        if origin == self.origin:
            return
        channel = message.get("channel")
        channel = channel.decode() if isinstance(channel, bytes) else channel
        try:
            payload = json.loads(body)
            if channel == self.events_channel:
                event = decode_event(payload)
                for handler in self._event_handlers:
                    await handler(event)
            elif channel == self.ephemeral_channel:
                for ephemeral in self._ephemeral_handlers:
                    await ephemeral(dict(payload["frame"]), payload.get("inbox_id"))
        except Exception:
            # One bad message is logged and skipped; an event it carried is still in the log.
            log.exception("redis broker: skipping a message that could not be handled: %.200s", body)
