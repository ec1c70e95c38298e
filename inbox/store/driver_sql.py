"""SQLAlchemy Core statements compiled once and run on the driver connection itself (aiosqlite through
`inbox.store.sqlite_driver`, or asyncpg), for the one hot write path that needs it (`inbox.service.ingest.direct`).

Why: at a few hundred messages/s most of a small transaction's CPU was SQLAlchemy's work around each
statement (execution context, cache key, result objects, the ORM's identity map and flush) — ~0.12 ms per
statement on the 2-core VM against ~0.04 ms for the statement itself. Here SQLAlchemy still builds and
compiles every statement (for the engine's own dialect, so placeholders and casts are its own), and every
parameter and result column goes through its column type's own bind/result processor, so the values written
and read are what the ORM writes and reads; only the per-execution machinery is skipped. Statements run
with SQLAlchemy's events unseen (its statement counters do not count them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from inbox.store.sqlite_driver import OneHopConnection

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class Prepared:
    """One statement compiled for a dialect with positional parameters, and the type conversions of its
    parameters (in order) and of its result columns."""

    sql: str
    names: tuple[str, ...]
    binds: tuple[Processor, ...]
    results: tuple[Processor, ...]

    def args(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            values[name] if process is None else process(values[name])
            for name, process in zip(self.names, self.binds, strict=True)
        )

    def row(self, raw: Sequence[Any]) -> list[Any]:
        return [value if process is None else process(value) for value, process in zip(raw, self.results, strict=True)]


def prepare(statement: ClauseElement, dialect: Dialect, result_types: Sequence[Any] = ()) -> Prepared:
    """Compile `statement` for `dialect`; `result_types` are the SQLAlchemy types of its result columns."""
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    names = tuple(compiled.positiontup or ())
    binds = tuple(compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names)
    results = tuple(kind.dialect_impl(dialect).result_processor(dialect, None) for kind in result_types)
    return Prepared(compiled.string, names, binds, results)


class Driver(Protocol):
    """Statements, and at most one transaction, on a driver connection. `locks_first`: the transaction is to
    begin before the first read (SQLite's single writer takes its lock); otherwise reads may come first."""

    locks_first: bool

    async def begin(self) -> None: ...
    async def rows(self, statement: Prepared, values: Mapping[str, Any]) -> list[list[Any]]: ...
    async def many(self, statement: Prepared, values: Sequence[Mapping[str, Any]]) -> None: ...
    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...
    def broken(self) -> bool: ...


class SqliteDriver:
    """On `OneHopConnection`: BEGIN IMMEDIATE (the single writer's lock, as the write engine takes it), one
    thread trip per statement."""

    locks_first = True

    def __init__(self, connection: OneHopConnection) -> None:
        self.connection = connection

    async def begin(self) -> None:
        if not self.connection.in_transaction:
            await self.connection.rows("BEGIN IMMEDIATE")

    async def rows(self, statement: Prepared, values: Mapping[str, Any]) -> list[list[Any]]:
        return [statement.row(row) for row in await self.connection.rows(statement.sql, statement.args(values))]

    async def many(self, statement: Prepared, values: Sequence[Mapping[str, Any]]) -> None:
        await self.connection.rows(statement.sql, [statement.args(item) for item in values], many=True)

    async def commit(self) -> None:
        if self.connection.in_transaction:
            await self.connection.rows("COMMIT")

    async def rollback(self) -> None:
        if self.connection.in_transaction:
            await self.connection.rows("ROLLBACK")

    def broken(self) -> bool:
        return False  # a file: nothing between us and it to lose


class AsyncpgDriver:
    """On the asyncpg connection under SQLAlchemy's adapter (its JSON codecs, set by SQLAlchemy, included);
    asyncpg keeps each statement prepared on its connection. Statements outside `begin` run in autocommit."""

    locks_first = False

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.transaction: Any = None

    async def begin(self) -> None:
        self.transaction = self.connection.transaction()
        await self.transaction.start()

    async def rows(self, statement: Prepared, values: Mapping[str, Any]) -> list[list[Any]]:
        return [statement.row(row) for row in await self.connection.fetch(statement.sql, *statement.args(values))]

    async def many(self, statement: Prepared, values: Sequence[Mapping[str, Any]]) -> None:
        await self.connection.executemany(statement.sql, [statement.args(item) for item in values])

    async def commit(self) -> None:
        if self.transaction is not None:
            await self.transaction.commit()
            self.transaction = None

    async def rollback(self) -> None:
        if self.transaction is not None and self.connection.is_in_transaction():
            await self.transaction.rollback()
        self.transaction = None

    def broken(self) -> bool:
        return bool(self.connection.is_closed())


async def driver_of(connection: AsyncConnection) -> Driver | None:
    """The driver connection under a SQLAlchemy connection, or None for one this module does not drive
    (an in-memory SQLite database keeps aiosqlite's own connection)."""
    raw = (await connection.get_raw_connection()).driver_connection
    if isinstance(raw, OneHopConnection):
        return SqliteDriver(raw)
    if connection.dialect.driver == "asyncpg":
        return AsyncpgDriver(raw)
    return None
