# ruff: noqa: F811  (the `dovecot` and `user` fixtures imported from tests.email_helpers are parameters here)
"""Once-per-cluster IMAP: two `switchboard serve` processes on PostgreSQL + Redis reading one real Dovecot
mailbox. Exactly one process holds the IMAP connection (counted from the kernel's socket table per process
and from each process's channel health); a mail APPENDed is stored once; SIGKILL the holder and the other
process takes the lease over within seconds, and a mail appended after the kill arrives, with no duplicates.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from inbox.store.engine import Store
from inbox.store.migrate import upgrade
from inbox.store.models import Cursor, key
from tests.conftest import fresh_postgres_database
from tests.email_helpers import (  # noqa: F401
    append,
    dovecot,
    email_inbox,
    eventually,
    imap_settings,
    messages,
    raw_mail,
    user,
)
from tests.servers.app import ServerProcess, free_port
from tests.servers.cluster import Seed, seed, write_config
from tests.servers.dovecot import Dovecot
from tests.servers.redis import RedisServer

pytestmark = pytest.mark.timeout(120)
LEASE_SECONDS = 2.0
EMAIL_SECTION = """
[email]
poll_interval_seconds = 3600.0
reconnect_max_seconds = 0.5
connect_timeout_seconds = 5.0

[channels]
refresh_seconds = 0.5
restart_backoff_max_seconds = 1.0
"""


@dataclass
class MailCluster:
    store: Store
    seed: Seed
    inbox_id: int
    user: str
    processes: list[ServerProcess]


@pytest.fixture
async def mail_cluster(
    postgres_url_only: str, own_redis: RedisServer, tmp_path: Path, dovecot: Dovecot, user: str
) -> AsyncIterator[MailCluster]:
    db_url = await fresh_postgres_database(postgres_url_only)
    store = Store(db_url)
    await upgrade(store)
    seeded = await seed(store)
    inbox = await email_inbox(store, address=user, **imap_settings(dovecot, user))
    prefix = uuid.uuid4().hex[:8]
    processes = []
    for name in ("a", "b"):
        port = free_port()
        path = write_config(
            tmp_path / f"{name}.toml",
            db_url=db_url,
            redis_url=own_redis.url,
            state_dir=tmp_path / name,
            port=port,
            prefix=prefix,
            lease_seconds=LEASE_SECONDS,
        )
        path.write_text(path.read_text() + EMAIL_SECTION)
        processes.append(ServerProcess(path, port))
    try:
        await asyncio.gather(*(asyncio.to_thread(process.start) for process in processes))
        yield MailCluster(store, seeded, key(inbox), user, processes)
    finally:
        await asyncio.gather(*(asyncio.to_thread(process.stop) for process in processes))
        await store.close()


def imap_connections(process: ServerProcess, port: int) -> int:
    """Established TCP connections from `process` to `port` on loopback (from /proc, no extra tools)."""
    assert process.process is not None
    pid = process.process.pid
    inodes: set[str] = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except FileNotFoundError:
        return 0  # the process is gone
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == port and fields[3] == "01" and fields[9] in inodes:  # 01 = ESTABLISHED
                    count += 1
    return count


async def health_rows(http: httpx.AsyncClient, process: ServerProcess, token: str, inbox_id: int) -> list[Any]:
    answer = await http.get(f"{process.url}/api/v1/channels/health", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return [row for row in answer.json()["items"] if row["inbox_id"] == inbox_id and row["last_fetch_at"]]


async def status_row(http: httpx.AsyncClient, process: ServerProcess, token: str, inbox_id: int) -> Any:
    answer = await http.get(f"{process.url}/api/v1/channels/status", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return next(row for row in answer.json()["items"] if row["inbox_id"] == inbox_id)


async def lease_holder(store: Store, inbox_id: int) -> str | None:
    async with store.session() as session:
        row = await session.get(Cursor, f"lease:receiver:email:{inbox_id}")
    return row.value if row is not None else None


async def test_one_process_reads_the_mailbox_and_the_other_takes_over_after_sigkill(
    mail_cluster: MailCluster, dovecot: Dovecot
) -> None:
    cluster = mail_cluster
    a, b = cluster.processes

    async def connections() -> list[int]:
        return [imap_connections(process, dovecot.port) for process in (a, b)]

    # Exactly one process connects; the counts stay that way for a few lease renewals.
    counts = await eventually(connections, lambda found: sorted(found) == [0, 1], seconds=20)
    holder, standby = (a, b) if counts == [1, 0] else (b, a)
    for _ in range(6):
        await asyncio.sleep(LEASE_SECONDS / 4)
        assert await connections() == ([1, 0] if holder is a else [0, 1])
    async with httpx.AsyncClient() as http:
        token = cluster.seed.token
        assert len(await eventually(lambda: health_rows(http, holder, token, cluster.inbox_id), bool)) == 1
        assert await health_rows(http, standby, token, cluster.inbox_id) == []
        first_holder = await lease_holder(cluster.store, cluster.inbox_id)
        assert first_holder is not None
        # The admin health page's JSON: the holder reports the mailbox, the standby names the holder.
        here = await status_row(http, holder, token, cluster.inbox_id)
        there = await status_row(http, standby, token, cluster.inbox_id)
        assert here["state"] == "ok" and here["receiver"] == {"holder": first_holder, "this_process": True}
        assert there["state"] == "elsewhere" and there["receiver"] == {"holder": first_holder, "this_process": False}

    await append(dovecot, cluster.user, raw_mail(to=cluster.user, message_id="<before-kill@customer.test>"))
    await eventually(lambda: messages(cluster.store, cluster.inbox_id), lambda rows: len(rows) == 1)

    holder.kill()
    await append(dovecot, cluster.user, raw_mail(to=cluster.user, message_id="<after-kill@customer.test>"))
    stored = await eventually(lambda: messages(cluster.store, cluster.inbox_id), lambda rows: len(rows) >= 2)
    await eventually(lambda: connections(), lambda found: found == ([0, 1] if holder is a else [1, 0]))
    assert await lease_holder(cluster.store, cluster.inbox_id) not in (None, first_holder)

    # One more, through the new holder's IDLE; then nothing is stored twice.
    await append(dovecot, cluster.user, raw_mail(to=cluster.user, message_id="<later@customer.test>"))
    stored = await eventually(lambda: messages(cluster.store, cluster.inbox_id), lambda rows: len(rows) >= 3)
    stored = await messages(cluster.store, cluster.inbox_id)
    assert Counter(row.external_id for row in stored) == Counter(
        {"<before-kill@customer.test>": 1, "<after-kill@customer.test>": 1, "<later@customer.test>": 1}
    )
