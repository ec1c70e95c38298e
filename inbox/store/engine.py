"""The database engine and sessions: SQLite (tuned per DESIGN §5) or PostgreSQL via asyncpg.

Holds connection plumbing only; what gets written is decided in `inbox.service.core`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Table, event, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from inbox.store import sqlite_driver

log = logging.getLogger(__name__)

# SQLite: the writer copies the WAL back into the database itself only past this many pages (~40 MB, a
# backstop); normally `Store.run_checkpoints` does it in the background, off the commit path. SQLite's
# default (1,000 pages) made every ~40th single-message commit pay for a checkpoint: p99 of a lone delivery
# 11–19 ms with it, 5–7 ms without (the microbenchmark in BENCHMARKS.md).
WAL_AUTOCHECKPOINT_PAGES = 10_000

SINGLE_STATEMENTS = "switchboard_single_statement_reads"  # execution option, see `Store.statement_reads`

# Transaction-scoped advisory lock keys (PostgreSQL; SQLite serialises writers already).
SETUP_LOCK_KEY = 0x5B0A_2D01  # first-admin setup: two concurrent setups cannot both pass the "no agent" check


class OutOfOrder(Exception):
    """A multi-row INSERT's ids cannot be paired with its rows: a bug that must never pair a row with another's
    id. The write is rolled back (and, on the direct path, handed to the general one)."""


def consecutive(ids: Sequence[int], count: int) -> list[int]:
    """The ids a multi-row INSERT of `count` rows answered on SQLite, in the rows' order.

    SQLite numbers a statement's rows in the order it processes them, but returns them in no promised order;
    the ids sorted are the rows' only if nobody took one in between, which the writer's lock makes so. That is
    checked here rather than assumed (`OutOfOrder` if the ids are not `count` consecutive numbers).
    """
    ordered = sorted(ids)
    if len(ordered) != count or (ordered and ordered[-1] - ordered[0] != count - 1):
        raise OutOfOrder(f"an INSERT of {count} rows answered ids {ordered}")
    return ordered


async def insert_ids(connection: Any, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """INSERT `rows` (one multi-row statement); their new ids in the order of `rows`, paired by key, never on
    trust: SQLAlchemy's `sort_by_parameter_order` on PostgreSQL (it correlates RETURNING rows with parameter
    sets), `consecutive` on SQLite (where SQLAlchemy would fall back to one INSERT per row)."""
    if connection.dialect.name == "sqlite":
        returned = await connection.execute(insert(table).returning(table.c.id), rows)
        return consecutive(list(returned.scalars()), len(rows))
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list((await connection.execute(statement, rows)).scalars())


class Store:
    """Owns the engine and hands out sessions and transactions."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        self._sqlite_file: str | None = None
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
            connect = sqlite_driver.creator(parsed, timeout=30)
            if connect is not None:
                self._sqlite_file = parsed.database
                kwargs["async_creator"] = connect  # one thread hop per statement (see `inbox.store.sqlite_driver`)
        else:
            kwargs["pool_size"] = pool_size
            kwargs["pool_pre_ping"] = True
            # The most recently returned connection first: asyncpg keeps prepared statements per connection,
            # so a few busy connections with warm caches beat every connection preparing every statement.
            kwargs["pool_use_lifo"] = True
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self.write_engine: AsyncEngine = self.engine
        if self.is_sqlite:
            # SQLite has one writer at a time: a dedicated one-connection engine whose transactions
            # start with BEGIN IMMEDIATE queues writers in the app instead of failing on lock upgrades,
            # while the read engine keeps WAL's concurrent readers.
            self.write_engine = create_async_engine(url, pool_size=1, max_overflow=0, **kwargs)
            event.listen(self.engine.sync_engine, "connect", _tune_sqlite)
            event.listen(self.engine.sync_engine, "begin", _begin_deferred)
            event.listen(self.write_engine.sync_engine, "connect", _tune_sqlite)
            event.listen(self.write_engine.sync_engine, "begin", _begin_immediate)
        # The direct inbound writer's connections (`inbox.service.ingest.direct`). On PostgreSQL a pool of its own
        # without the ping before each use: a batch there is two round trips, and the ping made it three. A
        # connection found dead is dropped by the writer, whose batch the per-message path then stores.
        self.direct_engine: AsyncEngine = self.write_engine
        if not self.is_sqlite:
            self.direct_engine = create_async_engine(
                url, **{**kwargs, "pool_size": 2, "max_overflow": 2, "pool_pre_ping": False}
            )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.write_sessions = async_sessionmaker(self.write_engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A read session; nothing it does is committed."""
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def statement_reads(self) -> AsyncIterator[AsyncSession]:
        """A read session whose statements each stand alone: each reads its own snapshot, so no BEGIN is
        sent (SQLite: one statement and its thread hand-offs fewer; PostgreSQL: autocommit, no BEGIN and
        ROLLBACK round trips). For reads that need no common snapshot across their statements, such as
        a request that checks its caller and then reads a page in one statement."""
        options = {SINGLE_STATEMENTS: True} if self.is_sqlite else {"isolation_level": "AUTOCOMMIT"}
        async with self.sessions() as session:
            await session.connection(execution_options=options)
            yield session

    @asynccontextmanager
    async def reading(self, session: AsyncSession | None) -> AsyncIterator[AsyncSession]:
        """`session` if the caller already holds one (left open), else a new read session for the block."""
        if session is not None:
            yield session
            return
        async with self.sessions() as fresh:
            yield fresh

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits on success and rolls back on any error."""
        async with self.write_sessions() as session, session.begin():
            yield session

    async def exclusive(self, session: AsyncSession, key: int) -> None:
        """Hold a cluster-wide lock on `key` until the transaction ends (PostgreSQL; SQLite has one writer).

        Event appends take no lock: writers commit concurrently and readers of the event log only hand on
        ids below a settled horizon (`inbox.realtime.events.read_settled`).
        """
        if not self.is_sqlite:
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    async def checkpoint(self, connection: sqlite_driver.OneHopConnection | None = None) -> tuple[int, int] | None:
        """SQLite: copy what the WAL holds back into the database without blocking the writer or readers
        (a PASSIVE checkpoint, from `connection` or a connection of its own). Answers (WAL frames, frames
        copied); None when there is no WAL to checkpoint (PostgreSQL, an in-memory database)."""
        if self._sqlite_file is None:
            return None
        if connection is None:
            own = await sqlite_driver.background(self._sqlite_file, timeout=30)
            try:
                return await self.checkpoint(own)
            finally:
                await own.close()
        rows = await connection.rows("PRAGMA wal_checkpoint(PASSIVE)")
        return (int(rows[0][1]), int(rows[0][2])) if rows else None

    async def run_checkpoints(self, interval: float) -> None:
        """Checkpoint every `interval` seconds until cancelled (one per process; SQLite is one process), on a
        connection kept for it. Small, frequent checkpoints: each copies what a fraction of a second wrote, so
        none holds the core (which the server often has alone) for long.
        An interval of 0 or less turns it off (the writer's own checkpoint remains)."""
        if self._sqlite_file is None or interval <= 0:
            return
        connection = await sqlite_driver.background(self._sqlite_file, timeout=30)
        try:
            while True:
                await asyncio.sleep(interval)
                try:
                    await self.checkpoint(connection)
                except Exception:
                    log.exception("sqlite: background checkpoint failed; the writer's own checkpoint still runs")
        finally:
            await connection.close()

    async def close(self) -> None:
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()
        if self.direct_engine is not self.write_engine:
            await self.direct_engine.dispose()


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling is turned off so SQLAlchemy's "begin" event can issue
    # BEGIN IMMEDIATE: writers queue on busy_timeout instead of failing with "database is locked".
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    cursor.close()


def _begin_immediate(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _begin_deferred(connection: Any) -> None:
    if connection.get_execution_options().get(SINGLE_STATEMENTS):
        return  # autocommit mode: every statement is its own read transaction
    connection.exec_driver_sql("BEGIN")
