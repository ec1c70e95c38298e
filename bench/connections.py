"""Connections: idle websockets held by one server process, and server memory per connection.

Opens K widget websockets (`/widget/ws?key=…`, each a new visitor: hello → welcome) or, with
`--socket agent`, agent-stream websockets (`/api/v1/stream`, bearer token, until `ready`); lets them idle and
reads the server's RSS before and after. Per-message deflate is off (the server's default).

    .venv/bin/python -m bench.connections --backend sqlite --count 10000
    .venv/bin/python -m bench.connections --backend postgres --count 10000   # split over two processes
    .venv/bin/python -m bench.connections --count 2000 --tracemalloc   # where the bytes go, per socket

`--tracemalloc` runs the (first) server under `tracemalloc` (Python allocations only, 12 frames; it slows the
server and adds its own overhead to RSS) and prints the allocations that grew while the sockets were opened,
grouped by traceback, in bytes per socket.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import websockets

from bench.common import (
    add_backend_flags,
    cpu_pressure,
    deployment,
    machine,
    pin_self,
    proc_stat,
    raise_file_limit,
)


async def open_widget(url: str) -> Any:
    connection = await websockets.connect(url, compression=None, max_size=None, ping_interval=None, open_timeout=60)
    await connection.send(json.dumps({"type": "hello", "visitor_token": None, "after": None, "identity": None}))
    async with asyncio.timeout(60):
        while True:
            frame = json.loads(await connection.recv())
            if frame.get("type") == "welcome":
                return connection
            if frame.get("type") == "error":
                raise RuntimeError(f"widget refused: {frame}")


async def open_stream(url: str, token: str) -> Any:
    connection = await websockets.connect(
        url,
        additional_headers={"Authorization": f"Bearer {token}"},
        compression=None,
        max_size=None,
        ping_interval=None,
        open_timeout=60,
    )
    async with asyncio.timeout(60):
        while True:
            frame = json.loads(await connection.recv())
            if frame.get("type") == "ready":
                return connection


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_backend_flags(parser)
    parser.add_argument("--client-cores", default="1")
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--socket", choices=["widget", "agent"], default="widget")
    parser.add_argument("--batch", type=int, default=100, help="connections opened at once")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds to hold them idle before measuring")
    parser.add_argument("--tracemalloc", action="store_true", help="where the bytes go, by traceback, per socket")
    args = parser.parse_args()
    traces = Path(tempfile.mkdtemp(prefix="sb-tracemalloc-")) if args.tracemalloc else None
    if traces is not None:
        os.environ["SB_BENCH_TRACEMALLOC"] = str(traces)  # bench/serve.py, inherited by the server
    pin_self(args.client_cores)
    raise_file_limit(args.count + 1000)
    print(f"# connections · {args.socket} sockets · {args.backend} · machine: {machine()}", flush=True)
    async with deployment(args.backend, args.server_cores, queue_size=1000, db_cores=args.db_cores) as found:
        servers = found.servers

        def opener(number: int) -> Any:
            server = servers[number % len(servers)]
            if args.socket == "widget":
                return open_widget(f"{server.ws_url}/widget/ws?key={found.widget_key}")
            return open_stream(f"{server.ws_url}/api/v1/stream", found.seed.token)

        for number in range(len(servers)):  # warm the code paths once, so imports and caches are not counted
            warm = await opener(number)
            await warm.close()
        await asyncio.sleep(1)
        if traces is not None:
            await snapshot(servers[0], traces, 1)
        before = found.stats()
        connections = []
        started = time.monotonic()
        for first in range(0, args.count, args.batch):
            batch = range(first, min(args.count, first + args.batch))
            connections += await asyncio.gather(*(opener(n) for n in batch))
        opened = time.monotonic() - started
        await asyncio.sleep(args.idle)
        after = found.stats()
        per_server = args.count / len(servers)
        if traces is not None:
            await snapshot(servers[0], traces, 2)
            print_growth(traces, per_server)
        result = {
            "socket": args.socket,
            "connections": len(connections),
            "server_processes": len(servers),
            "seconds_to_open": round(opened, 1),
            "server_rss_before_mib": [round(s.rss_bytes / 2**20, 1) for s in before],
            "server_rss_after_mib": [round(s.rss_bytes / 2**20, 1) for s in after],
            "kib_per_connection": [
                round((b.rss_bytes - a.rss_bytes) / per_server / 1024, 1) for a, b in zip(before, after, strict=True)
            ],
            "client_rss_mib": round(proc_stat(os.getpid()).rss_bytes / 2**20, 1),
        }
        print(json.dumps(result), flush=True)
        await asyncio.gather(*(connection.close() for connection in connections), return_exceptions=True)
    print(f"# done · load average now {os.getloadavg()[0]:.2f} · {cpu_pressure()}", flush=True)


async def snapshot(server: Any, directory: Path, number: int) -> None:
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGUSR1)
    path = directory / f"snapshot-{number}.tracemalloc"
    async with asyncio.timeout(300):
        while not path.exists():  # noqa: ASYNC110  (the server writes it)
            await asyncio.sleep(0.2)
    size = -1
    while size != path.stat().st_size:  # until the dump is complete
        size = path.stat().st_size
        await asyncio.sleep(0.5)


def print_growth(directory: Path, sockets: float, top: int = 25) -> None:
    old = tracemalloc.Snapshot.load(str(directory / "snapshot-1.tracemalloc"))
    new = tracemalloc.Snapshot.load(str(directory / "snapshot-2.tracemalloc"))
    grown = [stat for stat in new.compare_to(old, "traceback") if stat.size_diff > 0]
    total = sum(stat.size_diff for stat in grown)
    print(f"# tracemalloc: {total / sockets / 1024:.2f} KiB of Python allocations per socket", flush=True)
    for stat in grown[:top]:
        frames = [f"{frame.filename.split('site-packages/')[-1]}:{frame.lineno}" for frame in stat.traceback]
        where = " < ".join(reversed(frames[-4:]))
        print(f"{stat.size_diff / sockets:9.1f} B/socket {stat.count_diff / sockets:6.2f} blocks  {where}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
