"""What every benchmark shares: the machine description, throwaway PostgreSQL (durable settings) and Redis
servers, seeding, `switchboard` server processes pinned to CPU cores, and /proc readings (RSS, CPU time).

`--backend sqlite` is one server process on a SQLite file; `--backend postgres` is two server processes on
PostgreSQL + Redis (both started here, on loopback, and removed afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import pwd
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inbox.store.engine import Store  # noqa: E402
from inbox.store.migrate import upgrade  # noqa: E402
from tests.servers.cluster import Seed, seed  # noqa: E402
from tests.servers.postgres import binaries  # noqa: E402
from tests.servers.redis import RedisServer  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def machine() -> str:
    """One paragraph describing where the figures came from."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = int(line.split()[1]) // 1024
    load = os.getloadavg()
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC} · {model}, {os.cpu_count()} cores, {memory} MiB RAM · "
        f"{platform.system()} {platform.release()} · Python {platform.python_version()} · "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} · {cpu_pressure()}"
    )


def cpu_pressure() -> str:
    """Share of the last 10 s in which some runnable task waited for a CPU (Linux PSI): other load."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        first = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return f"CPU pressure {float(first.split()[1].split('=')[1]):.0f}%"
    return "CPU pressure n/a"


def percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "max": float("nan")}
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": statistics.median(ordered), "p95": at(0.95), "p99": at(0.99), "max": ordered[-1]}


@dataclass(frozen=True)
class ProcStat:
    cpu_seconds: float
    rss_bytes: int


def proc_stat(pid: int) -> ProcStat:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return ProcStat((utime + stime) / CLOCK_TICKS, rss_pages * PAGE)


# ── servers ────────────────────────────────────────────────────────────────────────────────
def _as_postgres() -> dict[str, int]:
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid}


@contextlib.contextmanager
def postgres(cores: str | None = None) -> Iterator[str]:
    """A throwaway PostgreSQL with durable settings (fsync and synchronous_commit on, the defaults)."""
    bin_dir = binaries()
    if bin_dir is None:
        raise SystemExit("PostgreSQL binaries not found: apt-get install -y postgresql")
    root = Path(tempfile.mkdtemp(prefix="sb-bench-pg-"))
    root.chmod(0o755)
    data = root / "data"
    data.mkdir()
    user = _as_postgres()
    if user:
        for path in (root, data):
            os.chown(path, user["user"], user["group"])
    subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"],
        check=True,
        capture_output=True,
        **user,  # type: ignore[arg-type]
    )
    port = free_port()
    command = [str(bin_dir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(root)]
    command += ["-c", "max_connections=300", "-c", "shared_buffers=512MB"]
    if cores:
        command = ["taskset", "-c", cores, *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **user)  # type: ignore[call-overload]
    try:
        for _ in range(400):
            ready = subprocess.run(
                [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"], capture_output=True
            )
            if ready.returncode == 0:
                break
            time.sleep(0.05)
        subprocess.run(
            [
                str(bin_dir / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "-c",
                "CREATE DATABASE bench",
            ],
            check=True,
            capture_output=True,
        )
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/bench"
    finally:
        process.terminate()
        process.wait(30)
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Server:
    """One `switchboard` server process (uvicorn, no access log, no per-message deflate)."""

    config_path: Path
    port: int
    cores: str | None
    process: subprocess.Popen[bytes] | None = None
    tree: Path = ROOT  # the source tree it runs from (another checkout: an A/B against older code)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [sys.executable, "-m", "bench.serve", str(self.config_path), str(self.port)]
        if self.cores:
            command = ["taskset", "-c", self.cores, *command]
        log = open(self.config_path.with_suffix(".log"), "ab")  # noqa: SIM115  (owned by the child)
        self.process = subprocess.Popen(command, cwd=self.tree, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"server exited: {self.config_path.with_suffix('.log').read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise SystemExit("server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def stat(self) -> ProcStat:
        assert self.process is not None
        return proc_stat(self.process.pid)


@dataclass
class Deployment:
    backend: str
    db_url: str
    seed: Seed
    widget_key: str = ""
    servers: list[Server] = field(default_factory=list)
    redis: RedisServer | None = None
    directory: Path = Path(".")

    def stats(self) -> list[ProcStat]:
        return [server.stat() for server in self.servers]


def add_backend_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="sqlite: one process on SQLite; postgres: two processes on PostgreSQL + Redis",
    )
    parser.add_argument("--server-cores", default="0", help="CPU list the server process(es) run on (taskset)")
    parser.add_argument(
        "--db-cores", default=None,
        help="CPU list PostgreSQL runs on (taskset; default: the server cores, sharing them with the servers)",
    )  # fmt: skip


def write_config(
    path: Path,
    *,
    db_url: str,
    redis_url: str,
    state_dir: Path,
    port: int,
    queue_size: int,
    max_in_flight: int | None = None,
) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    admission = "" if max_in_flight is None else f"\n[admission]\nmax_deliveries_in_flight = {max_in_flight}\n"
    path.write_text(
        f"""
[server]
secret_key = "bench-secret-key"
state_directory = "{state_dir}"
base_url = "http://127.0.0.1:{port}"
max_body_bytes = 65536

[database]
url = "{db_url}"
pool_size = 20

[redis]
url = "{redis_url}"

[stream]
queue_size = {queue_size}

[webchat]
# The load generator is one address sending for many visitors: no per-IP or per-visitor limit in benchmarks.
ip_messages_per_minute = 0
visitor_messages_per_minute = 0

[storage]
directory = "{state_dir / "attachments"}"
{admission}""",
        encoding="utf-8",
    )


@contextlib.asynccontextmanager
async def deployment(
    backend: str,
    cores: str | None,
    *,
    processes: int | None = None,
    queue_size: int = 1000,
    prepare: Any = None,
    max_in_flight: int | None = None,
    db_cores: str | None = None,
    sqlite_file: Path | None = None,
) -> AsyncIterator[Deployment]:
    """Start the database (and Redis), migrate, seed an admin + API inbox, start the server process(es).

    `sqlite_file` (SQLite only) keeps the database: seeded on the first run, reused as it is by the next
    ones (the seed's token and ids are kept beside it in `<file>.seed.json`), so runs can be repeated
    against the same rows."""
    directory = Path(tempfile.mkdtemp(prefix="sb-bench-"))
    count = processes or (1 if backend == "sqlite" else 2)
    with contextlib.ExitStack() as stack:
        redis: RedisServer | None = None
        if backend == "sqlite":
            db_url = f"sqlite+aiosqlite:///{sqlite_file or directory / 'bench.db'}"
        else:
            if sqlite_file:
                raise SystemExit("--db keeps a SQLite file: use it with --backend sqlite")
            db_url = stack.enter_context(postgres(db_cores or cores))
            redis = RedisServer()
            redis.start()
            stack.callback(redis.close)
        reused = _kept_seed(sqlite_file) if sqlite_file else None
        if reused is not None:
            seeded, widget_key = reused
            print(f"# reusing the seeded database {sqlite_file}", flush=True)
        else:
            store = Store(db_url)
            await upgrade(store)
            seeded = await seed(store, webhook_url=None)
            widget_key = await _webchat_inbox(store, seeded.agent_id)
            await store.close()
            if prepare is not None:  # e.g. bulk rows, before any server starts
                await prepare(db_url, seeded.agent_id, seeded.inbox_id)
            if sqlite_file is not None:
                _keep_seed(sqlite_file, seeded, widget_key)
        found = Deployment(backend, db_url, seeded, widget_key, redis=redis, directory=directory)
        for number in range(count):
            port = free_port()
            path = directory / f"server-{number}.toml"
            write_config(
                path,
                db_url=db_url,
                redis_url=redis.url if redis else "",
                state_dir=directory / f"state-{number}",
                port=port,
                queue_size=queue_size,
                max_in_flight=max_in_flight,
            )
            found.servers.append(Server(path, port, cores))
        try:
            await asyncio.gather(*(asyncio.to_thread(server.start) for server in found.servers))
            yield found
        finally:
            for server in found.servers:
                server.stop()
            shutil.rmtree(directory, ignore_errors=True)


def _seed_file(sqlite_file: Path) -> Path:
    return sqlite_file.with_name(sqlite_file.name + ".seed.json")


def _kept_seed(sqlite_file: Path) -> tuple[Seed, str] | None:
    """The seed of a kept SQLite file (`--db`), if it was seeded completely before."""
    if not (sqlite_file.exists() and _seed_file(sqlite_file).exists()):
        return None
    saved = json.loads(_seed_file(sqlite_file).read_text())
    return Seed(**saved["seed"]), str(saved["widget_key"])


def _keep_seed(sqlite_file: Path, seeded: Seed, widget_key: str) -> None:
    _seed_file(sqlite_file).write_text(json.dumps({"seed": dataclasses.asdict(seeded), "widget_key": widget_key}))


async def _webchat_inbox(store: Store, agent_id: int) -> str:
    """A live-chat inbox (no allowed-origins list: any page may embed it); answers its public key."""
    import secrets

    from inbox.store.models import Inbox, InboxMember

    key = secrets.token_urlsafe(12)
    async with store.transaction() as tx:
        inbox = Inbox(name="Website", channel="webchat", settings={}, public_key=key, secret=secrets.token_urlsafe(24))
        tx.add(inbox)
        await tx.flush()
        assert inbox.id is not None
        tx.add(InboxMember(inbox_id=inbox.id, agent_id=agent_id))
    return key


def pin_self(cores: str | None) -> None:
    """Pin this (load generator) process to `cores`."""
    if cores:
        os.sched_setaffinity(0, {int(core) for core in cores.split(",")})


def raise_file_limit(wanted: int) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
