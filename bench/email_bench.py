"""Email benchmarks: ingest rate (raw bytes → stored: mails/s, CPU per mail, peak RSS) and IDLE freshness
(APPEND → agent event).

Run from the repository root: `.venv/bin/python -m bench.email_bench [--mails 2000] [--appends 30]`.
The ingest corpus is generated (`bench/email_corpus.py`: new mail, replies in three header styles,
auto-replies, bounces, Russian in UTF-8/KOI8-R/windows-1251 with base64/quoted-printable/8bit, attachments).
Uses SQLite in a temporary directory and, for freshness, a throwaway Dovecot (skipped if not installed).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.email_corpus import mixed_corpus
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


async def setup(directory: Path) -> tuple[Store, InboxService, LocalBroker]:
    store = Store(f"sqlite+aiosqlite:///{directory / 'bench.db'}")
    await upgrade(store)
    broker = LocalBroker()
    return store, InboxService(store, broker, BlobStore(directory / "blobs")), broker


@dataclass(frozen=True, slots=True)
class IngestFigures:
    mails: int
    per_second: float
    cpu_ms_per_mail: float  # this process's CPU time (user + system) per mail
    peak_rss_mb: float  # this process's peak resident set size so far
    stored: int  # mails that became messages (the rest: quarantined reports, resends)


async def ingest_rate(count: int, concurrency: int = 1) -> IngestFigures:
    """Ingest the generated corpus `concurrency` mails at a time (1: one after another, like one IMAP reader)."""
    mails = [mail.raw for mail in mixed_corpus(count)]
    with tempfile.TemporaryDirectory() as directory:
        store, service, _ = await setup(Path(directory))
        inbox = inbox_info(await email_inbox(store))
        channel = EmailChannel(CoreHost(store, service), EmailSettings())
        queue = iter(mails)
        stored = 0

        async def worker() -> None:
            nonlocal stored
            for raw in queue:
                delivered = await channel.ingest(inbox, raw)
                stored += 1 if delivered is not None and delivered.created else 0

        cpu, started = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        await store.close()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return IngestFigures(count, count / elapsed, cpu / count * 1000, peak_kb / 1024, stored)


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
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=1, help="mails ingested at a time")
    parser.add_argument("--appends", type=int, default=30, help="0: skip the IDLE freshness run")
    args = parser.parse_args()
    logging.getLogger("channels.email").setLevel(logging.ERROR)  # a quarantined report is a warning each
    figures = await ingest_rate(args.mails, args.concurrency)
    print(
        f"ingest: {figures.mails} mixed mails ({figures.stored} stored as messages), {figures.per_second:.0f} mails/s, "
        f"{figures.cpu_ms_per_mail:.2f} ms CPU per mail, peak RSS {figures.peak_rss_mb:.0f} MB "
        f"(parse + thread + store on SQLite, concurrency {args.concurrency})"
    )
    if args.appends <= 0:
        return
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
