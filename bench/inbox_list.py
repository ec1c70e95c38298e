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
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import insert, select, text

from bench.common import add_backend_flags, cpu_pressure, deployment, machine, percentiles, pin_self
from inbox.models import Agent, Contact, Conversation, ConversationLabel, Inbox, InboxMember, Label, Message
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
    for start in range(0, conversations, BATCH):
        count = min(BATCH, conversations - start)
        async with store.engine.begin() as conn:
            base = await conn.scalar(select(text("coalesce(max(id), 0)")).select_from(Contact))
            contacts, rows, messages, tagged = [], [], [], []
            for offset in range(count):
                number = start + offset
                at = now - timedelta(seconds=number * 3 + rng.random())
                contact_id = base + offset + 1
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
                for index in range(messages_per):
                    messages.append(
                        {
                            "conversation_id": contact_id,
                            "inbox_id": inboxes[number % 3],
                            "kind": "incoming" if index % 2 == 0 else "outgoing",
                            "body": f"Message {index} about the {word} of conversation {number}.",
                            "sender_type": "contact" if index % 2 == 0 else "agent",
                            "sender_name": "x",
                            "status": "received" if index % 2 == 0 else "sent",
                            "meta": {},
                            "external_id": f"e{number}-{index}" if index % 2 == 0 else None,
                            "created_at": at - timedelta(minutes=messages_per - index),
                            "updated_at": at,
                        }
                    )
            await conn.execute(insert(Contact), contacts)
            await conn.execute(insert(Conversation), rows)
            if tagged:
                await conn.execute(insert(ConversationLabel), tagged)
            for chunk in range(0, len(messages), 20000):
                await conn.execute(insert(Message), messages[chunk : chunk + 20000])
        done = start + count
        if done % (BATCH * 10) == 0 or done == conversations:
            rate = done / (time.monotonic() - started)
            print(f"  seeded {done} conversations ({rate:.0f}/s)", flush=True)
    async with store.engine.begin() as conn:
        await conn.exec_driver_sql("ANALYZE")
    await store.close()


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
