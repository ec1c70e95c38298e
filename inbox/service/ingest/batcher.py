"""Group commit of inbound deliveries: the batcher behind `InboxService.deliver` and its set-based write.

Concurrent `deliver()` calls queue here; one writer task per service (so per process) takes whatever is
waiting (no delay when idle, at most `MAX_BATCH`), writes it in ONE transaction, commits, publishes the
events in id order and only then answers each caller. A batch of one is written the same way (it costs fewer statements than the
per-message path, which remains the fallback).

The batch is written set-based by `inbox.service.ingest.batch.write_batch` (a constant number of statements per
batch); on SQLite the common case — plain messages from known or new senders, none stored before — is written
by `inbox.service.ingest.direct` on the driver connection, with the same statements and rows. Any error in it rolls all of it back (nothing was acknowledged) and every message is then
delivered on its own, so one bad message fails alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from channels.base import Delivered, Inbound
from inbox.service.ingest.batch import write_batch
from inbox.service.ingest.direct import write_direct

if TYPE_CHECKING:
    from inbox.service import InboxService

MAX_BATCH = 128


@dataclass(slots=True)
class _Job:
    inbound: Inbound
    stored: Sequence[tuple[Any, Any]]
    future: asyncio.Future[Delivered] = field(repr=False)


class DeliveryBatcher:
    """Queues deliveries and writes them in batches from a single writer task."""

    def __init__(self, service: InboxService, *, max_batch: int = MAX_BATCH) -> None:
        self.service = service
        self.max_batch = max_batch
        self._queue: list[_Job] = []
        self._writing = 0
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # batches written (of any size), for tests and benchmarks
        self.direct_batches = 0  # of which written by `inbox.service.ingest.direct`
        self.direct = True  # SQLite: plain batches skip SQLAlchemy's sessions (tests turn it off to compare)

    @property
    def queued(self) -> int:
        """Deliveries waiting for the writer (not yet in a transaction)."""
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        """Deliveries accepted and not yet answered: queued plus the batch being written."""
        return len(self._queue) + self._writing

    async def submit(self, inbound: Inbound, stored: Sequence[tuple[Any, Any]]) -> Delivered:
        """Queue one delivery and wait until it is committed (or has failed)."""
        loop = asyncio.get_running_loop()
        job = _Job(inbound, stored, loop.create_future())
        self._queue.append(job)
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._run(), name="deliver-batcher")
        return await job.future

    async def _run(self) -> None:
        while self._queue:
            batch = [job for job in self._queue[: self.max_batch] if not job.future.done()]
            del self._queue[: self.max_batch]
            if not batch:
                continue  # every caller gave up before its turn: nothing to write
            self._writing = len(batch)
            try:
                await self._write(batch)
            except BaseException as error:  # a bug or cancellation: no caller may wait forever
                for job in batch:
                    _answer(job, error)
                if isinstance(error, asyncio.CancelledError):
                    for job in self._queue:
                        _answer(job, error)
                    self._queue.clear()
                    raise
            finally:
                self._writing = 0
                self.batches += 1

    async def _write(self, batch: list[_Job]) -> None:
        service = self.service
        try:
            written = await write_direct(service, batch) if self.direct else None  # the common case, SQLite
            if written is not None:
                self.direct_batches += 1
            results, records = written if written is not None else await write_batch(service, batch)
        except Exception:
            # Rolled back, so nothing of it was stored or acknowledged: each message on its own now.
            for job in batch:
                await _one(service, job)
            return
        await service.publish(records)
        for job, result in zip(batch, results, strict=True):
            _answer(job, result)


async def _one(service: InboxService, job: _Job) -> None:
    try:
        result: Delivered | BaseException = await service.deliver_one(job.inbound, job.stored)
    except Exception as error:
        result = error
    _answer(job, result)


def _answer(job: _Job, result: Delivered | BaseException) -> None:
    if job.future.done():
        return
    if isinstance(result, asyncio.CancelledError):
        job.future.cancel()
    elif isinstance(result, BaseException):
        job.future.set_exception(result)
    else:
        job.future.set_result(result)
