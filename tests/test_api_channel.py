"""The API channel: payload validation (pure), signed webhooks, and the whole path over real HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import select

from channels.api import PayloadError, inbound_from_payload, sign
from inbox.store.models import Message
from tests.factories import make_agent, make_inbox
from tests.servers.app import LiveServer
from tests.servers.webhook import webhook_receiver

GOOD = {"external_id": "x1", "sender": {"id": "u1", "name": "Uma", "email": "uma@example.test"}, "body": "Hello"}


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ([], "body: expected a JSON object"),
        ({**GOOD, "extra": 1}, "body.extra: unknown field"),
        ({**GOOD, "external_id": 5}, "body.external_id: expected a string, got int"),
        ({k: v for k, v in GOOD.items() if k != "body"}, "body.body: required"),
        ({**GOOD, "body": "   "}, "body.body: must not be empty"),
        ({**GOOD, "sender": "u1"}, "body.sender: expected an object"),
        ({**GOOD, "sender": {"name": "x"}}, "body.sender.id: required"),
        ({**GOOD, "sender": {"id": "u", "email": "nope"}}, "body.sender.email: not an email address"),
        ({**GOOD, "sender": {"id": "u", "role": "x"}}, "body.sender.role: unknown field"),
        ({**GOOD, "body": "x" * 70_000}, "body.body: longer than 65536 characters"),
    ],
)
def test_payload_errors_name_the_field(payload: object, error: str) -> None:
    with pytest.raises(PayloadError, match=error):
        inbound_from_payload(1, payload)


def test_payload_normalises_threads_and_namespaces_identities() -> None:
    plain = inbound_from_payload(3, GOOD)
    assert plain.thread_key == "sender:u1" and plain.sender.value == "3:u1"
    threaded = inbound_from_payload(3, {**GOOD, "thread_id": "T-7"})
    assert threaded.thread_key == "thread:T-7"


def test_signature_is_hmac_over_timestamp_and_body() -> None:
    expected = hmac.new(b"s3cret", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert sign("s3cret", "1700000000", b"{}") == f"sha256={expected}"


async def count_messages(server: LiveServer) -> int:
    async with server.state.store.session() as session:
        return int((await session.execute(select(func.count()).select_from(Message))).scalar_one())


async def test_incoming_errors_are_clear_and_write_nothing(server: LiveServer) -> None:
    inbox = await make_inbox(server.state.store)
    url = f"/api/v1/inboxes/{inbox.id}/incoming"
    auth = {"Authorization": f"Bearer {inbox.secret}"}
    async with httpx.AsyncClient(base_url=server.url) as http:
        cases = [
            (await http.post(url, json=GOOD), 401, "unauthorized"),
            (await http.post(url, json=GOOD, headers={"Authorization": "Bearer wrong"}), 401, "unauthorized"),
            (await http.post(url, content=b"{nope", headers=auth), 400, "malformed_json"),
            (await http.post(url, json={**GOOD, "x": 1}, headers=auth), 422, "invalid"),
            (await http.post(url, content=b"x" * 1_100_000, headers=auth), 413, "too_large"),
            (await http.post("/api/v1/inboxes/999/incoming", json=GOOD, headers=auth), 404, "not_found"),
        ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
        assert response.json()["error"]["detail"]
    assert await count_messages(server) == 0


async def test_duplicate_external_id_stores_once(server: LiveServer) -> None:
    inbox = await make_inbox(server.state.store)
    async with httpx.AsyncClient(base_url=server.url) as http:
        url = f"/api/v1/inboxes/{inbox.id}/incoming"
        auth = {"Authorization": f"Bearer {inbox.secret}"}
        first = await http.post(url, json=GOOD, headers=auth)
        second = await http.post(url, json=GOOD, headers=auth)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["duplicate"] is True and second.json()["message_id"] == first.json()["message_id"]
    assert await count_messages(server) == 1


async def wait_message(server: LiveServer, message_id: int, status: str) -> Message:
    async with asyncio.timeout(15):
        while True:
            async with server.state.store.session() as session:
                row = await session.get(Message, message_id)
            if row is not None and row.status == status:
                return row
            await asyncio.sleep(0.05)


async def test_reply_is_posted_signed_and_retried_on_5xx_with_same_delivery_id(server: LiveServer) -> None:
    store = server.state.store
    async with webhook_receiver(status=503) as receiver:
        inbox = await make_inbox(store, webhook_url=receiver.url)
        agent = await make_agent(store, role="admin")
        delivered = await server.state.host.deliver(inbound_from_payload(inbox.id, GOOD))
        message, _ = await server.state.service.reply(delivered.conversation_id, by=agent, body="On it", client_id=None)
        await receiver.wait_for(2)
        receiver.status = 200
        await wait_message(server, message["id"], "sent")
        posts = receiver.received
    deliveries = {post.headers["x-switchboard-delivery"] for post in posts}
    assert len(deliveries) == 1
    last = posts[-1]
    assert last.headers["x-switchboard-signature"] == sign(
        inbox.secret, last.headers["x-switchboard-timestamp"], last.body
    )
    payload = json.loads(last.body)
    assert payload["message"]["body"] == "On it" and payload["recipient"] == {"id": "u1"}


async def test_webhook_4xx_fails_with_the_status_shown(server: LiveServer) -> None:
    store = server.state.store
    async with webhook_receiver(status=410) as receiver:
        inbox = await make_inbox(store, webhook_url=receiver.url)
        agent = await make_agent(store, role="admin")
        delivered = await server.state.host.deliver(inbound_from_payload(inbox.id, GOOD))
        message, _ = await server.state.service.reply(delivered.conversation_id, by=agent, body="x", client_id=None)
        row = await wait_message(server, message["id"], "failed")
    assert row.error is not None and row.error.startswith("webhook answered 410")
    assert len(receiver.received) == 1
