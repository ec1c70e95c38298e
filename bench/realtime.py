"""Realtime: N visitors send at a set open-loop rate; M agents hold agent-stream websockets. For each message,
the time from its scheduled send until the LAST agent has it ("time to last agent"), p50/p95/p99/max; messages
lost (acknowledged but not seen by every agent within 5 s of the end); achieved rate; server RSS and CPU per
message. Server(s) and load generator are pinned to different cores. In the same run, the floor: the same
traffic through a bare `websockets` relay with no persistence (bench/relay.py).

Visitors send over their widget sockets (or `--senders http`: the API channel's ingest); the floor's senders use
websockets. Senders behave as the real clients do under overload: a `slow_down` frame or a 503 makes them send
the same message again (same `client_id` / `external_id`) after the server's `retry_after`. The report counts
refusals and the messages refused at least once, and gives the latency of accepted messages both from the first
scheduled send (what the visitor lives through, waits included) and from the accepted attempt. `--max-in-flight N`
sets `[admission] max_deliveries_in_flight` of the servers (0: no admission control, the behaviour before it).

    .venv/bin/python -m bench.realtime --backend sqlite --rate 300 --duration 20
    .venv/bin/python -m bench.realtime --backend postgres --rate 300 --duration 20
    .venv/bin/python -m bench.realtime --backend sqlite --find-max --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import websockets

from bench.common import (
    Deployment,
    add_backend_flags,
    cpu_pressure,
    deployment,
    free_port,
    machine,
    percentiles,
    pin_self,
    proc_stat,
    raise_file_limit,
)

GRACE = 5.0


@dataclass
class Run:
    label: str
    rate: float
    duration: float
    agents: int
    scheduled: dict[str, float] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    errors: dict[str, int] = field(default_factory=dict)
    seen: list[dict[str, float]] = field(default_factory=list)  # per agent: external_id -> arrival time
    send_finished: float = 0.0
    started: float = 0.0
    attempt_at: dict[str, float] = field(default_factory=dict)  # external_id -> time of its latest send
    refused: set[str] = field(default_factory=set)  # messages refused (slow_down / 503) at least once
    refusals: int = 0
    acked_at: dict[str, float] = field(default_factory=dict)  # external_id -> when its sender got the ack
    timeline: str = ""  # --timeline FILE: each message's send offset (s) and time to last agent (ms)

    def refuse(self, external_id: str) -> None:
        self.refusals += 1
        self.refused.add(external_id)

    def report(self, extra: dict[str, Any]) -> dict[str, Any]:
        latencies, accepted, lost = [], [], 0
        to_ack = [
            (at - self.attempt_at.get(external_id, self.scheduled[external_id])) * 1000
            for external_id, at in self.acked_at.items()
        ]
        points: list[tuple[float, float]] = []
        for external_id in self.acked:
            arrivals = [agent.get(external_id) for agent in self.seen]
            if any(arrival is None for arrival in arrivals):
                lost += 1
                continue
            last = max(arrival for arrival in arrivals if arrival is not None)
            latencies.append((last - self.scheduled[external_id]) * 1000)
            if self.timeline:
                points.append((self.scheduled[external_id] - self.started, latencies[-1]))
            accepted.append((last - self.attempt_at.get(external_id, self.scheduled[external_id])) * 1000)
        elapsed = self.send_finished - self.started
        if self.timeline:
            with open(self.timeline, "a") as out:
                out.writelines(f"{self.label} {at:.4f} {ms:.2f}\n" for at, ms in sorted(points))
        return {
            "label": self.label,
            "target_rate": self.rate,
            "achieved_rate": round(len(self.acked) / elapsed, 1) if elapsed else 0.0,
            "sent": len(self.scheduled),
            "acknowledged": len(self.acked),
            "errors": self.errors,
            "refusals": self.refusals,
            "refused_messages": len(self.refused),
            "refused_then_acknowledged": len(self.refused & self.acked),
            "acknowledged_first_try": len(self.acked - self.refused),
            "unacknowledged_at_end": len(self.scheduled) - len(self.acked),
            "lost": lost,
            "time_to_last_agent_ms": {k: round(v, 2) for k, v in percentiles(latencies).items()},
            "accepted_attempt_to_last_agent_ms": {k: round(v, 2) for k, v in percentiles(accepted).items()},
            "accepted_attempt_to_ack_ms": {k: round(v, 2) for k, v in percentiles(to_ack).items()},
            **extra,
        }


async def agent_reader(connection: Any, seen: dict[str, float], ready: asyncio.Event | None) -> None:
    loads = json.loads
    clock = time.monotonic
    try:
        async for raw in connection:
            now = clock()
            frame = loads(raw)
            kind = frame.get("type")
            if kind == "message.created":
                seen.setdefault(frame["data"]["body"], now)  # the body is the message's bench id
            elif kind == "relay":
                seen.setdefault(frame["external_id"], now)
            elif kind == "ready" and ready is not None:
                ready.set()
    except websockets.ConnectionClosed:
        return


async def open_loop(run: Run, send: Any) -> None:
    """Schedule message i at start + i/rate whatever happened to earlier ones (no coordinated omission)."""
    total = int(run.rate * run.duration)
    tasks = []
    run.started = time.monotonic()
    for number in range(total):
        at = run.started + number / run.rate
        delay = at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        external_id = f"{run.label}-{number}"
        run.scheduled[external_id] = at
        tasks.append(asyncio.create_task(send(number, external_id)))
    await asyncio.gather(*tasks)
    run.send_finished = time.monotonic()


async def wait_for_arrivals(run: Run) -> None:
    deadline = time.monotonic() + GRACE
    while time.monotonic() < deadline:
        if all(len(agent) >= len(run.acked) and run.acked <= agent.keys() for agent in run.seen):
            return
        await asyncio.sleep(0.05)


async def measure_switchboard(found: Deployment, args: argparse.Namespace, rate: float, label: str) -> dict[str, Any]:
    run = Run(label, rate, args.duration, args.agents, timeline=args.timeline)
    connections = []
    readers = []
    for number in range(args.agents):
        server = found.servers[number % len(found.servers)]
        connection = await websockets.connect(
            f"{server.ws_url}/api/v1/stream",
            additional_headers={"Authorization": f"Bearer {found.seed.token}"},
            compression=None,
            max_size=None,
        )
        seen: dict[str, float] = {}
        ready = asyncio.Event()
        run.seen.append(seen)
        connections.append(connection)
        readers.append(asyncio.create_task(agent_reader(connection, seen, ready)))
        await asyncio.wait_for(ready.wait(), 10)
    inbox = found.seed.inbox_id
    jobs: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    http_pending: set[str] = set()
    attempts: dict[str, int] = {}  # external_id -> refusals so far (each doubles the wait, as the widget does)
    loop = asyncio.get_running_loop()

    async def sender(server_index: int) -> None:
        """One keep-alive HTTP/1.1 connection taking jobs in order (a minimal client: httpx costs more CPU per
        request than the server, and its pool slows down with thousands of waiting requests)."""
        server = found.servers[server_index]
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        head = (
            f"POST /api/v1/inboxes/{inbox}/incoming HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Authorization: Bearer {found.seed.inbox_secret}\r\nContent-Type: application/json\r\n"
        )
        while True:
            number, external_id = await jobs.get()
            body = json.dumps(
                {"external_id": external_id, "sender": {"id": f"visitor-{number % args.visitors}"},
                 "body": external_id}
            ).encode()  # fmt: skip
            try:
                run.attempt_at[external_id] = time.monotonic()
                writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                answer = await reader.readexactly(length)
                status = int(status_line.split()[1])
                if status in (200, 201):
                    run.acked.add(external_id)
                    http_pending.discard(external_id)
                elif status == 503 and b"slow_down" in answer:  # overloaded: the same message again, later
                    run.refuse(external_id)
                    refused = attempts[external_id] = attempts.get(external_id, 0) + 1
                    retry = float(json.loads(answer)["error"]["retry_after"]) * 2 ** min(refused - 1, 5)
                    loop.call_later(min(60.0, retry), jobs.put_nowait, (number, external_id))
                else:
                    http_pending.discard(external_id)
                    run.errors[str(status)] = run.errors.get(str(status), 0) + 1
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
                run.errors[type(exc).__name__] = run.errors.get(type(exc).__name__, 0) + 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            finally:
                jobs.task_done()

    senders = []
    if args.senders == "http":
        senders = [asyncio.create_task(sender(n % len(found.servers))) for n in range(args.http_connections)]
    visitors: list[Any] = []
    pending_acks: dict[str, str] = {}
    resends: set[asyncio.Task[None]] = set()

    async def resend(connection: Any, client_id: str) -> None:
        external_id = pending_acks.get(client_id)
        if external_id is None:
            return
        run.attempt_at[external_id] = time.monotonic()
        frame = {"type": "message", "client_id": client_id, "body": external_id}
        try:
            await connection.send(json.dumps(frame))
        except websockets.ConnectionClosed:
            run.errors["closed"] = run.errors.get("closed", 0) + 1

    def resend_later(connection: Any, client_id: str, seconds: float) -> None:
        def start() -> None:
            task = asyncio.create_task(resend(connection, client_id))
            resends.add(task)
            task.add_done_callback(resends.discard)

        loop.call_later(seconds, start)

    async def visitor_reader(connection: Any) -> None:
        try:
            async for raw in connection:
                frame = json.loads(raw)
                if frame.get("type") == "ack":
                    external_id = pending_acks.pop(frame["client_id"], None)
                    if external_id is not None:
                        run.acked.add(external_id)
                        run.acked_at[external_id] = time.monotonic()
                elif frame.get("type") == "error" and frame.get("code") == "slow_down":
                    # Overloaded: as the widget does, the same client_id again after retry_after.
                    external_id = pending_acks.get(frame.get("client_id") or "")
                    if external_id is not None:
                        run.refuse(external_id)
                        refused = attempts[external_id] = attempts.get(external_id, 0) + 1
                        wait = min(60.0, float(frame["retry_after"]) * 2 ** min(refused - 1, 5))  # the widget's backoff
                        resend_later(connection, frame["client_id"], wait)
                elif frame.get("type") == "error":
                    code = str(frame.get("code"))
                    run.errors[code] = run.errors.get(code, 0) + 1
        except websockets.ConnectionClosed:
            return

    if args.senders == "widget":
        for number in range(args.visitors):
            server = found.servers[number % len(found.servers)]
            connection = await websockets.connect(
                f"{server.ws_url}/widget/ws?key={found.widget_key}", compression=None, max_size=None
            )
            hello = {"type": "hello", "visitor_token": None, "after": None, "identity": None}
            await connection.send(json.dumps(hello))
            while json.loads(await connection.recv()).get("type") != "welcome":
                pass
            visitors.append(connection)
            senders.append(asyncio.create_task(visitor_reader(connection)))

    async def send(number: int, external_id: str) -> None:
        if args.senders == "http":
            http_pending.add(external_id)
            jobs.put_nowait((number, external_id))
            return
        client_id = str(uuid.uuid4())
        pending_acks[client_id] = external_id
        frame = {"type": "message", "client_id": client_id, "body": external_id}
        try:
            await visitors[number % len(visitors)].send(json.dumps(frame))
        except websockets.ConnectionClosed:
            run.errors["closed"] = run.errors.get("closed", 0) + 1

    before = found.stats()
    own_before = proc_stat(os.getpid())
    await open_loop(run, send)
    deadline = time.monotonic() + args.drain
    while (pending_acks or http_pending) and time.monotonic() < deadline:  # noqa: ASYNC110  (acks come later)
        await asyncio.sleep(0.01)
    run.send_finished = time.monotonic()
    await wait_for_arrivals(run)
    after = found.stats()
    own_after = proc_stat(os.getpid())
    for task in senders:
        task.cancel()
    for connection in visitors:
        await connection.close()
    for connection in connections:
        await connection.close()
    for reader in readers:
        reader.cancel()
    cpu = sum(b.cpu_seconds - a.cpu_seconds for a, b in zip(before, after, strict=True))
    return run.report(
        {
            "server_processes": len(found.servers),
            "server_rss_mib": [round(stat.rss_bytes / 2**20, 1) for stat in after],
            "server_cpu_ms_per_message": round(cpu * 1000 / max(1, len(run.acked)), 3),
            "server_cpu_utilisation": round(cpu / max(1e-9, run.send_finished - run.started), 2),
            "loadgen_cpu_utilisation": round(
                (own_after.cpu_seconds - own_before.cpu_seconds) / max(1e-9, run.send_finished - run.started), 2
            ),
        }
    )


async def measure_floor(args: argparse.Namespace, rate: float) -> dict[str, Any]:
    port = free_port()
    command = [sys.executable, "-m", "bench.relay", str(port)]
    if args.server_cores:
        command = ["taskset", "-c", args.server_cores, *command]
    relay = subprocess.Popen(command)  # noqa: ASYNC220  (started once, before measuring)
    try:
        for _ in range(100):
            try:
                probe = await websockets.connect(f"ws://127.0.0.1:{port}/agent")
                await probe.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        run = Run("floor", rate, args.duration, args.agents)
        agents = []
        readers = []
        for _ in range(args.agents):
            connection = await websockets.connect(f"ws://127.0.0.1:{port}/agent", compression=None, max_size=None)
            seen: dict[str, float] = {}
            run.seen.append(seen)
            agents.append(connection)
            readers.append(asyncio.create_task(agent_reader(connection, seen, None)))
        senders = [
            await websockets.connect(f"ws://127.0.0.1:{port}/send", compression=None)
            for _ in range(args.http_connections)
        ]

        async def send(number: int, external_id: str) -> None:
            frame = json.dumps(
                {
                    "type": "relay",
                    "external_id": external_id,
                    "sender": {"id": f"visitor-{number % args.visitors}"},
                    "body": f"Hello, message {number}",
                }
            )
            await senders[number % len(senders)].send(frame)
            run.acked.add(external_id)

        before = proc_stat(relay.pid)
        await open_loop(run, send)
        await wait_for_arrivals(run)
        after = proc_stat(relay.pid)
        for connection in [*agents, *senders]:
            await connection.close()
        for reader in readers:
            reader.cancel()
        cpu = after.cpu_seconds - before.cpu_seconds
        return run.report(
            {
                "server_processes": 1,
                "server_rss_mib": [round(after.rss_bytes / 2**20, 1)],
                "server_cpu_ms_per_message": round(cpu * 1000 / max(1, len(run.acked)), 3),
                "server_cpu_utilisation": round(cpu / max(1e-9, run.send_finished - run.started), 2),
            }
        )
    finally:
        relay.terminate()
        relay.wait(10)


def passed(result: dict[str, Any]) -> bool:
    return (
        result["lost"] == 0
        and not result["errors"]
        and result["time_to_last_agent_ms"]["p99"] <= 1000
        and result["achieved_rate"] >= 0.95 * result["target_rate"]
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_backend_flags(parser)
    parser.add_argument("--client-cores", default="1", help="CPU list of this load generator (taskset)")
    parser.add_argument("--rate", type=float, default=300.0, help="messages per second, open loop")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of sending per run")
    parser.add_argument("--visitors", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument(
        "--senders", choices=["widget", "http"], default="widget",
        help="widget: one /widget/ws socket per visitor; http: the API channel's ingest",
    )  # fmt: skip
    parser.add_argument("--http-connections", type=int, default=64, help="sender connection pool size")
    parser.add_argument("--no-floor", action="store_true", help="skip the bare-relay floor")
    parser.add_argument(
        "--max-in-flight", type=int, default=None,
        help="[admission] max_deliveries_in_flight of the servers (default: the server default; 0: off)",
    )  # fmt: skip
    parser.add_argument(
        "--drain", type=float, default=30.0,
        help="seconds after the last scheduled send to wait for acknowledgements (refused messages are resent)",
    )  # fmt: skip
    parser.add_argument(
        "--processes", type=int, default=None, help="server processes (default: 1 on sqlite, 2 on postgres)"
    )
    parser.add_argument("--timeline", default="", help="append each message's send time and latency to FILE")
    parser.add_argument("--profile", default="", help="py-spy the (first) server during the main run into FILE")
    parser.add_argument("--find-max", action="store_true", help="raise the rate until p99 > 1 s or a loss")
    args = parser.parse_args()
    pin_self(args.client_cores)
    raise_file_limit(10000)
    print(f"# realtime · {args.backend} · machine: {machine()}", flush=True)
    print(
        f"# server cores {args.server_cores}, database cores {args.db_cores or args.server_cores},"
        f" load generator cores {args.client_cores}",
        flush=True,
    )
    if args.max_in_flight is not None:
        print(f"# [admission] max_deliveries_in_flight = {args.max_in_flight}", flush=True)
    async with deployment(
        args.backend,
        args.server_cores,
        max_in_flight=args.max_in_flight,
        db_cores=args.db_cores,
        processes=args.processes,
    ) as found:
        # Warm up: the first message of each visitor creates its contact and conversation.
        warm = await measure_switchboard(found, argparse.Namespace(**{**vars(args), "duration": 2.0}), 100, "warm")
        print("warm-up:", json.dumps(warm), flush=True)
        rates = [args.rate]
        if args.find_max:
            rates = [50, 100, 200, 300, 400, 600, 800, 1000, 1500, 2000]
        best = None
        for rate in rates:
            spy = None
            if args.profile:
                assert found.servers[0].process is not None
                spy = subprocess.Popen(  # noqa: ASYNC220
                    ["py-spy", "record", "--format", "raw", "-o", args.profile, "-r", "200", "--nonblocking",
                     "-d", str(int(args.duration)), "--pid", str(found.servers[0].process.pid)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
            result = await measure_switchboard(found, args, rate, f"r{int(rate)}")
            if spy is not None:
                await asyncio.to_thread(spy.wait)
            print(json.dumps(result), flush=True)
            if args.find_max:
                if not passed(result):
                    break
                best = rate
        if args.find_max:
            print(f"highest rate held for {args.duration:.0f} s with no loss and p99 <= 1 s: {best} msg/s", flush=True)
    if not args.no_floor:
        floor = await measure_floor(args, args.rate)
        print(json.dumps(floor), flush=True)
    print(f"# done · load average now {os.getloadavg()[0]:.2f} · {cpu_pressure()}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
