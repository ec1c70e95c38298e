"""`inbox.service.ingest.direct`: plain inbound batches on SQLite written on the driver connection. It must write the
same rows and publish the same events as the general batch path, hand everything else to that path
untouched, and leave nothing behind when it fails half-way."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from channels.base import Identity, IdentityKind, Inbound
from inbox.realtime.broker import LocalBroker
from inbox.service import ConversationChanges, InboxService
from inbox.service.ingest import direct as ingest_direct
from inbox.store.blobs import BlobStore
from inbox.store.driver_sql import AsyncpgDriver
from inbox.store.engine import Store
from inbox.store.migrate import upgrade
from inbox.store.models import Inbox
from inbox.store.sqlite_driver import OneHopConnection
from tests.conftest import Recorder, fresh_postgres_database
from tests.factories import inbound, make_agent, make_inbox, make_label

TABLES = ("contact", "identity", "conversation", "conversationlabel", "message", "event")


def plain(inbox: Inbox, external_id: str, sender: str, *, name: str = "", email: str | None = None) -> Inbound:
    assert inbox.id is not None
    kind = IdentityKind.EMAIL if email else IdentityKind.EXTERNAL
    return Inbound(
        inbox_id=inbox.id,
        external_id=external_id,
        thread_key=f"sender:{sender}",
        sender=Identity(kind, email or sender, name=name, email=email, verified=email is not None),
        text=f"text of {external_id}",
    )


async def scenario(store: Store, service: InboxService) -> None:
    """Every kind of inbound the direct path takes or hands over, lone and in concurrent batches."""
    inbox = await make_inbox(store)
    admin = await make_agent(store, role="admin")
    await make_label(store, "vip")
    first = await service.deliver(inbound(inbox, "1", sender="ann"))  # new contact and conversation
    await service.deliver(inbound(inbox, "2", sender="ann", text="again"))  # a follow-up
    changes = ConversationChanges(labels=["vip"], status="resolved")
    await service.update_conversation(first.conversation_id, changes, by=admin)
    await service.deliver(inbound(inbox, "3", sender="ann"))  # reopens it; its view carries the label
    await service.deliver(inbound(inbox, "3", sender="ann"))  # a resend: the general path answers
    await asyncio.gather(  # one batch: a new sender twice, a follow-up, a resend
        service.deliver(inbound(inbox, "4", sender="bob")),
        service.deliver(inbound(inbox, "5", sender="bob")),
        service.deliver(inbound(inbox, "6", sender="ann")),
        service.deliver(inbound(inbox, "2", sender="ann")),
    )
    await asyncio.gather(*(service.deliver(inbound(inbox, f"c{n}", sender=f"crowd-{n}")) for n in range(5)))
    await asyncio.gather(*(service.deliver(inbound(inbox, f"d{n}", sender=f"crowd-{n}")) for n in range(5)))
    await service.deliver(inbound(inbox, "7", sender="ann", thread="another-thread"))  # known sender, new thread
    await service.deliver(plain(inbox, "8", "nameless"))
    await service.deliver(plain(inbox, "9", "nameless", name="Now Named"))  # the contact learns a name
    await service.deliver(plain(inbox, "10", "ignored", email="carol@example.com"))  # verified: may join a contact
    await service.deliver(plain(inbox, "11", "ignored", email="carol@example.com"))


async def snapshot(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Every row the scenario wrote, timestamps left out (the two runs happen at different times)."""
    found: dict[str, list[dict[str, Any]]] = {}
    async with store.session() as session:
        for table in TABLES:
            rows = (await session.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2"))).mappings()
            found[table] = [{k: v for k, v in row.items() if not k.endswith("_at")} for row in rows]
    for row in found["event"]:
        row["payload"] = _without_times(row["payload"])
    # PostgreSQL's direct path takes message ids in its look-up, so a batch it hands over leaves a gap:
    # compare messages by their order instead.
    order = {row["id"]: rank for rank, row in enumerate(found["message"], 1)}
    for row in found["message"]:
        row["id"] = order[row["id"]]
    for row in found["event"]:
        if row["type"] == "message.created":
            row["payload"]["id"] = order[row["payload"]["id"]]
    return found


def sorted_messages(recorder: Recorder) -> list[Any]:
    return sorted((event for event in recorder.events if event.type == "message.created"), key=lambda e: e.data["id"])


def _without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if not k.endswith("_at")}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    if isinstance(value, str) and value.startswith("{"):
        import json

        return _without_times(json.loads(value))
    return value


@pytest.fixture(params=["sqlite", "postgres"])
async def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], Awaitable[str]]:
    """Makes fresh, empty databases on one backend (the equivalence test needs two)."""
    if request.param == "sqlite":

        async def sqlite(name: str) -> str:
            return f"sqlite+aiosqlite:///{tmp_path}/{name}.db"

        return sqlite
    base = request.getfixturevalue("postgres_base")
    if base is None:
        pytest.skip("PostgreSQL binaries not installed (run `make test` as root to install them)")

    async def postgres(_name: str) -> str:
        return await fresh_postgres_database(base)

    return postgres


async def run(tmp_path: Path, url: str, name: str, *, direct: bool) -> tuple[Any, list[tuple[str, Any]], InboxService]:
    store = Store(url)
    await upgrade(store)
    recorder = Recorder()
    broker = LocalBroker()
    broker.subscribe(recorder.on_event, recorder.on_ephemeral)
    service = InboxService(store, broker, BlobStore(tmp_path / f"{name}-blobs"))
    service.batcher.direct = direct
    try:
        await scenario(store, service)
        rows = await snapshot(store)
        events = [(event.type, _without_times(event.data)) for event in recorder.events]
        ranks = {event.data["id"]: rank for rank, event in enumerate(sorted_messages(recorder), 1)}
        for type_, data in events:
            if type_ == "message.created":
                data["id"] = ranks[data["id"]]
        return rows, events, service
    finally:
        await store.close()


async def test_the_same_rows_and_events_as_the_general_path(
    tmp_path: Path, fresh_url: Callable[[str], Awaitable[str]]
) -> None:
    direct_rows, direct_events, direct = await run(tmp_path, await fresh_url("direct"), "direct", direct=True)
    general_rows, general_events, general = await run(tmp_path, await fresh_url("general"), "general", direct=False)
    assert general.batcher.direct_batches == 0
    # The lone new and follow-up messages, the reopening, the crowd batches and the new thread went direct;
    # the resends, the batch with a new sender twice, the name and the verified address did not.
    assert direct.batcher.direct_batches >= 6
    assert direct.batcher.direct_batches < direct.batcher.batches
    assert direct_rows == general_rows
    assert direct_events == general_events
    assert [type_ for type_, _ in direct_events].count("contact.created") == len(direct_rows["contact"])


def count_trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    trips: list[str] = []
    original = OneHopConnection._execute

    async def counted(self: OneHopConnection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        sql = args[1] if len(args) > 1 and isinstance(args[1], str) else getattr(fn, "__name__", "call")
        trips.append(" ".join(sql.split()[:3]))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(OneHopConnection, "_execute", counted)
    return trips


async def test_a_follow_up_is_six_trips_and_a_new_visitor_eight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(f"sqlite+aiosqlite:///{tmp_path}/trips.db")
    await upgrade(store)
    service = InboxService(store, LocalBroker(), BlobStore(tmp_path / "blobs"))
    inbox = await make_inbox(store)
    try:
        trips = count_trips(monkeypatch)
        await service.deliver(inbound(inbox, "1"))
        assert trips == [
            "BEGIN IMMEDIATE",
            "WITH item(idx, inbox_id,",  # its place; stored before? the sender's contact, the thread's conversation
            "INSERT INTO contact",
            "INSERT INTO identity",
            "INSERT INTO conversation",
            "INSERT INTO message",
            "INSERT INTO event",
            "COMMIT",
        ], trips
        trips.clear()
        await service.deliver(inbound(inbox, "2"))
        assert [trip for trip in trips if trip.startswith(("INSERT", "UPDATE"))] == [
            "INSERT INTO message",
            "UPDATE conversation SET",
            "INSERT INTO event",
        ], trips
        assert len(trips) == 6
        # A batch costs the same trips whatever its size: multi-row INSERTs, one executemany UPDATE.
        sizes = []
        for size in (4, 12):
            trips.clear()
            await asyncio.gather(
                *(service.deliver(inbound(inbox, f"{size}-{n}", sender=f"s{size}-{n}")) for n in range(size))
            )
            sizes.append(len(trips))
            trips.clear()
            await asyncio.gather(
                *(service.deliver(inbound(inbox, f"{size}+{n}", sender=f"s{size}-{n}")) for n in range(size))
            )
            sizes.append(len(trips))
        assert sizes == [8, 6, 8, 6], sizes
        assert service.batcher.direct_batches == 6
    finally:
        await store.close()


async def test_a_failure_half_way_leaves_nothing_and_each_message_is_stored_once(
    tmp_path: Path, fresh_url: Callable[[str], Awaitable[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(await fresh_url("crash"))
    await upgrade(store)
    recorder = Recorder()
    broker = LocalBroker()
    broker.subscribe(recorder.on_event, recorder.on_ephemeral)
    service = InboxService(store, broker, BlobStore(tmp_path / "blobs"))
    inbox = await make_inbox(store)

    def crash(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("the events could not be built (SQLite: after the message rows were inserted)")

    try:
        await service.deliver(inbound(inbox, "1"))
        monkeypatch.setattr(ingest_direct, "_event_values", crash)
        recorder.events.clear()
        delivered = await asyncio.gather(*(service.deliver(inbound(inbox, f"m{n}")) for n in range(3)))
        # The direct write rolled back whole; each message was then written on its own, once.
        assert [item.created for item in delivered] == [True, True, True]
        async with store.session() as session:
            stored = (await session.execute(text("SELECT external_id FROM message ORDER BY id"))).scalars().all()
            unread = (await session.execute(text("SELECT unread_count FROM conversation"))).scalar_one()
        assert stored == ["1", "m0", "m1", "m2"]
        assert unread == 4
        assert [event.type for event in recorder.events] == ["message.created"] * 3
        assert service.batcher.direct_batches == 1  # the first message; the crashed batch is not counted
    finally:
        await store.close()


async def test_postgresql_writes_a_batch_in_one_statement_without_a_transaction(
    postgres_url_only: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Round trips set PostgreSQL's latency: a batch is its look-up and one write statement (no BEGIN, no
    COMMIT: one statement is atomic), whether it opens a contact and conversation or follows up."""
    store = Store(await fresh_postgres_database(postgres_url_only))
    await upgrade(store)
    service = InboxService(store, LocalBroker(), BlobStore(tmp_path / "blobs"))
    inbox = await make_inbox(store)
    calls: list[str] = []
    for name in ("begin", "rows", "many", "commit"):
        original = getattr(AsyncpgDriver, name)

        def recorded(original: Any = original, name: str = name) -> Any:
            async def call(self: AsyncpgDriver, *args: Any) -> Any:
                if name != "commit" or self.transaction is not None:  # a commit with none open is no trip
                    calls.append(name if name != "rows" else " ".join(args[0].sql.split()[:2]))
                return await original(self, *args)

            return call

        monkeypatch.setattr(AsyncpgDriver, name, recorded())
    try:
        await service.deliver(inbound(inbox, "1"))  # a new customer: contact, identity, conversation, message
        assert calls == ["WITH item(idx,", "WITH new_contact"], calls
        calls.clear()
        await asyncio.gather(*(service.deliver(inbound(inbox, f"f{n}")) for n in range(3)))
        assert calls == ["WITH item(idx,", "WITH new_message"], calls
        async with store.session() as session:
            unread = (await session.execute(text("SELECT unread_count FROM conversation"))).scalar_one()
            stored = (await session.execute(text("SELECT count(*) FROM message"))).scalar_one()
            events = (await session.execute(text("SELECT count(*) FROM event"))).scalar_one()
        assert (unread, stored, events) == (4, 4, 6)
    finally:
        await store.close()


async def test_a_dead_postgresql_connection_fails_one_batch_and_leaves_the_pool(
    postgres_url_only: str, tmp_path: Path
) -> None:
    """The direct write talks to asyncpg itself, so SQLAlchemy does not see a connection die under it: the
    write drops that connection from the pool; the batch is stored by the per-message path meanwhile."""
    store = Store(await fresh_postgres_database(postgres_url_only))
    await upgrade(store)
    service = InboxService(store, LocalBroker(), BlobStore(tmp_path / "blobs"))
    inbox = await make_inbox(store)
    try:
        await service.deliver(inbound(inbox, "1"))
        async with store.direct_engine.connect() as connection:
            raw = (await connection.get_raw_connection()).driver_connection
            await raw.close()  # as when PostgreSQL restarts: the pooled connection is gone
        assert (await service.deliver(inbound(inbox, "2"))).created
        assert (await service.deliver(inbound(inbox, "3"))).created
        async with store.session() as session:
            stored = (await session.execute(text("SELECT external_id FROM message ORDER BY id"))).scalars().all()
        assert stored == ["1", "2", "3"]
        # The first batch and the third went direct; the second found the dead connection (no ping first),
        # dropped it, and was stored by the per-message path.
        assert service.batcher.direct_batches == 2
    finally:
        await store.close()
