"""Inbox list at depth: seeds conversations and messages with a bulk path (SQLAlchemy Core executemany,
not the API), then measures `GET /api/v1/conversations` over real HTTP — first page, and pages deep in the
list reached by cursor — for several filters, with the number of SQL statements each page cost.

`--scale 1` is the issue's size: 1M conversations and 10M messages. Statement counts come from a bench-only
middleware (`bench.serve` with SB_BENCH_COUNT_SQL=1) that counts the engine's statements per request; the
requests are sent one at a time so the count is exact up to the app's own timers (take the mode).

    .venv/bin/python -m bench.inbox_list --backend sqlite --scale 0.1
    .venv/bin/python -m bench.inbox_list --backend postgres --scale 0.1
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import sqlite3
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from sqlalchemy import JSON, insert, text
from sqlalchemy.engine import make_url

from bench.common import add_backend_flags, cpu_pressure, deployment, machine, percentiles, pin_self
from inbox.models import Agent, Contact, Conversation, ConversationLabel, Inbox, InboxMember, Label
from inbox.store import Store

BATCH = 5000
STATUSES = ["open"] * 40 + ["pending"] * 10 + ["snoozed"] * 5 + ["resolved"] * 45
WORDS = [
    "order",
    "refund",
    "delivery",
    "invoice",
    "password",
    "login",
    "shipping",
    "broken",
    "replace",
    "account",
    "upgrade",
    "cancel",
]


async def seed(db_url: str, conversations: int, messages_per: int, agent_id: int, inbox_id: int) -> None:
    """Bulk rows: contacts, conversations over 3 inboxes, statuses, assignees, labels, messages."""
    store = Store(db_url)
    rng = random.Random(7)
    started = time.monotonic()
    async with store.engine.begin() as conn:
        inboxes = [inbox_id]
        for number in range(2):
            result = await conn.execute(
                insert(Inbox).values(
                    name=f"Inbox {number}",
                    channel="api",
                    settings={},
                    public_key=f"k{number}",
                    secret="s",
                    created_at=datetime.now(UTC),
                )
            )
            inboxes.append(result.inserted_primary_key[0])
        agents = [agent_id]
        for number in range(19):
            result = await conn.execute(
                insert(Agent).values(
                    email=f"agent{number}@example.test",
                    name=f"Agent {number}",
                    role="agent",
                    password_hash="",
                    availability="online",
                    session_version=0,
                    active=True,
                    created_at=datetime.now(UTC),
                )
            )
            agents.append(result.inserted_primary_key[0])
        await conn.execute(insert(InboxMember), [{"inbox_id": i, "agent_id": a} for i in inboxes for a in agents[1:]])
        labels = []
        for name in ("billing", "bug", "vip", "feedback"):
            result = await conn.execute(insert(Label).values(name=name, color="#888", description=""))
            labels.append(result.inserted_primary_key[0])
    now = datetime.now(UTC)
    async with store.engine.connect() as conn:
        base = int(await conn.scalar(text("SELECT coalesce(max(id), 0) FROM contact")) or 0)
        base = max(base, int(await conn.scalar(text("SELECT coalesce(max(id), 0) FROM conversation")) or 0))
    writer = await BulkWriter.open(store)
    for start in range(0, conversations, BATCH):
        count = min(BATCH, conversations - start)
        contacts, rows, tagged = [], [], []
        for offset in range(count):
            number = start + offset
            at = now - timedelta(seconds=number * 3 + rng.random())
            contact_id = base + number + 1
            word = rng.choice(WORDS)
            contacts.append(
                {
                    "id": contact_id,
                    "name": f"Customer {number}",
                    "email": f"c{number}@example.test",
                    "attributes": {},
                    "created_at": at,
                    "updated_at": at,
                }
            )
            status = rng.choice(STATUSES)
            rows.append(
                {
                    "id": contact_id,
                    "inbox_id": inboxes[number % 3],
                    "contact_id": contact_id,
                    "thread_key": f"sender:{number}",
                    "status": status,
                    "assignee_id": rng.choice(agents) if rng.random() < 0.7 else None,
                    "subject": f"Question about my {word} #{number}",
                    "preview": f"Hi, my {word} is not right",
                    "snoozed_until": at + timedelta(days=30) if status == "snoozed" else None,
                    "unread_count": 1,
                    "created_at": at,
                    "updated_at": at,
                    "last_activity_at": at,
                    "last_incoming_at": at,
                }
            )
            if rng.random() < 0.2:
                tagged.append({"conversation_id": contact_id, "label_id": rng.choice(labels)})
        await writer.write([(Contact, contacts), (Conversation, rows), (ConversationLabel, tagged)])
        done = start + count
        if done % (BATCH * 20) == 0 or done == conversations:
            rate = done / (time.monotonic() - started)
            print(f"  seeded {done} conversations ({rate:.0f}/s)", flush=True)
    await writer.close()
    # Messages (10 per conversation at scale 1: 10M rows) are generated by the database itself from the
    # conversations, in slices so progress shows: far faster than shipping them from Python.
    last = base + conversations
    for low in range(base, last, MESSAGE_SLICE):
        async with store.engine.begin() as conn:
            await conn.execute(
                text(message_sql(store.is_sqlite)),
                {"low": low, "high": min(last, low + MESSAGE_SLICE), "per": messages_per},
            )
        done = min(last, low + MESSAGE_SLICE) - base
        if done % (MESSAGE_SLICE * 4) == 0 or done == conversations:
            print(f"  messages for {done} conversations ({time.monotonic() - started:.0f} s)", flush=True)
    async with store.engine.begin() as conn:
        if not store.is_sqlite:
            for table in ("contact", "conversation"):
                await conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                )
        await conn.exec_driver_sql("ANALYZE")
    await store.close()


MESSAGE_SLICE = 50_000


def message_sql(sqlite: bool) -> str:
    """INSERT … SELECT of `:per` messages for each conversation with :low < id <= :high: alternately incoming
    (with an external id) and outgoing, one minute apart, the last one at the conversation's activity."""
    if sqlite:
        numbers = "WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n + 1 < :per)"
        at = "strftime('%Y-%m-%d %H:%M:%f', c.last_activity_at, '-' || (:per - k.n) || ' minutes') || '000'"
        meta = "'{}'"
        source = "k"
    else:
        numbers = ""
        at = "c.last_activity_at - (:per - k.n) * interval '1 minute'"
        meta = "'{}'::json"
        source = "generate_series(0, :per - 1) AS k(n)"
    return f"""{numbers}
INSERT INTO message (conversation_id, inbox_id, kind, body, sender_type, sender_name, status, meta,
                     external_id, created_at, updated_at)
SELECT c.id, c.inbox_id,
       CASE WHEN k.n % 2 = 0 THEN 'incoming' ELSE 'outgoing' END,
       'Message ' || k.n || ' about conversation ' || c.id || ': ' || c.preview,
       CASE WHEN k.n % 2 = 0 THEN 'contact' ELSE 'agent' END,
       'x',
       CASE WHEN k.n % 2 = 0 THEN 'received' ELSE 'sent' END,
       {meta},
       CASE WHEN k.n % 2 = 0 THEN 'e' || c.id || '-' || k.n END,
       {at}, c.last_activity_at
FROM conversation c CROSS JOIN {source}
WHERE c.id > :low AND c.id <= :high
ORDER BY c.id, k.n"""


class BulkWriter:
    """The fast path: rows straight to the driver, one transaction per batch — `executemany` on a plain
    `sqlite3` connection (in a thread), `COPY` through asyncpg on PostgreSQL. Values are converted with the
    columns' own SQLAlchemy bind processors, so they are stored exactly as the app would store them."""

    def __init__(self, store: Store, raw: Any) -> None:
        self.store = store
        self.raw = raw

    @classmethod
    async def open(cls, store: Store) -> BulkWriter:
        if store.is_sqlite:
            path = make_url(store.url).database
            assert path
            raw = await asyncio.to_thread(sqlite3.connect, path, check_same_thread=False)
            raw.execute("PRAGMA journal_mode=WAL")
            raw.execute("PRAGMA synchronous=OFF")
            return cls(store, raw)
        dsn = make_url(store.url).set(drivername="postgresql").render_as_string(hide_password=False)
        return cls(store, await asyncpg.connect(dsn))

    def _tuples(self, model: Any, rows: list[dict[str, Any]]) -> tuple[list[str], list[tuple[Any, ...]]]:
        table = model.__table__
        columns = list(rows[0])
        converters = []
        for name in columns:
            column_type = table.c[name].type
            if self.store.is_sqlite:
                converters.append(column_type.bind_processor(self.store.engine.dialect))
            elif isinstance(column_type, JSON):
                converters.append(json.dumps)
            else:
                converters.append(None)
        out = []
        for row in rows:
            out.append(
                tuple(
                    value if convert is None or value is None else convert(value)
                    for convert, value in zip(converters, (row[name] for name in columns), strict=True)
                )
            )
        return columns, out

    async def write(self, batches: list[tuple[Any, list[dict[str, Any]]]]) -> None:
        prepared = [(model.__tablename__, *self._tuples(model, rows)) for model, rows in batches if rows]
        if self.store.is_sqlite:
            await asyncio.to_thread(self._write_sqlite, prepared)
            return
        async with self.raw.transaction():
            for table, columns, records in prepared:
                await self.raw.copy_records_to_table(table, records=records, columns=columns)

    def _write_sqlite(self, prepared: list[tuple[str, list[str], list[tuple[Any, ...]]]]) -> None:
        with self.raw:
            for table, columns, records in prepared:
                marks = ", ".join("?" for _ in columns)
                self.raw.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", records)

    async def close(self) -> None:
        if self.store.is_sqlite:
            self.raw.close()
        else:
            await self.raw.close()


def cursor_at(activity: datetime, conversation_id: int) -> str:
    raw = json.dumps([activity.isoformat(), conversation_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def depth_cursor(db_url: str, where: str, depth: int) -> str | None:
    """The cursor that continues after the `depth`-th row of a filter (found with OFFSET by the bench)."""
    store = Store(db_url)
    async with store.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    f"SELECT last_activity_at, id FROM conversation {where} "
                    "ORDER BY last_activity_at DESC, id DESC LIMIT 1 OFFSET :depth"
                ),
                {"depth": depth},
            )
        ).first()
    await store.close()
    if row is None:
        return None
    activity = row[0]
    if isinstance(activity, str):
        activity = datetime.fromisoformat(activity)
    if activity.tzinfo is None:
        activity = activity.replace(tzinfo=UTC)
    return cursor_at(activity, int(row[1]))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_backend_flags(parser)
    parser.add_argument("--client-cores", default="1")
    parser.add_argument("--scale", type=float, default=0.1, help="1.0 = 1M conversations, 10M messages")
    parser.add_argument("--messages-per-conversation", type=int, default=10)
    parser.add_argument("--requests", type=int, default=200, help="requests per (filter, depth)")
    args = parser.parse_args()
    pin_self(args.client_cores)
    conversations = int(1_000_000 * args.scale)
    os.environ["SB_BENCH_COUNT_SQL"] = "1"
    print(f"# inbox_list · {args.backend} · scale {args.scale} · machine: {machine()}", flush=True)

    async def prepare(db_url: str, agent_id: int, inbox_id: int) -> None:
        started = time.monotonic()
        await seed(db_url, conversations, args.messages_per_conversation, agent_id, inbox_id)
        total = conversations * (1 + args.messages_per_conversation)
        print(
            f"# seeded {conversations} conversations + {conversations * args.messages_per_conversation} messages"
            f" in {time.monotonic() - started:.0f} s ({total / (time.monotonic() - started):.0f} rows/s)",
            flush=True,
        )

    async with deployment(args.backend, args.server_cores, prepare=prepare) as found:
        server = found.servers[0]
        token = found.seed.token
        inbox = found.seed.inbox_id
        filters: list[tuple[str, str, str]] = [
            ("all", "", ""),
            ("status=open", "status=open", "WHERE status = 'open'"),
            ("inbox+open", f"inbox_id={inbox}&status=open", f"WHERE inbox_id = {inbox} AND status = 'open'"),
            ("assignee=me", "assignee=me", f"WHERE assignee_id = {found.seed.agent_id}"),
            ("label=vip", "label=vip", ""),
            ("q=refund", "q=refund", ""),
        ]
        depths = [0, conversations // 10, conversations // 2, int(conversations * 0.9)]
        results = []
        async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http:
            probe = await http.get("/api/v1/conversations", params={"limit": 25})
            if probe.status_code != 200:
                raise SystemExit(f"GET /api/v1/conversations answered {probe.status_code}: {probe.text[:300]}")
            for name, query, where in filters:
                for depth in depths:
                    if depth and not where and name != "all":
                        continue  # deep cursors are computed for the plain column filters only
                    cursor = await depth_cursor(found.db_url, where, depth) if depth else None
                    if depth and cursor is None:
                        continue
                    url = "/api/v1/conversations?limit=25" + (f"&{query}" if query else "")
                    if cursor:
                        url += f"&cursor={cursor}"
                    timings, counts, items = [], Counter(), 0
                    for _ in range(args.requests):
                        started = time.perf_counter()
                        response = await http.get(url)
                        timings.append((time.perf_counter() - started) * 1000)
                        if response.status_code != 200:
                            raise SystemExit(f"{url}: {response.status_code} {response.text[:300]}")
                        counts[int(response.headers.get("x-sql-count", "-1"))] += 1
                        items = len(response.json()["items"])
                    result = {
                        "filter": name,
                        "depth": depth,
                        "items": items,
                        "ms": {k: round(v, 2) for k, v in percentiles(timings).items()},
                        "mean_ms": round(statistics.fmean(timings), 2),
                        "sql_statements_per_page": counts.most_common(1)[0][0],
                    }
                    results.append(result)
                    print(json.dumps(result), flush=True)
    print(f"# done · load average now {os.getloadavg()[0]:.2f} · {cpu_pressure()}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
