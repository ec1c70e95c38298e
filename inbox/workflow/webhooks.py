"""Outgoing event webhooks: events of the log POSTed to the URLs admins subscribed, signed, retried, logged.

Signed like the API channel (`channels/api.py`): `X-Switchboard-Signature: sha256=<hex>` of HMAC-SHA256 over
`"<timestamp>." + raw body` with the webhook's secret, `X-Switchboard-Timestamp` (Unix seconds) and
`X-Switchboard-Delivery`, the delivery's id, the same on every attempt (receivers drop repeats by it).

    POST <url>   {"id": "<delivery id>", "event": "conversation.created", "event_id": 41,
                  "created_at": "2026-…Z", "data": {…the event's data…}}

Durable: each (event, webhook) is a `WebhookDelivery` row, written in the same transaction as the worker's
cursor over the log (`Cursor` row `workflow:webhooks:events`; a new install starts at the log's end), so a
restart neither loses nor doubles one. 2xx delivers; 429, 5xx, timeouts and connection errors are retried
with backoff (`backoff`: 10 s doubling to 1 h) up to `MAX_ATTEMPTS`; other answers fail at once. Each attempt
leaves the status, response code and error on the row: the delivery log, kept for 30 days (`KEEP`). Rules queue calls the same way
(`InboxService.run_actions`, event `automation.called`).

One process of the cluster runs the worker (app.py holds the `timer:webhooks` lease). This module writes only
its own tables and cursor, never conversation data.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import httpx
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox.clock import iso, utcnow
from inbox.realtime import events
from inbox.realtime.events import EventRecord, EventType
from inbox.service import InboxService
from inbox.store.models import Cursor, Webhook, WebhookDelivery, key

log = logging.getLogger(__name__)

CURSOR = "workflow:webhooks:events"
BATCH = 500
DUE_BATCH = 50
MAX_ATTEMPTS = 8
BASE_DELAY = 10.0
MAX_DELAY = 3600.0
KEEP = timedelta(days=30)  # finished deliveries (they hold event data: names, messages) are kept this long
PRUNE_EVERY = timedelta(hours=1)
EVENT_TYPES = tuple(str(kind) for kind in EventType)
USER_AGENT = "Switchboard-Webhook/1"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


# ── pure ────────────────────────────────────────────────────────────────────────────────────
def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over `timestamp + "." + body` (as the API channel signs)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: 10 s, 20 s, 40 s … at most an hour."""
    return timedelta(seconds=min(MAX_DELAY, BASE_DELAY * 2 ** max(0, attempts - 1)))


def payload_of(record: EventRecord, delivery_id: str) -> dict[str, Any]:
    return {
        "id": delivery_id,
        "event": record.type,
        "event_id": record.id,
        "created_at": record.created_at,
        "data": record.data,
    }


def outcome(status_code: int | None) -> str:
    """What an answer means: delivered, retry (429, 5xx, no answer) or failed (other 4xx, 3xx)."""
    if status_code is None or status_code == 429 or status_code >= 500:
        return "retry"
    return "delivered" if 200 <= status_code < 300 else "failed"


def describe(row: WebhookDelivery) -> dict[str, Any]:
    """A delivery as the log shows it."""
    return {
        "id": row.id,
        "webhook_id": row.webhook_id,
        "delivery_id": row.delivery_id,
        "event_type": row.event_type,
        "event_id": row.event_id,
        "status": row.status,
        "attempts": row.attempts,
        "response_code": row.response_code,
        "last_error": row.last_error,
        "next_attempt_at": iso(row.next_attempt_at) if row.status == DeliveryStatus.PENDING else None,
        "created_at": iso(row.created_at),
        "delivered_at": iso(row.delivered_at),
    }


# ── the worker ──────────────────────────────────────────────────────────────────────────────
class WebhookWorker:
    """Turns events into deliveries and sends the due ones; `run` loops until cancelled."""

    def __init__(
        self,
        service: InboxService,
        *,
        interval_seconds: float = 1.0,
        timeout_seconds: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = service.store
        self.interval = interval_seconds
        self.timeout = timeout_seconds
        self.clock = clock
        self._client: httpx.AsyncClient | None = None
        self._wake = asyncio.Event()
        self._pruned: datetime | None = None

    async def on_event(self, event: EventRecord) -> None:
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                self._wake.clear()
                try:
                    await self.tick()
                except Exception:
                    log.exception("webhooks: a pass failed; trying again")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.interval)
        finally:
            await self.close()

    async def tick(self) -> int:
        """Queue deliveries for new events, then send what is due; answers how many attempts were made."""
        while await self.follow_events() == BATCH:
            pass
        now = self.clock()
        if self._pruned is None or now - self._pruned >= PRUNE_EVERY:
            await self.prune(now)
            self._pruned = now
        return await self.deliver_due(now)

    async def prune(self, now: datetime) -> int:
        """Delete delivered and failed deliveries older than `KEEP`; answers how many."""
        async with self.store.transaction() as tx:
            result: Any = await tx.execute(
                delete(WebhookDelivery).where(
                    col(WebhookDelivery.status) != DeliveryStatus.PENDING, col(WebhookDelivery.created_at) < now - KEEP
                )
            )
        return int(result.rowcount or 0)

    async def follow_events(self) -> int:
        async with self.store.session() as session:
            mark = await session.get(Cursor, CURSOR)
            after = int(mark.value) if mark is not None else None
            records = [] if after is None else await events.after(session, after, limit=BATCH)
            latest = await events.latest_id(session) if after is None else 0
        if after is None:
            async with self.store.transaction() as tx:
                await _cursor(tx, latest)
            return 0
        if not records:
            return 0
        now = self.clock()
        async with self.store.transaction() as tx:
            hooks = list((await tx.execute(select(Webhook).where(col(Webhook.enabled)))).scalars())
            for record in records:
                for hook in hooks:
                    if record.type in hook.event_types:
                        delivery_id = str(uuid.uuid4())
                        tx.add(
                            WebhookDelivery(
                                webhook_id=key(hook),
                                delivery_id=delivery_id,
                                event_type=record.type,
                                event_id=record.id,
                                payload=payload_of(record, delivery_id),
                                next_attempt_at=now,
                                created_at=now,
                            )
                        )
            await _cursor(tx, records[-1].id)
        return len(records)

    async def deliver_due(self, now: datetime) -> int:
        """One attempt for each pending delivery due at `now` (oldest first)."""
        async with self.store.session() as session:
            due = list(
                (
                    await session.execute(
                        select(WebhookDelivery, Webhook)
                        .join(Webhook, col(Webhook.id) == WebhookDelivery.webhook_id)
                        .where(
                            col(WebhookDelivery.status) == DeliveryStatus.PENDING,
                            col(WebhookDelivery.next_attempt_at) <= now,
                        )
                        .order_by(col(WebhookDelivery.next_attempt_at), col(WebhookDelivery.id))
                        .limit(DUE_BATCH)
                    )
                ).all()
            )
        for delivery, hook in due:
            await self.attempt(delivery, hook, now)
        return len(due)

    async def attempt(self, delivery: WebhookDelivery, hook: Webhook, now: datetime) -> str:
        """POST one delivery once and record the result; answers its status afterwards."""
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "content-type": "application/json",
            "x-switchboard-timestamp": timestamp,
            "x-switchboard-signature": sign(hook.secret, timestamp, body),
            "x-switchboard-delivery": delivery.delivery_id,
            "x-switchboard-event": delivery.event_type,
            "user-agent": USER_AGENT,
        }
        code: int | None = None
        error: str | None = None
        try:
            response = await self._http().post(hook.url, content=body, headers=headers)
            code = response.status_code
            if code >= 300:
                excerpt = response.text[:200].strip()
                error = f"answered {code}" + (f": {excerpt}" if excerpt else "")
        except httpx.HTTPError as exc:
            error = f"unreachable: {type(exc).__name__}: {exc}"[:500]
        result = outcome(code)
        async with self.store.transaction() as tx:
            row = await tx.get(WebhookDelivery, delivery.id)
            if row is None:  # the webhook was deleted meanwhile
                return DeliveryStatus.FAILED
            row.attempts += 1
            row.response_code = code
            row.last_error = error
            if result == "delivered":
                row.status, row.delivered_at = DeliveryStatus.DELIVERED, now
            elif result == "retry" and row.attempts < MAX_ATTEMPTS:
                row.next_attempt_at = now + backoff(row.attempts)
            else:
                row.status = DeliveryStatus.FAILED
            status = row.status
        if status != DeliveryStatus.DELIVERED:
            log.info("webhook %s delivery %s: %s (%s)", hook.id, delivery.delivery_id, status, error)
        return status

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


async def _cursor(tx: AsyncSession, value: int) -> None:
    mark = await tx.get(Cursor, CURSOR)
    if mark is None:
        tx.add(Cursor(key=CURSOR, value=str(value)))
    else:
        mark.value = str(value)
        mark.updated_at = utcnow()
