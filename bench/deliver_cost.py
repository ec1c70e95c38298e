"""Deliver cost: CPU time and latency of deliveries that arrive a few at a time (the common case at a few
hundred messages/s, where group-commit batches are small), with where the CPU goes per statement.

Delivers `--messages` messages in rounds of `--batch` concurrent `InboxService.deliver` calls (one group-commit
batch each) from `--senders` senders, in this process (no HTTP), pinned to `--cores`. Prints CPU ms per
message and per batch, the CPU spent in each SQL statement per batch (by its first words), the latency of
each round (p50/p99/p99.9/max). With `--checkpoints` the server's background WAL checkpoint task (SQLite)
runs as it does in `switchboard serve`.

    .venv/bin/python -m bench.deliver_cost --backend sqlite --batch 1 --messages 3000
    .venv/bin/python -m bench.deliver_cost --backend sqlite --batch 1 --messages 3000 --checkpoints
    .venv/bin/python -m bench.deliver_cost --backend postgres --batch 1 --messages 2000
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bench.common import cpu_pressure, machine, percentiles, pin_self, postgres
from bench.ingest import inbound
from inbox.realtime.broker import LocalBroker
from inbox.service import InboxService
from inbox.store.blobs import BlobStore
from inbox.store.engine import Store
from inbox.store.migrate import upgrade
from tests.factories import make_inbox


class StatementCpu(collections.Counter[str]):
    """CPU seconds per statement, by its first words, and the CPU spent naming them (to subtract)."""

    labelling = 0.0


@contextlib.contextmanager
def statement_cpu() -> Iterator[StatementCpu]:
    """CPU seconds spent in each statement (ORM session or Core connection), by its first words (bench-only
    patch; a flush the ORM runs inside a statement counts towards that statement). Naming a statement means
    compiling it to text, which costs as much as running it: that time is kept apart in `labelling`."""
    spent = StatementCpu()
    originals = {kind: kind.execute for kind in (AsyncSession, AsyncConnection)}

    def timed(original: Any) -> Any:
        async def execute(self: Any, statement: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return await original(self, statement, *args, **kwargs)
            finally:
                took = time.process_time() - started
                spent[" ".join(str(statement).split()[:4])[:48]] += took
                spent.labelling += time.process_time() - started - took

        return execute

    for kind, original in originals.items():
        kind.execute = timed(original)  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        for kind, original in originals.items():
            kind.execute = original  # type: ignore[method-assign]


async def measure(url: str, args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    store = Store(url)
    await upgrade(store)
    broker = LocalBroker()
    await broker.start()
    service = InboxService(store, broker, BlobStore(directory / "blobs"))
    inbox = await make_inbox(store)
    assert inbox.id is not None
    checkpoints = asyncio.create_task(store.run_checkpoints(1.0)) if args.checkpoints else None
    for number in range(args.senders):  # every sender's contact and conversation exist: follow-ups only
        await service.deliver(inbound(inbox.id, number, args.senders, "warm"))
    rounds = args.messages // args.batch
    latencies: list[float] = []
    with statement_cpu() as spent:
        cpu, started = time.process_time(), time.monotonic()
        for index in range(rounds):
            begun = time.perf_counter()
            await asyncio.gather(
                *(
                    service.deliver(inbound(inbox.id, index * args.batch + k, args.senders, "m"))
                    for k in range(args.batch)
                )
            )
            latencies.append((time.perf_counter() - begun) * 1000)
        cpu, elapsed = time.process_time() - cpu - spent.labelling, time.monotonic() - started
    if checkpoints is not None:
        checkpoints.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await checkpoints
    await store.close()
    messages = rounds * args.batch
    return {
        "backend": args.backend,
        "batch": args.batch,
        "messages": messages,
        "background_checkpoints": bool(args.checkpoints),
        "cpu_ms_per_message": round(cpu * 1000 / messages, 3),
        "cpu_ms_per_batch": round(cpu * 1000 / rounds, 3),
        "rate_per_s": round(messages / elapsed, 1),
        "batch_latency_ms": {
            **{name: round(value, 2) for name, value in percentiles(latencies).items()},
            "p99.9": round(sorted(latencies)[int(len(latencies) * 0.999)], 2),
        },
        "statement_cpu_ms_per_batch": {
            name: round(seconds * 1000 / rounds, 3) for name, seconds in spent.most_common()
        },
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=1, help="concurrent deliveries per round (one batch)")
    parser.add_argument("--senders", type=int, default=1000)
    parser.add_argument("--checkpoints", action="store_true", help="run the background WAL checkpoint task")
    parser.add_argument("--cores", default="0", help="CPU list for this process (taskset)")
    parser.add_argument("--db-cores", default="1", help="CPU list for PostgreSQL")
    args = parser.parse_args()
    pin_self(args.cores)
    print(f"# deliver_cost · {args.backend} · machine: {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="sb-bench-cost-") as scratch:
        directory = Path(scratch)
        if args.backend == "sqlite":
            result = await measure(f"sqlite+aiosqlite:///{directory}/bench.db", args, directory)
        else:
            with postgres(args.db_cores) as url:
                result = await measure(url, args, directory)
    print(json.dumps(result), flush=True)
    print(f"# done · {cpu_pressure()}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
