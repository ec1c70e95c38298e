"""Leases: work that must run in exactly one process of a cluster at a time.

A lease is a row in the `Cursor` table, `key = "lease:<name>"`, whose `value` is the holder and whose
`updated_at` is the last renewal. One atomic conditional UPDATE takes a lease that is free, expired or
already ours, so it works the same on SQLite and PostgreSQL with no extra table. The holder renews every
`ttl / 3`; a holder that dies stops renewing and another process takes over once `ttl` has passed. A holder
that fails to renew (it lost the database, or was paused past `ttl`) is cancelled, so two holders never run
the work side by side for longer than one renewal interval. Clocks of the processes must agree to well
within `ttl` (NTP).

    await leases.run_exclusive("imap:3", lambda: channel.run(inbox))   # forever, in one process at a time
    async with leases.hold("prune"):                                     # or hold it around a block
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from inbox.clock import utcnow
from inbox.store.engine import Store
from inbox.store.models import Cursor

log = logging.getLogger(__name__)

PREFIX = "lease:"


class LeaseLost(Exception):
    """Another process owns the lease now (or it could not be renewed): the work was stopped."""

    def __init__(self, key: str) -> None:
        super().__init__(f"lease {key!r} was lost")
        self.key = key


class Leases:
    """Takes, renews and releases leases for one process (`owner`)."""

    def __init__(
        self,
        store: Store,
        *,
        ttl_seconds: float = 10.0,
        owner: str | None = None,
        clock: Callable[[], Any] = utcnow,
    ) -> None:
        self.store = store
        self.ttl = ttl_seconds
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.clock = clock

    async def try_acquire(self, key: str) -> bool:
        """Take (or renew) the lease if it is free, expired or ours; answer whether we hold it."""
        now = self.clock()
        stale = now - timedelta(seconds=self.ttl)
        row_key = PREFIX + key
        async with self.store.transaction() as tx:
            result = cast(
                CursorResult[Any],
                await tx.execute(
                    update(Cursor)
                    .where(
                        col(Cursor.key) == row_key,
                        (col(Cursor.value) == self.owner) | (col(Cursor.updated_at) < stale),
                    )
                    .values(value=self.owner, updated_at=now)
                ),
            )
            if result.rowcount:
                return True
        try:
            async with self.store.transaction() as tx:
                if await tx.get(Cursor, row_key) is not None:
                    return False  # someone else holds it and it has not expired
                tx.add(Cursor(key=row_key, value=self.owner, updated_at=now))
        except IntegrityError:
            return False  # another process inserted it first
        return True

    async def release(self, key: str) -> None:
        """Give the lease up at once (only if we still hold it)."""
        async with self.store.transaction() as tx:
            await tx.execute(delete(Cursor).where(col(Cursor.key) == PREFIX + key, col(Cursor.value) == self.owner))

    async def holder(self, key: str) -> str | None:
        """The current holder if the lease has not expired."""
        async with self.store.session() as session:
            row = await session.get(Cursor, PREFIX + key)
        if row is None or row.updated_at < self.clock() - timedelta(seconds=self.ttl):
            return None
        return row.value

    async def acquire(self, key: str) -> None:
        """Wait until the lease is ours."""
        while True:
            try:
                if await self.try_acquire(key):
                    return
            except Exception:
                log.exception("lease %s: could not be taken; retrying", key)
            await asyncio.sleep(self.ttl / 3)

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold the lease around a block; the block is cancelled and `LeaseLost` raised if it is lost."""
        await self.acquire(key)
        task = asyncio.current_task()
        assert task is not None
        lost = False

        def on_lost() -> None:
            nonlocal lost
            lost = True
            task.cancel()

        renewer = asyncio.create_task(self._renew(key, on_lost), name=f"lease-renew:{key}")
        try:
            yield
        except asyncio.CancelledError:
            if lost and task.uncancel() == 0:
                raise LeaseLost(key) from None
            raise
        finally:
            renewer.cancel()
            # Wait for the renewer without raising its CancelledError: suppressing that would also swallow a
            # cancellation of this task arriving meanwhile, and `run_exclusive` would then never stop.
            await asyncio.wait({renewer})
            if not lost:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.release(key))

    async def _renew(self, key: str, on_lost: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                held = await asyncio.wait_for(self.try_acquire(key), self.ttl / 3)
            except Exception as exc:
                log.warning("lease %s: renewal failed (%s); stopping the work", key, exc or type(exc).__name__)
                held = False
            if not held:
                on_lost()
                return

    async def run_exclusive(
        self, key: str, work: Callable[[], Awaitable[Any]], *, restart_delay_seconds: float = 1.0
    ) -> None:
        """Run `work()` under the lease until it returns; a lost lease or a crash starts over."""
        while True:
            try:
                async with self.hold(key):
                    log.info("lease %s: held by %s", key, self.owner)
                    await work()
                    return
            except LeaseLost:
                log.warning("lease %s: lost; waiting to take it again", key)
            except Exception:
                log.exception("lease %s: the work failed; restarting it", key)
                await asyncio.sleep(restart_delay_seconds)
