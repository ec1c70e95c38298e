"""Leases on both databases: one holder at a time, takeover after expiry, loss stops the work, and the
snooze timer fires once when several workers run it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlmodel import col

from inbox.clock import utcnow
from inbox.realtime.broker import LocalBroker
from inbox.service import ConversationChanges, InboxService
from inbox.store.blobs import BlobStore
from inbox.store.engine import Store
from inbox.store.lease import PREFIX, LeaseLost, Leases
from inbox.store.models import Conversation, Cursor, Message
from tests.factories import inbound, make_agent, make_inbox
from tests.poll import eventually


async def test_one_holder_at_a_time_and_release_hands_over(store: Store) -> None:
    a = Leases(store, owner="a")
    b = Leases(store, owner="b")
    assert await a.try_acquire("imap:1")
    assert not await b.try_acquire("imap:1")
    assert await a.try_acquire("imap:1")  # renewing our own lease
    assert await b.try_acquire("imap:2")  # other keys are independent
    assert await b.holder("imap:1") == "a"
    await b.release("imap:1")  # not b's to release
    assert await a.holder("imap:1") == "a"
    await a.release("imap:1")
    assert await b.try_acquire("imap:1")


async def test_an_expired_lease_is_taken_over(store: Store) -> None:
    a = Leases(store, owner="a", ttl_seconds=0.3)
    b = Leases(store, owner="b", ttl_seconds=0.3)
    assert await a.try_acquire("telegram:7")
    assert not await b.try_acquire("telegram:7")
    await eventually(lambda: b.try_acquire("telegram:7"), what="takeover")
    assert not await a.try_acquire("telegram:7")


async def test_losing_the_lease_cancels_the_work(store: Store) -> None:
    a = Leases(store, owner="a", ttl_seconds=0.3)
    started = asyncio.Event()

    async def work() -> None:
        async with a.hold("prune"):
            started.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(work())
    await asyncio.wait_for(started.wait(), 5)
    async with store.transaction() as tx:  # another process took it over (e.g. after a long pause of ours)
        await tx.execute(update(Cursor).where(col(Cursor.key) == PREFIX + "prune").values(value="b"))
    with pytest.raises(LeaseLost):
        await asyncio.wait_for(task, 5)


async def test_run_exclusive_runs_the_work_in_one_worker_at_a_time(store: Store) -> None:
    running: set[str] = set()
    overlaps: list[set[str]] = []
    turns: list[str] = []

    def job(name: str) -> object:
        async def run() -> None:
            running.add(name)
            if len(running) > 1:
                overlaps.append(set(running))
            turns.append(name)
            await asyncio.sleep(0.05)
            running.discard(name)

        return run

    workers = [Leases(store, owner=name, ttl_seconds=0.3) for name in ("a", "b", "c")]
    tasks = [
        asyncio.create_task(worker.run_exclusive("timer:x", job(worker.owner)))  # type: ignore[arg-type]
        for worker in workers
        for _ in range(2)
    ]
    await eventually(lambda: len(turns) >= 6, within=10)
    await asyncio.gather(*tasks)
    assert overlaps == []


async def _every(seconds: float, job: object, calls: list[int]) -> None:
    while True:
        calls.append(await job())  # type: ignore[operator]
        await asyncio.sleep(seconds)


async def test_snooze_wake_up_fires_once_across_workers(db_url: str, store: Store, tmp_path: Path) -> None:
    inbox = await make_inbox(store)
    bob = await make_agent(store, role="admin")
    first = InboxService(store, LocalBroker(), BlobStore(tmp_path / "blobs"))
    conversations = []
    for number in range(8):
        delivered = await first.deliver(inbound(inbox, f"m{number}", sender=f"s{number}"))
        await first.update_conversation(
            delivered.conversation_id,
            ConversationChanges(status="snoozed", snoozed_until=utcnow() + timedelta(hours=1)),
            by=bob,
        )
        conversations.append(delivered.conversation_id)
    async with store.transaction() as tx:
        await tx.execute(
            update(Conversation)
            .where(col(Conversation.id).in_(conversations))
            .values(snoozed_until=utcnow() - timedelta(seconds=1))
        )
    stores = [Store(db_url) for _ in range(3)]  # three "processes", each with its own connections
    calls: list[int] = []
    tasks = []
    for number, own in enumerate(stores):
        service = InboxService(own, LocalBroker(), BlobStore(tmp_path / "blobs"))
        leases = Leases(own, owner=f"worker-{number}", ttl_seconds=0.5)
        tasks.append(
            asyncio.create_task(
                leases.run_exclusive("timer:snooze", lambda s=service: _every(0.01, s.wake_snoozed, calls))
            )
        )
    try:
        await eventually(lambda: sum(calls) >= len(conversations) and len(calls) >= 20, within=10)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for own in stores:
            await own.close()
    async with store.session() as session:
        reopened = (
            await session.execute(
                select(func.count()).select_from(Message).where(col(Message.body) == "Reopened by Switchboard")
            )
        ).scalar_one()
    assert sum(calls) == len(conversations)
    assert reopened == len(conversations)
