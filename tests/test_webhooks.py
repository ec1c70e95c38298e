"""Outgoing event webhooks (`inbox.workflow.webhooks`) against a real local receiver (a tiny Starlette app under
uvicorn on 127.0.0.1): the signature over timestamp and raw body, retries after a 5xx with backoff on a
controlled clock and the same delivery id, permanent failure on a 4xx, the delivery log and a retry over HTTP,
a rule calling a webhook, and the admin API's validation."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from sqlmodel import col, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inbox.service import InboxService
from inbox.store.engine import Store
from inbox.store.models import AutomationRule, Webhook, WebhookDelivery
from inbox.workflow import webhooks
from inbox.workflow.rules import RuleEngine
from inbox.workflow.webhooks import WebhookWorker, backoff, outcome
from tests.factories import inbound, make_inbox
from tests.people import People, make_people
from tests.poll import eventually
from tests.servers.app import LiveServer

SECRET = "s3cret-for-tests"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    answers: list[int] = field(default_factory=list)  # status codes to answer, in order; then 200
    received: list[Received] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver(url="")

    async def hook(request: Request) -> Response:
        found.received.append(Received(dict(request.headers), await request.body()))
        status = found.answers.pop(0) if found.answers else 200
        return Response("boom" if status >= 500 else "ok", status_code=status)

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    found.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield found
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task


def verify(item: Received, secret: str = SECRET) -> dict[str, Any]:
    """Check the signature as a receiver would, and answer the JSON body."""
    timestamp = item.headers["x-switchboard-timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + item.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(item.headers["x-switchboard-signature"], f"sha256={expected}")
    data: dict[str, Any] = json.loads(item.body)
    return data


async def add_webhook(store: Store, url: str, types: list[str], **extra: Any) -> int:
    async with store.transaction() as tx:
        row = Webhook(url=url, event_types=types, secret=SECRET, **extra)
        tx.add(row)
        await tx.flush()
        assert row.id is not None
        return row.id


async def deliveries(store: Store) -> list[WebhookDelivery]:
    async with store.session() as session:
        return list((await session.execute(select(WebhookDelivery).order_by(col(WebhookDelivery.id)))).scalars())


def test_backoff_and_outcomes() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 10, 20)] == [10, 20, 40, 3600, 3600]
    assert [outcome(code) for code in (200, 204, 301, 400, 404, 429, 500, 503, None)] == [
        "delivered",
        "delivered",
        "failed",
        "failed",
        "failed",
        "retry",
        "retry",
        "retry",
        "retry",
    ]


async def test_signed_delivery_retried_after_a_5xx_with_the_same_id(
    store: Store, service: InboxService, receiver: Receiver
) -> None:
    inbox = await make_inbox(store)
    await add_webhook(store, receiver.url, ["conversation.created"])
    await add_webhook(store, receiver.url, ["sla.breached"])  # subscribed to something else: gets nothing
    now = datetime.now(UTC)
    clock = [now]
    worker = WebhookWorker(service, clock=lambda: clock[0])
    await worker.tick()  # a new install starts at the end of the log
    delivered = await service.deliver(inbound(inbox))
    receiver.answers = [503]
    assert await worker.tick() == 1
    (row,) = await deliveries(store)
    assert (row.status, row.attempts, row.response_code) == ("pending", 1, 503)
    assert row.last_error == "answered 503: boom"
    assert row.next_attempt_at == now + timedelta(seconds=10)
    clock[0] = now + timedelta(seconds=9)
    assert await worker.tick() == 0  # not due yet
    clock[0] = now + timedelta(seconds=10)
    assert await worker.tick() == 1
    (row,) = await deliveries(store)
    assert (row.status, row.attempts, row.response_code, row.delivered_at) == ("delivered", 2, 200, clock[0])
    first, second = receiver.received
    assert first.headers["x-switchboard-delivery"] == second.headers["x-switchboard-delivery"] == row.delivery_id
    assert first.body == second.body
    body = verify(second)
    assert (body["id"], body["event"]) == (row.delivery_id, "conversation.created")
    assert body["data"]["id"] == delivered.conversation_id
    assert second.headers["x-switchboard-event"] == "conversation.created"
    with pytest.raises(AssertionError):
        verify(second, secret="wrong")
    assert await worker.tick() == 0
    await worker.close()


async def test_a_4xx_fails_at_once_and_retries_stop_after_the_limit(
    store: Store, service: InboxService, receiver: Receiver
) -> None:
    inbox = await make_inbox(store)
    await add_webhook(store, receiver.url, ["conversation.created"])
    now = datetime.now(UTC)
    clock = [now]
    worker = WebhookWorker(service, clock=lambda: clock[0])
    await worker.tick()
    await service.deliver(inbound(inbox, "m1", sender="a"))
    receiver.answers = [410]
    await worker.tick()
    (gone,) = await deliveries(store)
    assert (gone.status, gone.attempts, gone.response_code) == ("failed", 1, 410)
    await service.deliver(inbound(inbox, "m2", sender="b"))
    receiver.answers = [500] * webhooks.MAX_ATTEMPTS
    for _ in range(webhooks.MAX_ATTEMPTS):
        await worker.tick()
        clock[0] += timedelta(hours=1)
    _, broken = await deliveries(store)
    assert (broken.status, broken.attempts, broken.response_code) == ("failed", webhooks.MAX_ATTEMPTS, 500)
    assert len(receiver.received) == 1 + webhooks.MAX_ATTEMPTS
    await worker.close()


async def test_finished_deliveries_are_pruned_after_thirty_days(
    store: Store, service: InboxService, receiver: Receiver
) -> None:
    inbox = await make_inbox(store)
    await add_webhook(store, receiver.url, ["conversation.created"])
    now = datetime.now(UTC)
    clock = [now]
    worker = WebhookWorker(service, clock=lambda: clock[0])
    await worker.tick()
    await service.deliver(inbound(inbox, "m1", sender="a"))
    await worker.tick()
    receiver.answers = [500]
    await service.deliver(inbound(inbox, "m2", sender="b"))
    await worker.follow_events()
    async with store.transaction() as tx:  # the second one is still waiting for its first attempt
        for row in (await tx.execute(select(WebhookDelivery))).scalars():
            row.next_attempt_at = now + timedelta(days=60)
    assert [row.status for row in await deliveries(store)] == ["delivered", "pending"]
    assert await worker.prune(now + timedelta(days=29)) == 0
    assert await worker.prune(now + timedelta(days=31)) == 1
    assert [row.status for row in await deliveries(store)] == ["pending"]
    await worker.close()


async def test_an_unreachable_receiver_is_retried(store: Store, service: InboxService) -> None:
    inbox = await make_inbox(store)
    await add_webhook(store, "http://127.0.0.1:9/nothing-listens", ["conversation.created"])
    worker = WebhookWorker(service, timeout_seconds=2.0)
    await worker.tick()
    await service.deliver(inbound(inbox))
    await worker.tick()
    (row,) = await deliveries(store)
    assert (row.status, row.attempts, row.response_code) == ("pending", 1, None)
    assert row.last_error is not None and row.last_error.startswith("unreachable: ConnectError")
    await worker.close()


async def test_disabled_webhooks_get_nothing(store: Store, service: InboxService, receiver: Receiver) -> None:
    inbox = await make_inbox(store)
    await add_webhook(store, receiver.url, ["conversation.created"], enabled=False)
    worker = WebhookWorker(service)
    await worker.tick()
    await service.deliver(inbound(inbox))
    await worker.tick()
    assert await deliveries(store) == [] and receiver.received == []
    await worker.close()


async def test_a_rule_calls_a_webhook(store: Store, service: InboxService, receiver: Receiver) -> None:
    inbox = await make_inbox(store)
    hook_id = await add_webhook(store, receiver.url, ["sla.breached"])
    async with store.transaction() as tx:
        tx.add(
            AutomationRule(
                name="Tell the CRM",
                trigger="conversation_created",
                actions=[{"type": "call_webhook", "webhook_id": hook_id}],
            )
        )
    engine = RuleEngine(service)
    worker = WebhookWorker(service)
    await engine.tick()
    await worker.tick()
    delivered = await service.deliver(inbound(inbox))
    await engine.tick()
    await worker.tick()
    (item,) = receiver.received
    body = verify(item)
    assert body["event"] == "automation.called"
    assert body["data"]["automation"]["rule_id"] == 1
    assert body["data"]["conversation"]["id"] == delivered.conversation_id
    await worker.close()


# ── over HTTP ───────────────────────────────────────────────────────────────────────────────
@pytest.fixture
async def people(server: LiveServer) -> AsyncIterator[People]:
    found = await make_people(server)
    yield found
    await found.admin.aclose()
    await found.agent.aclose()


def error(response: httpx.Response) -> str:
    detail: str = response.json()["error"]["detail"]
    return detail


async def test_webhook_api_and_delivery_log(server: LiveServer, people: People, receiver: Receiver) -> None:
    created = await people.admin.post(
        "/api/v1/webhooks", json={"url": receiver.url, "event_types": ["conversation.created", "message.created"]}
    )
    assert created.status_code == 201, created.text
    hook = created.json()
    secret = hook["secret"]
    assert len(secret) >= 32
    hook_id = hook["id"]
    shown = (await people.admin.get(f"/api/v1/webhooks/{hook_id}")).json()
    assert shown["secret"] is None and shown["event_types"] == ["conversation.created", "message.created"]
    assert (await people.agent.get("/api/v1/webhooks")).status_code == 403
    service: InboxService = server.state.service
    inbox = await make_inbox(service.store)
    await eventually(lambda: _cursor_set(service.store), what="the webhook worker started")
    receiver.answers = [400]  # the first delivery fails for good: the log shows it, a retry sends it again
    await service.deliver(inbound(inbox))
    await eventually(lambda: len(receiver.received) >= 2, what="both events delivered")

    async def settled() -> list[dict[str, Any]]:
        log = await people.admin.get(f"/api/v1/webhooks/{hook_id}/deliveries")
        assert log.status_code == 200, log.text
        return list(log.json()["items"])

    items: list[dict[str, Any]] = []
    for _ in range(100):  # the receiver has both; the worker records each answer just after it
        items = await settled()
        if sorted(item["status"] for item in items) == ["delivered", "failed"]:
            break
        await asyncio.sleep(0.05)
    assert sorted(item["event_type"] for item in items) == ["conversation.created", "message.created"]
    failed = next(item for item in items if item["status"] == "failed")
    assert (failed["response_code"], failed["attempts"]) == (400, 1)
    ok = next(item for item in items if item["status"] == "delivered")
    assert (ok["response_code"], ok["attempts"]) == (200, 1)
    for item in receiver.received:
        verify(item, secret)
    only_failed = await people.admin.get(f"/api/v1/webhooks/{hook_id}/deliveries?status=failed")
    assert [item["id"] for item in only_failed.json()["items"]] == [failed["id"]]
    retried = await people.admin.post(f"/api/v1/webhooks/{hook_id}/deliveries/{failed['id']}/retry")
    assert retried.status_code == 200, retried.text
    await eventually(lambda: len(receiver.received) == 3, what="the retry was sent")
    assert receiver.received[2].headers["x-switchboard-delivery"] == failed["delivery_id"]

    async def delivered_now() -> bool:
        found = (await people.admin.get(f"/api/v1/webhooks/{hook_id}/deliveries?status=delivered")).json()["items"]
        return len(found) == 2

    await eventually(delivered_now, what="the retried delivery is logged as delivered")
    again = await people.admin.post(f"/api/v1/webhooks/{hook_id}/deliveries/{failed['id']}/retry")
    assert again.status_code == 409
    rotated = await people.admin.patch(f"/api/v1/webhooks/{hook_id}", json={"rotate_secret": True})
    assert rotated.status_code == 200 and rotated.json()["secret"] not in (None, secret)
    assert (await people.admin.delete(f"/api/v1/webhooks/{hook_id}")).status_code == 204
    assert (await people.admin.get(f"/api/v1/webhooks/{hook_id}/deliveries")).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.test/x", "event_types": ["message.created"]}, "body.url: must be an http"),
        ({"url": "http://", "event_types": ["message.created"]}, "body.url"),
        ({"url": "http://example.test/x", "event_types": ["message.exploded"]}, "body.event_types[0]: must be one of"),
        ({"url": "http://example.test/x", "event_types": []}, "body.event_types"),
        ({"url": "http://example.test/x"}, "body.event_types"),
        ({"url": "http://example.test/x", "event_types": ["message.created"], "secret": "x"}, "body.secret"),
    ],
)
async def test_bad_webhooks_are_422_naming_the_field(
    server: LiveServer, people: People, body: dict[str, Any], field: str
) -> None:
    response = await people.admin.post("/api/v1/webhooks", json=body)
    assert response.status_code == 422, response.text
    assert error(response).startswith(field), error(response)


async def test_webhook_ids_out_of_range_are_404(server: LiveServer, people: People) -> None:
    for path in ("/api/v1/webhooks/0", "/api/v1/webhooks/99999999999", "/api/v1/webhooks/5/deliveries"):
        assert (await people.admin.get(path)).status_code == 404, path
    response = await people.admin.get("/api/v1/webhooks/1/deliveries?limit=0")
    assert response.status_code == 422 and error(response).startswith("query.limit")
    assert (await people.admin.post("/api/v1/webhooks/1/deliveries/99999999999/retry")).status_code == 404


async def _cursor_set(store: Store) -> bool:
    from inbox.store.models import Cursor

    async with store.session() as session:
        return await session.get(Cursor, webhooks.CURSOR) is not None
