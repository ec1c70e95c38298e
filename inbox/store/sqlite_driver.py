"""aiosqlite with one thread hop per statement instead of four.

aiosqlite runs each sqlite3 connection on its own thread and every call on it (make a cursor, execute,
fetch the rows, close the cursor) is a round trip to that thread: a queued call, a thread wake-up and a
wake-up of the event loop through its self-pipe. SQLAlchemy's adapter makes four such trips per statement,
and on this VM each costs ~0.1 ms of CPU, more than the statement itself (a small delivery is ~10
statements: ~4 ms). `OneHopConnection` is an `aiosqlite.Connection` whose cursors execute a statement, read
all of its rows and close the sqlite3 cursor in ONE trip, then answer `fetch*` from memory. Everything else
(commit, close, `create_function`, the isolation level) is aiosqlite's own; a rollback with no
transaction open makes no trip.

SQLAlchemy reads every row of a non-streaming result anyway (its adapter calls `fetchall()` right after
`execute`), so buffering changes nothing it can observe; the app never uses server-side cursors.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any

import aiosqlite
from sqlalchemy.engine import URL

Description = tuple[tuple[Any, ...], ...] | None
Outcome = tuple[Description, int, int | None, list[Any]]


def _run(conn: sqlite3.Connection, sql: str, parameters: Any, many: bool) -> Outcome:
    """On the connection's thread: the statement, its rows, then the cursor closed (one trip)."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(sql, parameters)
        else:
            cursor.execute(sql, () if parameters is None else parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class OneHopCursor:
    """The DB-API cursor SQLAlchemy's aiosqlite adapter drives: async methods, rows buffered per statement."""

    __slots__ = ("_connection", "_rows", "arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, connection: OneHopConnection) -> None:
        self._connection = connection
        self._rows: deque[Any] = deque()
        self.arraysize = 1
        self.description: Description = None
        self.rowcount = -1
        self.lastrowid: int | None = None

    async def __aenter__(self) -> OneHopCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Any = None) -> OneHopCursor:
        await self._trip(sql, parameters, many=False)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> OneHopCursor:
        await self._trip(sql, list(parameters), many=True)
        return self

    async def _trip(self, sql: str, parameters: Any, *, many: bool) -> None:
        connection = self._connection
        outcome: Outcome = await connection._execute(_run, connection._conn, sql, parameters, many)
        self.description, self.rowcount, self.lastrowid, rows = outcome
        self._rows = deque(rows)

    async def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        count = self.arraysize if size is None else size
        return [self._rows.popleft() for _ in range(min(count, len(self._rows)))]

    async def fetchall(self) -> list[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def close(self) -> None:
        self._rows.clear()


class OneHopConnection(aiosqlite.Connection):
    """An aiosqlite connection whose cursors make one thread trip per statement (see the module doc)."""

    _abandoned = False  # a trip was cancelled while its call may still run on the thread

    def cursor(self) -> OneHopCursor:  # type: ignore[override]
        return OneHopCursor(self)

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super()._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]
        except asyncio.CancelledError:
            self._abandoned = True
            raise

    async def rows(self, sql: str, parameters: Any = None, *, many: bool = False) -> list[Any]:
        """Run one statement (`many`: once per parameter set) and answer its rows, in one trip; for callers
        that use the driver connection directly (`inbox.service.ingest.direct`)."""
        outcome: Outcome = await self._execute(_run, self._conn, sql, parameters, many)
        return outcome[3]

    async def rollback(self) -> None:
        """Skip the trip when no transaction is open: the pool resets every connection it gets back with a
        rollback, right after the session's own. The flag is read between trips, so only while the thread
        is idle: once a trip was cancelled (its call may still be running there, e.g. a BEGIN), never."""
        if not self._abandoned and self._connection is not None and not self._connection.in_transaction:
            return
        await super().rollback()


def creator(url: URL, **options: Any) -> Callable[[], Coroutine[Any, Any, OneHopConnection]] | None:
    """An `async_creator` for `create_async_engine` on a SQLite file; None for anything else (an in-memory
    or URI database keeps aiosqlite's own connect, which SQLAlchemy sets up from the URL)."""
    database = url.database
    if not database or database == ":memory:" or url.query:
        return None
    path = os.path.abspath(database)

    async def connect() -> OneHopConnection:
        def connector() -> sqlite3.Connection:
            connection: sqlite3.Connection = sqlite3.connect(path, check_same_thread=False, **options)
            return connection

        connection = OneHopConnection(connector, 64)
        connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite: never block interpreter exit
        await connection  # starts its thread and opens the database there
        return connection

    return connect


async def background(path: str, **options: Any) -> OneHopConnection:
    """A connection of its own for background work (WAL checkpoints), in autocommit mode. (Its thread keeps
    the normal CPU priority: a niced thread that is descheduled while it holds the GIL stalls the event loop
    behind it, which measured worse than sharing the core.)"""

    def connector() -> sqlite3.Connection:
        connection: sqlite3.Connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None, **options)
        return connection

    connection = OneHopConnection(connector, 64)
    connection._thread.daemon = True
    await connection
    return connection


__all__: Sequence[str] = ("OneHopConnection", "OneHopCursor", "background", "creator")
