"""`python -m bench.serve CONFIG PORT`: the app as `switchboard serve` runs it, minus the access log
(one log line per request would be measured too)."""

from __future__ import annotations

import os
import sys
from typing import Any

import uvicorn
from sqlalchemy import event

from inbox import config
from inbox.app import UVICORN_OPTIONS, create_app


class CountSql:
    """Bench-only: counts the engine's SQL statements per HTTP request (`x-sql-count` response header).

    Exact only when requests come one at a time (the bench's inbox_list does that)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.count = 0
        self.attached = False

    def _statement(self, *_args: Any) -> None:
        self.count += 1

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if not self.attached and hasattr(self.app.state, "store"):
            for engine in {self.app.state.services.store.engine, self.app.state.services.store.write_engine}:
                event.listen(engine.sync_engine, "before_cursor_execute", self._statement)
            self.attached = True
        start = self.count

        async def counted(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"x-sql-count", str(self.count - start).encode())]
                message = {**message, "headers": headers}
            await send(message)

        return await self.app(scope, receive, counted)


def trace_memory(directory: str) -> None:
    """Bench-only (`SB_BENCH_TRACEMALLOC=DIR`): trace allocations; each SIGUSR1 writes a snapshot to DIR."""
    import signal
    import tracemalloc
    from pathlib import Path

    tracemalloc.start(12)
    taken = [0]

    def dump(*_args: Any) -> None:
        taken[0] += 1
        tracemalloc.take_snapshot().dump(str(Path(directory) / f"snapshot-{taken[0]}.tracemalloc"))

    signal.signal(signal.SIGUSR1, dump)


def profile_cpu_window(spec: str) -> None:
    """Bench-only (`SB_BENCH_CPROFILE_AT=FILE:START:SECONDS`): cProfile on CPU time (not wall time) of the main
    thread, from START seconds after launch for SECONDS, dumped to FILE. Unlike py-spy it follows
    SQLAlchemy's greenlets. Switched on and off by a timer signal, which runs in the main thread."""
    import cProfile
    import signal
    import time

    path, start, seconds = spec.rsplit(":", 2)
    profiler = cProfile.Profile(time.process_time)

    def off(*_args: Any) -> None:
        profiler.disable()
        profiler.dump_stats(path)

    def on(*_args: Any) -> None:
        signal.signal(signal.SIGALRM, off)
        signal.setitimer(signal.ITIMER_REAL, float(seconds))
        profiler.enable()

    signal.signal(signal.SIGALRM, on)
    signal.setitimer(signal.ITIMER_REAL, float(start))


def start_profile(path: str) -> None:
    """Bench-only (`SB_BENCH_CPROFILE=FILE`): cProfile in CPU time (`time.process_time`, so waiting for
    other processes on a shared machine is not counted); SIGUSR2 writes the profile so far to FILE."""
    import cProfile
    import signal
    import time

    profiler = cProfile.Profile(time.process_time)

    def dump(*_args: Any) -> None:
        profiler.dump_stats(path)

    signal.signal(signal.SIGUSR2, dump)
    profiler.enable()


def log_gc_pauses(path: str) -> None:
    """Bench-only (`SB_BENCH_GCLOG=FILE`): how long each garbage collection stopped the server, to tell collector
    pauses from the rest of the latency tail. Every 200 collections one JSON line goes to FILE: per generation
    the count, the total and the longest pauses."""
    import gc
    import json
    import time

    pauses: list[tuple[int, float]] = []
    started = [0.0]

    def write() -> None:
        by_gen: dict[str, Any] = {}
        for generation in (0, 1, 2):
            took = sorted(ms for gen, ms in pauses if gen == generation)
            if took:
                by_gen[str(generation)] = {
                    "count": len(took),
                    "total_ms": round(sum(took), 1),
                    "longest_ms": [round(ms, 2) for ms in took[-3:]],
                }
        with open(path, "a") as out:
            out.write(json.dumps({"gc": by_gen, "threshold": gc.get_threshold(), "frozen": gc.get_freeze_count()}))
            out.write("\n")
        pauses.clear()

    def timed(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        generation, took = int(info["generation"]), (time.perf_counter() - started[0]) * 1000
        pauses.append((generation, took))
        if generation == 2:  # the long ones, each with the time it happened
            with open(path, "a") as out:
                out.write(json.dumps({"full_collection_ms": round(took, 1), "at": time.time()}) + "\n")
        if len(pauses) >= 200:
            write()

    gc.callbacks.append(timed)


if __name__ == "__main__":
    if os.environ.get("SB_BENCH_GCLOG"):
        log_gc_pauses(os.environ["SB_BENCH_GCLOG"])
    if os.environ.get("SB_BENCH_CPROFILE_AT"):
        profile_cpu_window(os.environ["SB_BENCH_CPROFILE_AT"])
    if os.environ.get("SB_BENCH_TRACEMALLOC"):
        trace_memory(os.environ["SB_BENCH_TRACEMALLOC"])
    app: Any = create_app(config.load(sys.argv[1]))
    if os.environ.get("SB_BENCH_COUNT_SQL") == "1":
        app = CountSql(app)
    profile = os.environ.get("SB_BENCH_CPROFILE")
    if profile:
        start_profile(profile)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[2]),
        log_level="warning",
        access_log=False,
        # The real server's options; bench-only: `SB_BENCH_WS=auto` (or `websockets-sansio`) compares uvicorn's
        # other websocket implementations.
        **{**UVICORN_OPTIONS, "ws": os.environ.get("SB_BENCH_WS", UVICORN_OPTIONS["ws"])},
    )
