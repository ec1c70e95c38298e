"""The event log without a global lock (PostgreSQL): writers commit concurrently, so an event id can become
visible after a higher one, or never (rollback). Readers — `read_settled`, the hub, the agent stream's
`after=` replay — must never skip a late commit and must pass a rolled-back hole within bounded time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from inbox.realtime import events
from inbox.realtime.events import EventRecord, EventType, LogRead
from inbox.realtime.hub import Hub, Subscription
from inbox.store.engine import Store
from inbox.store.migrate import upgrade
from tests.conftest import fresh_postgres_database
from tests.factories import make_agent, make_token
from tests.servers.app import LiveServer
from tests.streams import StreamClient


class _RollBack(Exception):
    pass


class OpenWriter:
    """A write transaction that has appended one event and stays open until told to commit or roll back."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._id: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._decision: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async with self.store.transaction() as tx:
                row = await events.append(tx, EventType.CONTACT_UPDATED, {"writer": "open"})
                assert row.id is not None
                self._id.set_result(row.id)
                if not await self._decision:
                    raise _RollBack
        except _RollBack:
            pass

    async def event_id(self) -> int:
        return await asyncio.wait_for(asyncio.shield(self._id), 10)

    async def finish(self, *, commit: bool) -> None:
        self._decision.set_result(commit)
        await asyncio.wait_for(self.task, 10)


async def committed(store: Store, label: str) -> int:
    async with store.transaction() as tx:
        row = await events.append(tx, EventType.CONTACT_UPDATED, {"writer": label})
    assert row.id is not None
    return row.id


async def record(store: Store, event_id: int) -> EventRecord:
    found = await events.read_settled(store, event_id - 1, limit=1)
    assert found.events and found.events[0].id == event_id
    return found.events[0]


@pytest.fixture
async def pg_store(postgres_url_only: str) -> AsyncIterator[Store]:
    store = Store(await fresh_postgres_database(postgres_url_only))
    await upgrade(store)
    yield store
    await store.close()


def ids(read: LogRead) -> list[int]:
    return [event.id for event in read.events]


async def test_a_lower_id_that_commits_later_is_read_in_order_never_skipped(pg_store: Store) -> None:
    base = await committed(pg_store, "base")
    late = OpenWriter(pg_store)
    low = await late.event_id()
    high = await committed(pg_store, "early")  # took its id after `low`, committed first
    assert high > low > base

    # While the lower id's transaction runs, a reader resuming after `base` gets nothing past the gap.
    waiting = await events.read_settled(pg_store, base, wait_seconds=0.05)
    assert waiting == LogRead([], base, more=False, settled=False)

    reader = asyncio.create_task(events.read_settled(pg_store, base, wait_seconds=30))
    await asyncio.sleep(0)
    await late.finish(commit=True)
    read = await asyncio.wait_for(reader, 10)
    assert ids(read) == [low, high] and read.settled and read.through == high
    assert ids(await events.read_settled(pg_store, base)) == [low, high]


async def test_a_rolled_back_id_is_a_hole_that_readers_pass_once_its_writer_ends(pg_store: Store) -> None:
    base = await committed(pg_store, "base")
    doomed = OpenWriter(pg_store)
    hole = await doomed.event_id()
    high = await committed(pg_store, "after the hole")
    reader = asyncio.create_task(events.read_settled(pg_store, base, wait_seconds=30))
    await asyncio.sleep(0)
    await doomed.finish(commit=False)
    async with asyncio.timeout(10):  # bounded: the wait ends with the writer, not with a timeout
        read = await reader
    assert ids(read) == [high] and read.through == high and read.settled
    assert hole not in ids(await events.read_settled(pg_store, base))
    # A contiguous read after the hole needs no wait at all.
    assert ids(await events.read_settled(pg_store, hole, wait_seconds=0)) == [high]


def settled_reader(store: Store, calls: list[LogRead]) -> Hub:
    async def read_log(after: int, limit: int) -> LogRead:
        read = await events.read_settled(store, after, limit=limit, wait_seconds=0.05)
        calls.append(read)
        return read

    return Hub(read_log=read_log, settle_seconds=0.01)


async def received(subscription: Subscription, count: int) -> list[int]:
    seen: list[int] = []
    async with asyncio.timeout(10):
        while len(seen) < count:
            seen.append((await subscription.queue.get()).id)
    return seen


async def test_the_hub_holds_later_events_until_a_late_commit_is_read(pg_store: Store) -> None:
    base = await committed(pg_store, "base")
    late = OpenWriter(pg_store)
    low = await late.event_id()
    high = await committed(pg_store, "early")
    calls: list[LogRead] = []
    hub = settled_reader(pg_store, calls)
    hub.start(base)
    subscription = hub.subscribe(1, is_admin=True, inbox_ids=frozenset())
    await hub.on_event(await record(pg_store, high))  # N+1 arrives through the broker before N commits
    async with asyncio.timeout(10):
        while sum(1 for call in calls if not call.settled) < 2:
            await asyncio.sleep(0.01)
    assert subscription.queue.empty() and hub.last_id == base  # N+1 held back, not handed on
    await late.finish(commit=True)  # N commits; its broker message is lost: the hub reads it from the log
    assert await received(subscription, 2) == [low, high]
    await hub.on_event(await record(pg_store, low))  # the late message arrives after all: not sent twice
    assert subscription.queue.empty()
    await hub.stop()


async def test_the_hub_passes_a_rolled_back_hole(pg_store: Store) -> None:
    base = await committed(pg_store, "base")
    doomed = OpenWriter(pg_store)
    await doomed.event_id()
    high = await committed(pg_store, "after the hole")
    hub = settled_reader(pg_store, [])
    hub.start(base)
    subscription = hub.subscribe(1, is_admin=True, inbox_ids=frozenset())
    await hub.on_event(await record(pg_store, high))
    await doomed.finish(commit=False)
    assert await received(subscription, 1) == [high]
    await hub.stop()


async def test_catch_up_stops_at_a_late_id_and_resumes_after_it_commits(pg_store: Store) -> None:
    base = await committed(pg_store, "base")
    late = OpenWriter(pg_store)
    low = await late.event_id()
    high = await committed(pg_store, "early")
    hub = settled_reader(pg_store, [])
    hub.start(base)
    subscription = hub.subscribe(1, is_admin=True, inbox_ids=frozenset())
    assert await hub.catch_up() == 0 and hub.last_id == base
    await late.finish(commit=True)
    assert await hub.catch_up() == 2
    assert await received(subscription, 2) == [low, high]
    await hub.stop()


async def test_a_stream_resuming_below_a_late_commit_gets_it_before_the_later_event(server: LiveServer) -> None:
    store: Store = server.state.store
    if store.is_sqlite:
        pytest.skip("SQLite has one writer: ids always commit in order")
    token = await make_token(store, await make_agent(store, role="admin"))
    base = await committed(store, "base")
    late = OpenWriter(store)
    low = await late.event_id()
    high = await committed(store, "early")
    stream = await StreamClient.open(server.ws_url, token, after=base)
    with pytest.raises(TimeoutError):
        await stream.next(timeout=0.3)  # the replay waits for the running writer: nothing, not `high` alone
    await late.finish(commit=True)
    await stream.until("ready")
    assert [frame["id"] for frame in stream.events()] == [low, high]
    await stream.close()
