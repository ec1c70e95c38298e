"""HTTP API: the admin channel-health overview — every inbox with its channel's health and backlog.

One row per inbox: a `state` (ok | failing | starting | elsewhere | idle | misconfigured: its stored settings
no longer pass its channel's check, so no receiver runs and `last_error` says which key), last successful fetch and send,
last error with its time, failing since, the IMAP backlog (mails found and not stored yet), the outbox
backlog (replies `queued` and `retrying`), the quarantined count, and which process runs its receiver.
In a cluster each receiver runs in the one process holding its lease (`receiver:<channel>:<inbox id>`):
health is kept by that process, so another process answers `elsewhere` with the holder's name. The agents'
own view is `GET /api/v1/channels/health` (inbox.api.health); the admin page `/settings/health` polls this.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response

from channels.base import ChannelHealth, HealthReporting
from inbox.api.health import FAILING_AFTER
from inbox.clock import utcnow
from inbox.gateway.quarantine import Quarantine
from inbox.http.routing import Api, admin, json
from inbox.http.services import services
from inbox.store.engine import Store
from inbox.store.lease import PREFIX, Leases
from inbox.store.models import Cursor, Inbox, Message, Outbox

api = Api()
RECEIVER = "receiver:"


def state_of(health: ChannelHealth | None, *, here: bool, holder: str | None) -> str:
    """One word for the admin: what the receiver of this inbox is doing, seen from this process."""
    if health is not None and health.failing_since is not None:
        return "failing"
    if health is not None and (health.last_fetch_at or health.last_send_at):
        return "ok"
    if holder is not None and not here:
        return "elsewhere"
    if here:
        return "starting"
    return "idle"


async def outbox_backlog(store: Store) -> dict[int, dict[str, int]]:
    """Inbox id → replies waiting in the outbox: `queued` (not tried yet) and `retrying` (tried and failed)."""
    retrying = col(Outbox.last_error).is_not(None)
    query = (
        select(col(Message.inbox_id), retrying, func.count())
        .join(Message, col(Message.id) == col(Outbox.message_id))
        .where(col(Outbox.done) == False)  # noqa: E712
        .group_by(col(Message.inbox_id), retrying)
    )
    found: dict[int, dict[str, int]] = {}
    async with store.session() as session:
        for inbox_id, is_retrying, count in (await session.execute(query)).all():
            found.setdefault(int(inbox_id), {"queued": 0, "retrying": 0})["retrying" if is_retrying else "queued"] = (
                int(count)
            )
    return found


async def receiver_holders(store: Store, leases: Leases) -> dict[str, str]:
    """`<channel>:<inbox id>` → the process holding that receiver's lease (expired leases left out)."""
    stale = utcnow() - timedelta(seconds=leases.ttl)
    query = select(Cursor).where(col(Cursor.key).startswith(PREFIX + RECEIVER), col(Cursor.updated_at) >= stale)
    async with store.session() as session:
        rows = (await session.execute(query)).scalars()
        return {row.key.removeprefix(PREFIX + RECEIVER): row.value for row in rows}


@api.route(
    "GET",
    "/api/v1/channels/status",
    summary="Every inbox with its channel health and backlog",
    tag="channels",
    auth="admin",
)
async def channel_status(request: Request) -> Response:
    await admin(request)
    state = services(request)
    store: Store = state.store
    leases: Leases = state.leases
    async with store.session() as session:
        inboxes = list((await session.execute(select(Inbox).order_by(col(Inbox.id)))).scalars())
    health: dict[tuple[str, int], ChannelHealth] = {}
    for name, channel in state.channels.items():
        if isinstance(channel, HealthReporting):
            for row in channel.health():
                health[(name, row.inbox_id)] = row
    backlog = await outbox_backlog(store)
    holders = await receiver_holders(store, leases)
    quarantine: Quarantine = state.host.quarantined
    held = await quarantine.counts()
    now = time.time()
    misconfigured: dict[tuple[str, int], str] = state.runners.misconfigured
    items: list[dict[str, Any]] = []
    for inbox in inboxes:
        assert inbox.id is not None
        found = health.get((inbox.channel, inbox.id))
        holder = holders.get(f"{inbox.channel}:{inbox.id}")
        here = holder == leases.owner
        since = found.failing_since if found else None
        refused = misconfigured.get((inbox.channel, inbox.id))
        items.append(
            {
                "inbox_id": inbox.id,
                "inbox_name": inbox.name,
                "channel": inbox.channel,
                "state": "misconfigured" if refused else state_of(found, here=here, holder=holder),
                "last_fetch_at": found.last_fetch_at if found else None,
                "last_send_at": found.last_send_at if found else None,
                "last_error": refused or (found.last_error if found else None),
                "last_error_at": found.last_error_at if found else None,
                "failing_since": since,
                "failing": since is not None and now - since >= FAILING_AFTER,
                "fetch_backlog": found.backlog if found else 0,
                "outbox": backlog.get(inbox.id, {"queued": 0, "retrying": 0}),
                "quarantined": held.get(inbox.id, 0),
                "receiver": {"holder": holder, "this_process": here},
            }
        )
    return json({"items": items, "process": leases.owner, "now": now, "failing_after_seconds": FAILING_AFTER})
