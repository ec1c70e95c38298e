"""The database engine and sessions: SQLite (tuned per DESIGN §5) or PostgreSQL via asyncpg.

Holds connection plumbing only; what gets written is decided in `inbox.service`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

SINGLE_STATEMENTS = "switchboard_single_statement_reads"  # execution option, see `Store.statement_reads`

# Transaction-scoped advisory lock keys (PostgreSQL; SQLite serialises writers already).
SETUP_LOCK_KEY = 0x5B0A_2D01  # first-admin setup: two concurrent setups cannot both pass the "no agent" check


class Store:
    """Owns the engine and hands out sessions and transactions."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_size"] = pool_size
            kwargs["pool_pre_ping"] = True
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
        ids below a settled horizon (`inbox.events.read_settled`).
        """
        if not self.is_sqlite:
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    async def close(self) -> None:
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()


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
    cursor.close()


def _begin_immediate(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _begin_deferred(connection: Any) -> None:
    if connection.get_execution_options().get(SINGLE_STATEMENTS):
        return  # autocommit mode: every statement is its own read transaction
    connection.exec_driver_sql("BEGIN")
