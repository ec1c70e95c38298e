"""The SQLite driver (`inbox.store.sqlite_driver`): one trip to the connection's thread per statement, and results,
errors and transactions exactly as SQLAlchemy expects them from aiosqlite."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from inbox.store.engine import WAL_AUTOCHECKPOINT_PAGES, Store
from inbox.store.sqlite_driver import OneHopConnection, creator
from tests.poll import eventually


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> Any:
    store = Store(f"sqlite+aiosqlite:///{tmp_path}/driver.db")
    async with store.transaction() as tx:
        await tx.execute(text("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)"))
    yield store
    await store.close()


def wal_size(store: Store) -> int:
    return Path(store.url.split("///", 1)[1] + "-wal").stat().st_size


def count_trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    trips: list[str] = []
    original = OneHopConnection._execute

    async def counted(self: OneHopConnection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(args[1] if len(args) > 1 and isinstance(args[1], str) else getattr(fn, "__name__", "call"))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(OneHopConnection, "_execute", counted)
    return trips


async def test_the_store_connects_through_the_one_hop_driver(sqlite_store: Store) -> None:
    for engine in (sqlite_store.engine, sqlite_store.write_engine):
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            assert isinstance(raw.driver_connection, OneHopConnection)
            assert (await connection.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"


async def test_each_statement_is_one_trip(sqlite_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    async with sqlite_store.transaction() as tx:
        await tx.execute(text("INSERT INTO item (name) VALUES ('a'), ('b'), ('c')"))
    async with sqlite_store.session() as session:
        await session.execute(text("SELECT 1"))  # the read engine's connection is made (and tuned) here
    trips = count_trips(monkeypatch)
    async with sqlite_store.session() as session:
        rows = (await session.execute(text("SELECT name FROM item ORDER BY id"))).scalars().all()
    assert rows == ["a", "b", "c"]
    # BEGIN, the SELECT with all its rows, and the ROLLBACK that ends the read (the pool's second rollback,
    # with no transaction open, makes no trip): aiosqlite made 4 trips for the SELECT alone.
    assert trips == ["BEGIN", "SELECT name FROM item ORDER BY id", "rollback"], trips


async def test_results_rowcounts_and_many_rows(sqlite_store: Store) -> None:
    async with sqlite_store.transaction() as tx:
        await tx.execute(text("INSERT INTO item (name) VALUES (:name)"), [{"name": f"n{i}"} for i in range(5)])
        updated = await tx.execute(text("UPDATE item SET name = name || '!' WHERE id > 2"))
        assert updated.rowcount == 3  # type: ignore[attr-defined]
        returned = await tx.execute(text("INSERT INTO item (name) VALUES ('x') RETURNING id, name"))
        assert returned.one() == (6, "x")
    async with sqlite_store.session() as session:
        result = await session.execute(text("SELECT id, name FROM item ORDER BY id"))
        assert result.fetchone() == (1, "n0")
        assert result.fetchmany(2) == [(2, "n1"), (3, "n2!")]
        assert result.fetchall() == [(4, "n3!"), (5, "n4!"), (6, "x")]
        assert (await session.execute(text("SELECT 1 WHERE 0"))).first() is None


async def test_an_error_rolls_back_and_the_connection_stays_usable(sqlite_store: Store) -> None:
    async with sqlite_store.transaction() as tx:
        await tx.execute(text("INSERT INTO item (name) VALUES ('taken')"))
    with pytest.raises(IntegrityError):
        async with sqlite_store.transaction() as tx:
            await tx.execute(text("INSERT INTO item (name) VALUES ('kept-out')"))
            await tx.execute(text("INSERT INTO item (name) VALUES ('taken')"))
    async with sqlite_store.transaction() as tx:
        await tx.execute(text("INSERT INTO item (name) VALUES ('after')"))
    async with sqlite_store.session() as session:
        names = (await session.execute(text("SELECT name FROM item ORDER BY id"))).scalars().all()
    assert names == ["taken", "after"]


async def test_cursor_reads_from_its_buffer(tmp_path: Path) -> None:
    from sqlalchemy.engine import make_url

    connect = creator(make_url(f"sqlite+aiosqlite:///{tmp_path}/raw.db"))
    assert connect is not None
    connection = await connect()
    cursor = connection.cursor()
    with pytest.raises(sqlite3.ProgrammingError):  # sqlite3's own error reaches the caller
        await cursor.executemany("SELECT ?", [(1,), (2,)])
    await cursor.execute("CREATE TABLE t (v INTEGER)")
    await cursor.executemany("INSERT INTO t (v) VALUES (?)", iter([(1,), (2,)]))
    assert cursor.rowcount == 2
    cursor = connection.cursor()
    await cursor.execute("SELECT value FROM (SELECT 1 AS value UNION ALL SELECT 2 UNION ALL SELECT 3)")
    assert cursor.description is not None and cursor.description[0][0] == "value"
    assert await cursor.fetchone() == (1,)
    assert await cursor.fetchmany() == [(2,)]  # arraysize 1, as the DB-API says
    assert await cursor.fetchall() == [(3,)]
    assert await cursor.fetchone() is None
    await connection.close()


def test_memory_and_uri_databases_keep_aiosqlite() -> None:
    from sqlalchemy.engine import make_url

    assert creator(make_url("sqlite+aiosqlite:///:memory:")) is None
    assert creator(make_url("sqlite+aiosqlite:///file:x?mode=memory&uri=true")) is None


async def test_background_checkpoints_empty_the_wal_and_commits_do_not_checkpoint(sqlite_store: Store) -> None:
    """The writer leaves the WAL to the background task (it checkpoints only past ~40 MB); a PASSIVE
    checkpoint then copies every frame back without blocking the next writer."""
    async with sqlite_store.write_engine.connect() as connection:
        pages = (await connection.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar_one()
    assert pages == WAL_AUTOCHECKPOINT_PAGES
    for batch in range(30):
        async with sqlite_store.transaction() as tx:
            await tx.execute(
                text("INSERT INTO item (name) VALUES (:name)"),
                [{"name": f"{batch}-{n}-{'x' * 8000}"} for n in range(20)],
            )
    # ~5 MB written: past SQLite's default of 1,000 pages (4 MB), but the writer did not checkpoint.
    assert wal_size(sqlite_store) > 4_200_000
    found = await sqlite_store.checkpoint()
    assert found is not None
    frames, copied = found
    assert frames > 0 and copied == frames
    async with sqlite_store.transaction() as tx:  # the next writer starts the WAL over
        await tx.execute(text("INSERT INTO item (name) VALUES ('after')"))
    async with sqlite_store.session() as session:
        assert (await session.execute(text("SELECT count(*) FROM item"))).scalar_one() == 601


async def test_the_checkpoint_task_runs_until_cancelled(sqlite_store: Store) -> None:
    calls: list[tuple[int, int] | None] = []
    original = sqlite_store.checkpoint

    async def counted(connection: Any = None) -> tuple[int, int] | None:
        calls.append(await original(connection))
        return calls[-1]

    sqlite_store.checkpoint = counted  # type: ignore[method-assign]
    task = asyncio.create_task(sqlite_store.run_checkpoints(0.01))
    await eventually(lambda: len(calls) >= 2, what="two checkpoints")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(sqlite_store.run_checkpoints(0), 5)  # 0: off, returns at once


async def test_after_a_cancelled_trip_rollbacks_always_make_the_trip(tmp_path: Path) -> None:
    """A cancelled call may still run on the connection's thread (a BEGIN, say): the open-transaction flag
    read on the loop's side is then not to be trusted, so the rollback goes to the thread, after it."""
    from sqlalchemy.engine import make_url

    connect = creator(make_url(f"sqlite+aiosqlite:///{tmp_path}/cancel.db"), isolation_level=None)
    assert connect is not None
    connection = await connect()
    slow = asyncio.create_task(
        connection.cursor().execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) SELECT count(*) FROM n"
        )
    )
    await asyncio.sleep(0.05)  # the statement is running on the thread
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    trips: list[str] = []
    original = aiosqlite.Connection.rollback

    async def counted(self: Any) -> None:
        trips.append("rollback")
        await original(self)

    aiosqlite.Connection.rollback = counted  # type: ignore[method-assign]
    try:
        await connection.rollback()
    finally:
        aiosqlite.Connection.rollback = original  # type: ignore[method-assign]
    assert trips == ["rollback"]
    await connection.close()
