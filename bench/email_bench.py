"""Email benchmarks: ingest rate (raw bytes → stored, mails/s) and IDLE freshness (APPEND → agent event).

Run from the repository root: `.venv/bin/python -m bench.email_bench [--mails 1000] [--appends 30]`.
Uses SQLite in a temporary directory and, for freshness, a throwaway Dovecot (skipped if not installed).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from channels.email import EmailChannel, EmailSettings, MailboxSettings
from inbox.gateway.host import CoreHost
from inbox.gateway.outbox import inbox_info
from inbox.realtime.broker import LocalBroker
from inbox.realtime.events import EventRecord
from inbox.service import InboxService
from inbox.store.blobs import BlobStore
from inbox.store.engine import Store
from inbox.store.migrate import upgrade
from tests.email_helpers import email_inbox, raw_mail
from tests.servers.dovecot import binary, dovecot_server

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "data" / "email"


async def setup(directory: Path) -> tuple[Store, InboxService, LocalBroker]:
    store = Store(f"sqlite+aiosqlite:///{directory / 'bench.db'}")
    await upgrade(store)
    broker = LocalBroker()
    return store, InboxService(store, broker, BlobStore(directory / "blobs")), broker


def corpus(count: int) -> list[bytes]:
    """`count` mails: the fixture files (readable ones) with unique Message-IDs, round robin."""
    samples = []
    for path in sorted(FIXTURES.glob("*.eml")):
        raw = path.read_bytes()
        if path.stem in ("garbage_not_mail", "no_sender") or path.stem.startswith(("dsn", "huge")):
            continue
        samples.append(raw)
    mails = []
    for index in range(count):
        body = samples[index % len(samples)]
        mails.append(
            f"Message-ID: <bench{index}@bench.test>\r\n".encode() + body.replace(b"Message-ID:", b"X-Old-Id:", 1)
        )
    return mails


async def ingest_rate(count: int) -> float:
    with tempfile.TemporaryDirectory() as directory:
        store, service, _ = await setup(Path(directory))
        inbox = inbox_info(await email_inbox(store))
        channel = EmailChannel(CoreHost(store, service), EmailSettings())
        mails = corpus(count)
        started = time.perf_counter()
        for raw in mails:
            await channel.ingest(inbox, raw)
        elapsed = time.perf_counter() - started
        await store.close()
        return count / elapsed


async def idle_freshness(appends: int) -> list[float]:
    from aioimaplib import IMAP4

    user = "bench@example.test"
    with dovecot_server({user: "pw"}) as dovecot, tempfile.TemporaryDirectory() as directory:
        store, service, broker = await setup(Path(directory))
        arrived: dict[str, float] = {}
        signal = asyncio.Event()

        async def on_event(event: EventRecord) -> None:
            if event.type == "message.created":
                arrived[str(event.data.get("external_id"))] = time.perf_counter()
                signal.set()

        async def on_ephemeral(frame: dict[str, object], inbox_id: int | None) -> None:
            return None

        broker.subscribe(on_event, on_ephemeral)
        row = await email_inbox(
            store, address=user, imap_host=dovecot.host, imap_port=dovecot.port, imap_security="plain",
            imap_username=user, imap_password="pw",
        )  # fmt: skip
        inbox = inbox_info(row)
        channel = EmailChannel(CoreHost(store, service), EmailSettings(poll_interval_seconds=3600))
        reader = channel.reader(inbox, MailboxSettings.from_inbox(inbox.settings))
        task = asyncio.create_task(reader.run())
        client = IMAP4(dovecot.host, dovecot.port)
        await client.wait_hello_from_server()
        await client.login(user, "pw")
        latencies = []
        try:
            for index in range(appends):
                await asyncio.wait_for(reader.idle_active.wait(), 10)
                message_id = f"<fresh{index}@bench.test>"
                signal.clear()
                started = time.perf_counter()
                await client.append(raw_mail(to=user, message_id=message_id), mailbox="INBOX")
                while message_id not in arrived:
                    await asyncio.wait_for(signal.wait(), 30)
                    signal.clear()
                latencies.append(arrived[message_id] - started)
        finally:
            await client.logout()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await store.close()
        return latencies


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--appends", type=int, default=30)
    args = parser.parse_args()
    rate = await ingest_rate(args.mails)
    print(f"ingest: {args.mails} mails, {rate:.0f} mails/s (parse + thread + store on SQLite)")
    if binary() is None:
        print("idle freshness: skipped (dovecot not installed)")
        return
    latencies = sorted(await idle_freshness(args.appends))
    p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)]
    print(
        f"idle freshness: {len(latencies)} APPENDs, median {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms (APPEND → message.created event)"
    )


if __name__ == "__main__":
    asyncio.run(main())
