"""WhatsApp end to end: the real app under uvicorn, Meta's webhooks signed on loopback, the fake Graph API.

What an agent sees goes through the public API only: a customer's message lands in a conversation, the reply
reaches Graph, receipts move the reply's status (out of order), a bad signature stores nothing, a replayed
notification is stored once, and outside the 24-hour window only an approved template goes out.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from inbox.config import WhatsAppConfig
from inbox.store.models import Inbox, Message
from tests.factories import make_inbox
from tests.servers.app import LiveServer, live_server, make_config
from tests.servers.whatsapp import PHONE_NUMBER_ID, TOKEN, WABA_ID, FakeGraph, graph_server, post_signed
from tests.telegram.support import admin, eventually

DATA = Path(__file__).parent / "data" / "whatsapp"
APP_SECRET = "app-secret-0123456789abcdef"
VERIFY_TOKEN = "verify-me-please"
CAROL = "4915112345678"


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    async with graph_server() as running:
        yield running


@pytest.fixture
async def app(db_url: str, tmp_path: Path, graph: FakeGraph) -> AsyncIterator[LiveServer]:
    config = make_config(db_url, tmp_path, whatsapp=WhatsAppConfig(api_base_url=graph.api_base_url))
    async with live_server(config) as running:
        yield running


async def whatsapp_inbox(app: LiveServer) -> Inbox:
    return await make_inbox(
        app.state.store,
        channel="whatsapp",
        name="WhatsApp",
        phone_number_id=PHONE_NUMBER_ID,
        access_token=TOKEN,
        app_secret=APP_SECRET,
        verify_token=VERIFY_TOKEN,
        waba_id=WABA_ID,
    )


def notification(name: str, *, at: float | None = None) -> dict[str, Any]:
    """A fixture notification; `at` rewrites its messages' timestamps (the window is measured from them)."""
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    for entry in data["entry"]:
        for change in entry["changes"]:
            for message in change["value"].get("messages", []):
                message["timestamp"] = str(int(at if at is not None else time.time()))
    return data


def receipts(wamid: str, *statuses: str) -> dict[str, Any]:
    """A status notification for our message `wamid`, in the order given (Meta does not promise one)."""
    data = notification("statuses")
    value = data["entry"][0]["changes"][0]["value"]
    now = int(time.time())
    value["statuses"] = [
        {"id": wamid, "status": status, "timestamp": str(now + i), "recipient_id": CAROL}
        for i, status in enumerate(statuses)
    ]
    return data


class Agent:
    """The public API as an agent's client calls it."""

    def __init__(self, app: LiveServer, token: str) -> None:
        self.client = httpx.AsyncClient(base_url=app.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(path, json=body)

    async def conversations(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await self.get("/api/v1/conversations"))["items"]
        return items

    async def messages(self, conversation_id: int) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await self.get(f"/api/v1/conversations/{conversation_id}/messages"))["items"]
        return sorted(items, key=lambda item: int(item["id"]))

    async def message(self, conversation_id: int, message_id: int) -> dict[str, Any]:
        (found,) = [m for m in await self.messages(conversation_id) if m["id"] == message_id]
        return found


@pytest.fixture
async def agent(app: LiveServer) -> AsyncIterator[Agent]:
    _, token = await admin(app.state.store)
    client = Agent(app, token)
    yield client
    await client.client.aclose()


def webhook(app: LiveServer, inbox: Inbox) -> str:
    return f"{app.url}/channels/whatsapp/{inbox.id}"


async def test_message_reply_and_receipts_end_to_end(app: LiveServer, graph: FakeGraph, agent: Agent) -> None:
    inbox = await whatsapp_inbox(app)
    handshake = await agent.client.get(
        f"/channels/whatsapp/{inbox.id}",
        params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
    )
    assert handshake.status_code == 200 and handshake.text == "1158201444"

    response = await post_signed(webhook(app, inbox), notification("text"), APP_SECRET)
    assert response.status_code == 200, response.text
    (conversation,) = await agent.conversations()
    assert conversation["inbox_id"] == inbox.id
    (incoming,) = await agent.messages(conversation["id"])
    assert incoming["kind"] == "incoming" and incoming["body"] == "Hi, my order #123 has not arrived"

    posted = await agent.post(
        f"/api/v1/conversations/{conversation['id']}/messages", {"body": "Sorry! Checking now", "client_id": "c-1"}
    )
    assert posted.status_code == 201, posted.text
    reply_id = posted.json()["id"]

    async def sent() -> dict[str, Any] | None:
        found = await agent.message(conversation["id"], reply_id)
        return found if found["status"] == "sent" else None

    reply = await eventually(sent)
    (body,) = graph.sends
    assert body["to"] == CAROL and body["type"] == "text" and body["text"]["body"] == "Sorry! Checking now"
    wamid = reply["external_id"]
    assert wamid and wamid.startswith("wamid.")

    # Receipts out of order: "read" first, then a late "delivered" and "sent" that must not move it back.
    assert (await post_signed(webhook(app, inbox), receipts(wamid, "read"), APP_SECRET)).status_code == 200
    assert (await agent.message(conversation["id"], reply_id))["status"] == "read"
    late = await post_signed(webhook(app, inbox), receipts(wamid, "delivered", "sent"), APP_SECRET)
    assert late.status_code == 200
    assert (await agent.message(conversation["id"], reply_id))["status"] == "read"


async def test_failed_receipt_shows_the_reason_and_a_later_delivery_wins(
    app: LiveServer, graph: FakeGraph, agent: Agent
) -> None:
    inbox = await whatsapp_inbox(app)
    assert (await post_signed(webhook(app, inbox), notification("text"), APP_SECRET)).status_code == 200
    (conversation,) = await agent.conversations()
    posted = await agent.post(f"/api/v1/conversations/{conversation['id']}/messages", {"body": "Hello"})
    reply_id = posted.json()["id"]

    async def wamid() -> str | None:
        value: str | None = (await agent.message(conversation["id"], reply_id))["external_id"]
        return value

    sent_id = await eventually(wamid)
    failed = receipts(sent_id, "failed")
    failed["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"] = [
        {"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable"}
    ]
    assert (await post_signed(webhook(app, inbox), failed, APP_SECRET)).status_code == 200
    shown = await agent.message(conversation["id"], reply_id)
    assert shown["status"] == "failed" and shown["error"]
    assert (await post_signed(webhook(app, inbox), receipts(sent_id, "delivered"), APP_SECRET)).status_code == 200
    shown = await agent.message(conversation["id"], reply_id)
    assert shown["status"] == "delivered" and shown["error"] is None


async def test_bad_signature_is_refused_and_nothing_is_stored(app: LiveServer, agent: Agent) -> None:
    inbox = await whatsapp_inbox(app)
    wrong = await post_signed(webhook(app, inbox), notification("text"), "not-the-app-secret")
    assert wrong.status_code == 401
    async with httpx.AsyncClient() as client:
        missing = await client.post(webhook(app, inbox), json=notification("text"))
    assert missing.status_code == 401
    assert await agent.conversations() == []


async def test_replayed_notification_is_stored_once(app: LiveServer, agent: Agent) -> None:
    inbox = await whatsapp_inbox(app)
    payload = notification("text")
    first = await post_signed(webhook(app, inbox), payload, APP_SECRET)
    replay = await post_signed(webhook(app, inbox), copy.deepcopy(payload), APP_SECRET)
    assert first.json()["delivered"] == 1
    assert replay.status_code == 200 and replay.json()["delivered"] == 0 and replay.json()["duplicates"] == 1
    (conversation,) = await agent.conversations()
    assert len(await agent.messages(conversation["id"])) == 1


TEMPLATES = [
    {
        "name": "order_update",
        "language": "en_US",
        "status": "APPROVED",
        "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Hello {{1}}, your order {{2}} has news."}],
    },
    {
        "name": "old_promo",
        "language": "en_US",
        "status": "PAUSED",
        "category": "MARKETING",
        "components": [{"type": "BODY", "text": "Buy now"}],
    },
]


async def test_closed_window_offers_only_templates_and_a_template_goes_out(
    app: LiveServer, graph: FakeGraph, agent: Agent
) -> None:
    graph.templates = copy.deepcopy(TEMPLATES)
    inbox = await whatsapp_inbox(app)
    two_days_ago = time.time() - 2 * 86400
    assert (
        await post_signed(webhook(app, inbox), notification("text", at=two_days_ago), APP_SECRET)
    ).status_code == 200
    # The core dates a message by its arrival: the customer wrote two days ago, so age the stored row too.
    async with app.state.store.transaction() as tx:
        await tx.execute(update(Message).values(created_at=datetime.fromtimestamp(two_days_ago, UTC)))
    (conversation,) = await agent.conversations()
    listed = await agent.get(f"/api/v1/inboxes/{inbox.id}/whatsapp/templates", conversation_id=conversation["id"])
    assert listed["window"]["open"] is False and listed["window"]["closes_at"]
    assert [item["name"] for item in listed["items"]] == ["order_update"]  # approved only

    # Free text outside the window fails with the reason, without reaching Graph.
    free = await agent.post(f"/api/v1/conversations/{conversation['id']}/messages", {"body": "Still there?"})

    async def failed() -> dict[str, Any] | None:
        found = await agent.message(conversation["id"], free.json()["id"])
        return found if found["status"] == "failed" else None

    assert "24" in (await eventually(failed))["error"]
    assert graph.sends == []

    wrong = await agent.post(
        f"/api/v1/conversations/{conversation['id']}/whatsapp/template", {"name": "order_update", "parameters": ["A"]}
    )
    assert wrong.status_code == 422 and "parameters" in wrong.text
    posted = await agent.post(
        f"/api/v1/conversations/{conversation['id']}/whatsapp/template",
        {"name": "order_update", "parameters": ["Carol", "#123"], "client_id": "t-1"},
    )
    assert posted.status_code == 201, posted.text
    assert posted.json()["body"] == "Hello Carol, your order #123 has news."

    async def template_sent() -> dict[str, Any] | None:
        found = await agent.message(conversation["id"], posted.json()["id"])
        return found if found["status"] == "sent" else None

    await eventually(template_sent)
    (body,) = graph.sends
    assert body["type"] == "template" and body["template"]["name"] == "order_update"
    assert body["template"]["language"]["code"] == "en_US"
