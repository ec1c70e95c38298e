"""Ingest: durable inbound messages per second through `InboxService.deliver` (contact, conversation,
message, events, publish — everything but HTTP), beside raw single-row INSERT+COMMITs into the same
database in the same run (the floor for one durable write per message).

SQLite: one process, WAL with synchronous=NORMAL (the app's settings). PostgreSQL: durable settings
(fsync, synchronous_commit on) and two worker processes, each with its own Redis broker.

    .venv/bin/python -m bench.ingest --backend sqlite --messages 5000
    .venv/bin/python -m bench.ingest --backend postgres --messages 5000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.common import cpu_pressure, machine, percentiles, pin_self, postgres
from channels.base import Identity, IdentityKind, Inbound
from inbox.realtime.broker import Broker, LocalBroker
from inbox.realtime.redis_broker import RedisBroker
from inbox.service import InboxService
from inbox.store.blobs import BlobStore
from inbox.store.engine import Store
from inbox.store.migrate import upgrade
from tests.factories import make_inbox
from tests.servers.redis import RedisServer


def inbound(inbox_id: int, number: int, senders: int, tag: str) -> Inbound:
    sender = f"{inbox_id}:visitor-{number % senders}"
    return Inbound(
        inbox_id=inbox_id,
        external_id=f"{tag}-{number}",
        thread_key=f"sender:{sender}",
        sender=Identity(IdentityKind.EXTERNAL, sender, name=f"Visitor {number % senders}"),
        text=f"Hello, this is message {number}. My order has not arrived yet.",
    )


async def _deliver_worker(spec: dict[str, Any]) -> dict[str, Any]:
    store = Store(spec["db_url"], pool_size=spec["concurrency"] + 2)
    broker: Broker = RedisBroker(spec["redis_url"]) if spec["redis_url"] else LocalBroker()
    await broker.start()
    service = InboxService(store, broker, BlobStore(spec["blobs"]))
    numbers = list(range(spec["first"], spec["first"] + spec["count"]))
    latencies: list[float] = []

    async def deliver(number: int, due: float) -> None:
        await service.deliver(inbound(spec["inbox_id"], number, spec["senders"], spec["tag"]))
        latencies.append(time.monotonic() - due)

    started, cpu = time.monotonic(), time.process_time()
    if spec.get("rate"):
        # Open loop: each process offers its share of --rate, whatever the answers' latency.
        interval = 1.0 / spec["rate"]

        async def scheduled(index: int, number: int) -> None:
            due = started + index * interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await deliver(number, due)

        await asyncio.gather(*(scheduled(index, number) for index, number in enumerate(numbers)))
    else:
        # Closed loop: `concurrency` producers, each delivering its next message as soon as the last is stored.
        queue: asyncio.Queue[int] = asyncio.Queue()
        for number in numbers:
            queue.put_nowait(number)

        async def worker() -> None:
            while not queue.empty():
                await deliver(queue.get_nowait(), time.monotonic())

        await asyncio.gather(*(worker() for _ in range(spec["concurrency"])))
    finished, cpu = time.monotonic(), time.process_time() - cpu
    batches = getattr(getattr(service, "batcher", None), "batches", 0)
    await broker.stop()
    await store.close()
    return {
        "started": started,
        "finished": finished,
        "count": len(numbers),
        "cpu": cpu,
        "batches": batches,
        "latencies": latencies,
    }


async def _raw_worker(spec: dict[str, Any]) -> dict[str, float]:
    store = Store(spec["db_url"], pool_size=spec["concurrency"] + 2)
    numbers = list(range(spec["first"], spec["first"] + spec["count"]))
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in numbers:
        queue.put_nowait(number)
    insert = text(
        "INSERT INTO message (conversation_id, inbox_id, kind, body, sender_type, sender_name, status,"
        " external_id, meta, created_at, updated_at) VALUES (:conversation, :inbox, 'incoming', :body, 'contact',"
        " 'Visitor', 'received', :external_id, '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )

    group = int(spec.get("group", 1))

    def row(number: int) -> dict[str, Any]:
        return {
            "conversation": spec["conversation_id"],
            "inbox": spec["inbox_id"],
            "body": f"Hello, this is message {number}. My order has not arrived yet.",
            "external_id": f"raw-{spec['tag']}-g{group}-{number}",
        }

    async def worker() -> None:
        while not queue.empty():
            numbers = [queue.get_nowait() for _ in range(min(group, queue.qsize()))]
            async with store.transaction() as tx:
                # group > 1: the group-commit floor (one executemany and one COMMIT for `group` messages).
                await tx.execute(insert, [row(number) for number in numbers])

    started, cpu = time.monotonic(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(spec["concurrency"])))
    finished, cpu = time.monotonic(), time.process_time() - cpu
    await store.close()
    return {"started": started, "finished": finished, "count": len(numbers), "cpu": cpu}


def _run(kind: str, spec: dict[str, Any], results: Any) -> None:
    pin_self(spec.get("cores"))
    job = _deliver_worker if kind == "deliver" else _raw_worker
    results.put(asyncio.run(job(spec)))


def phase(kind: str, specs: list[dict[str, Any]]) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=_run, args=(kind, spec, results)) for spec in specs]
    for process in processes:
        process.start()
    found = [results.get() for _ in processes]
    for process in processes:
        process.join()
    elapsed = max(item["finished"] for item in found) - min(item["started"] for item in found)
    count = sum(item["count"] for item in found)
    cpu = sum(item["cpu"] for item in found)
    extra: dict[str, Any] = {}
    if kind == "deliver":
        batches = sum(item["batches"] for item in found)
        latency = percentiles([value for item in found for value in item["latencies"]])
        extra = {
            "mean_batch": round(count / batches, 1) if batches else None,
            **{f"latency_{name}_ms": round(value * 1000, 1) for name, value in latency.items() if name != "p95"},
        }
    return {
        "messages": count,
        "seconds": round(elapsed, 2),
        "per_second": round(count / elapsed, 1),
        "client_cpu_ms_per_message": round(cpu * 1000 / count, 3),
        "per_second_per_cpu_bound": round(count / cpu, 1),
        **extra,
    }


async def prepare(db_url: str) -> tuple[int, int]:
    store = Store(db_url)
    await upgrade(store)
    inbox = await make_inbox(store, name="Bench")
    assert inbox.id is not None
    service = InboxService(store, LocalBroker(), BlobStore(tempfile.mkdtemp()))
    delivered = await service.deliver(inbound(inbox.id, 0, 1, "seed"))
    await store.close()
    return inbox.id, delivered.conversation_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument(
        "--senders", type=int, default=1000, help="distinct customers (first message opens a conversation)"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent deliveries per process")
    parser.add_argument("--processes", type=int, default=0, help="default: 1 on SQLite, 2 on PostgreSQL")
    parser.add_argument(
        "--rate", type=float, default=0, help="offer this many messages/s in total (open loop) instead of --concurrency"
    )
    args = parser.parse_args()
    processes = args.processes or (1 if args.backend == "sqlite" else 2)
    offered = f"open loop at {args.rate:g} msg/s" if args.rate else f"{args.concurrency} producers per process"
    print(f"# ingest · {args.backend} · {processes} process(es) · {offered} · machine: {machine()}", flush=True)
    with contextlib.ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sb-ingest-")))
        redis_url = ""
        if args.backend == "sqlite":
            db_url = f"sqlite+aiosqlite:///{directory / 'ingest.db'}"
        else:
            db_url = stack.enter_context(postgres())
            redis = RedisServer()
            redis.start()
            stack.callback(redis.close)
            redis_url = redis.url
        inbox_id, conversation_id = asyncio.run(prepare(db_url))
        share = args.messages // processes
        tag = uuid.uuid4().hex[:6]
        specs = [
            {
                "db_url": db_url,
                "redis_url": redis_url,
                "inbox_id": inbox_id,
                "conversation_id": conversation_id,
                "first": number * share,
                "count": share,
                "senders": args.senders,
                "concurrency": args.concurrency,
                "rate": args.rate / processes,
                "blobs": str(directory / "blobs"),
                "tag": tag,
                "cores": str(number % 2) if processes > 1 else None,
            }
            for number in range(processes)
        ]
        deliver = phase("deliver", specs)
        print(json.dumps({"phase": "deliver (new conversations and follow-ups)", **deliver}), flush=True)
        for spec in specs:
            spec["tag"] = tag + "b"  # every sender already has a conversation now: steady state
        again = phase("deliver", specs)
        print(json.dumps({"phase": "deliver (follow-ups only)", **again}), flush=True)
        raw = phase("raw", specs)
        print(json.dumps({"phase": "raw INSERT + COMMIT per message", **raw}), flush=True)
        for spec in specs:
            spec["group"] = args.concurrency
        grouped = phase("raw", specs)
        print(json.dumps({"phase": f"raw INSERT, {args.concurrency} per COMMIT", **grouped}), flush=True)
    print(f"# done · load average now {os.getloadavg()[0]:.2f} · {cpu_pressure()}", flush=True)


if __name__ == "__main__":
    main()
