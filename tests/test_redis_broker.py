"""RedisBroker against a real redis-server: fan-out between brokers, origin skipping, ephemeral frames,
and a Redis restart (publish never raises; the subscriber reconnects and reports resumption)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from inbox.realtime.events import EventRecord
from inbox.realtime.redis_broker import RedisBroker
from tests.conftest import Recorder
from tests.poll import eventually
from tests.servers.redis import RedisServer


def event(event_id: int) -> EventRecord:
    return EventRecord(event_id, "message.created", 3, 4, {"id": event_id, "body": "héllo"}, "2026-01-01T00:00:00.000Z")


async def started(url: str, prefix: str) -> tuple[RedisBroker, Recorder]:
    broker = RedisBroker(url, prefix=prefix, reconnect_max_seconds=0.2)
    recorder = Recorder()
    broker.subscribe(recorder.on_event, recorder.on_ephemeral)
    await broker.start()
    await asyncio.wait_for(broker.connected.wait(), 5)
    return broker, recorder


async def until(condition: Any) -> None:
    await eventually(condition, within=10)


async def test_events_and_frames_reach_every_broker_once(redis_url: str) -> None:
    prefix = uuid.uuid4().hex
    a, seen_a = await started(redis_url, prefix)
    b, seen_b = await started(redis_url, prefix)
    other, seen_other = await started(redis_url, uuid.uuid4().hex)  # another deployment on the same Redis
    try:
        await a.publish(event(1))
        await a.publish_ephemeral({"type": "typing", "agent_id": 2}, 3)
        await until(lambda: seen_b.events and seen_b.ephemeral)
        assert seen_b.events == [event(1)]
        assert seen_b.ephemeral == [{"type": "typing", "agent_id": 2}]
        await b.publish(event(2))
        await until(lambda: len(seen_a.events) == 2)
        assert [e.id for e in seen_a.events] == [1, 2]  # its own event once (locally), not again via Redis
        assert len(seen_a.ephemeral) == 1
        assert seen_other.events == []
    finally:
        for broker in (a, b, other):
            await broker.stop()


async def test_redis_restart_publish_never_raises_and_subscriber_resumes(own_redis: RedisServer) -> None:
    prefix = uuid.uuid4().hex
    a, _ = await started(own_redis.url, prefix)
    b, seen_b = await started(own_redis.url, prefix)
    resumed = asyncio.Event()

    async def on_resume() -> None:
        resumed.set()

    b.on_resume.append(on_resume)
    try:
        own_redis.stop()
        await a.publish(event(1))  # committed elsewhere; the failed publish is only logged
        await a.flush()
        assert a.publish_failures >= 1
        own_redis.start()
        await asyncio.wait_for(resumed.wait(), 10)
        await until(lambda: a.connected.is_set())
        await a.publish(event(2))
        await until(lambda: any(e.id == 2 for e in seen_b.events))
        assert b.reconnects >= 1
    finally:
        await a.stop()
        await b.stop()
