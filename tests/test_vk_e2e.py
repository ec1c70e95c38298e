"""VK end to end: the real app under uvicorn, Callback API events posted on loopback, the fake VK API.

Through the public API: the confirmation handshake, a message lands in a conversation, the agent's reply reaches
`messages.send` (once, by its random_id), a wrong secret stores nothing, an event VK sends again is stored once,
and `message_deny` marks the contact unreachable.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from inbox.config import VkConfig
from inbox.store.models import Inbox
from tests.factories import make_inbox
from tests.servers.app import LiveServer, live_server, make_config
from tests.servers.vk import GROUP_ID, TOKEN, FakeVk, post_event, vk_server
from tests.telegram.support import admin, eventually
from tests.test_whatsapp_e2e import Agent

DATA = Path(__file__).parent / "data" / "vk"
SECRET = "s3cretKey42"
CODE = "c0nf1rm"
CAROL = 555000111


@pytest.fixture
async def vk() -> AsyncIterator[FakeVk]:
    async with vk_server() as running:
        yield running


@pytest.fixture
async def app(db_url: str, tmp_path: Path, vk: FakeVk) -> AsyncIterator[LiveServer]:
    config = make_config(db_url, tmp_path, vk=VkConfig(api_base_url=vk.api_base_url))
    async with live_server(config) as running:
        yield running


@pytest.fixture
async def agent(app: LiveServer) -> AsyncIterator[Agent]:
    _, token = await admin(app.state.store)
    client = Agent(app, token)
    yield client
    await client.client.aclose()


async def vk_inbox(app: LiveServer) -> Inbox:
    return await make_inbox(
        app.state.store,
        channel="vk",
        name="VK",
        group_id=GROUP_ID,
        access_token=TOKEN,
        confirmation_code=CODE,
        secret_key=SECRET,
    )


def event(name: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    data.update(changes)
    return data


def callback(app: LiveServer, inbox: Inbox) -> str:
    return f"{app.url}/channels/vk/{inbox.id}"


async def test_message_and_reply_end_to_end(app: LiveServer, vk: FakeVk, agent: Agent) -> None:
    inbox = await vk_inbox(app)
    confirmation = await post_event(callback(app, inbox), event("confirmation"))
    assert confirmation.status_code == 200 and confirmation.text == CODE

    answer = await post_event(callback(app, inbox), event("text"))
    assert answer.status_code == 200 and answer.text == "ok"
    (conversation,) = await agent.conversations()
    assert conversation["inbox_id"] == inbox.id
    (incoming,) = await agent.messages(conversation["id"])
    assert incoming["body"] == "Hi, my order #123 has not arrived"

    posted = await agent.post(f"/api/v1/conversations/{conversation['id']}/messages", {"body": "Sorry! Checking now"})
    assert posted.status_code == 201, posted.text

    async def sent() -> dict[str, Any] | None:
        found = await agent.message(conversation["id"], posted.json()["id"])
        return found if found["status"] == "sent" else None

    reply = await eventually(sent)
    (message,) = vk.sent
    assert message.peer_id == CAROL and message.text == "Sorry! Checking now" and message.random_id != 0
    assert reply["external_id"] == f"{CAROL}:out:{message.id}"  # the adapter namespaces its ids per peer


async def test_wrong_secret_is_refused_and_nothing_is_stored(app: LiveServer, agent: Agent) -> None:
    inbox = await vk_inbox(app)
    refused = await post_event(callback(app, inbox), event("text", secret="wrongSecret1"))
    assert refused.status_code == 403
    other = await post_event(callback(app, inbox), event("text", group_id=GROUP_ID + 1))
    assert other.status_code == 403
    assert await agent.conversations() == []


async def test_event_sent_again_is_stored_once(app: LiveServer, agent: Agent) -> None:
    inbox = await vk_inbox(app)
    for _ in range(2):
        assert (await post_event(callback(app, inbox), event("text"))).text == "ok"
    # VK retries with a new event_id too: the message id still keys it.
    again = await post_event(callback(app, inbox), event("text", event_id="ffffffffffffffffffffffffffff"))
    assert again.status_code == 200
    (conversation,) = await agent.conversations()
    assert len(await agent.messages(conversation["id"])) == 1


async def test_deny_marks_the_contact_unreachable_and_allow_clears_it(app: LiveServer, agent: Agent) -> None:
    inbox = await vk_inbox(app)
    assert (await post_event(callback(app, inbox), event("text"))).text == "ok"
    (conversation,) = await agent.conversations()
    contact_id = conversation["contact"]["id"]
    assert (await post_event(callback(app, inbox), event("deny"))).text == "ok"
    contact = await agent.get(f"/api/v1/contacts/{contact_id}")
    assert "vk_unreachable" in contact["attributes"]
    assert (await post_event(callback(app, inbox), event("allow"))).text == "ok"
    contact = await agent.get(f"/api/v1/contacts/{contact_id}")
    assert "vk_unreachable" not in contact["attributes"]
