"""Phone (CTI) end to end: the real app under uvicorn, the PBX simulator posting signed call events on loopback.

Through the public API and the agent stream: a call rings live (with the caller's contact and history once the
number is known), a missed call opens a conversation with "Missed call", a replayed hangup is stored once, a bad
signature stores nothing, and click-to-call goes through the PBX's dial URL (or answers a tel: link).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from inbox.store.models import Inbox
from tests.factories import make_inbox
from tests.servers.app import LiveServer, live_server, make_config
from tests.servers.pbx import FakePbx, pbx_server
from tests.telegram.support import Stream, admin, open_stream
from tests.test_whatsapp_e2e import Agent

SECRET = "pbx-signing-secret-0123456789"
CAROL = "+4915112345678"


@pytest.fixture
async def app(db_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    async with live_server(make_config(db_url, tmp_path)) as running:
        yield running


@pytest.fixture
async def pbx() -> AsyncIterator[FakePbx]:
    async with pbx_server(SECRET) as running:
        yield running


@pytest.fixture
async def token(app: LiveServer) -> str:
    _, value = await admin(app.state.store)
    return value


@pytest.fixture
async def agent(app: LiveServer, token: str) -> AsyncIterator[Agent]:
    client = Agent(app, token)
    yield client
    await client.client.aclose()


async def phone_inbox(app: LiveServer, pbx: FakePbx, **settings: Any) -> Inbox:
    inbox = await make_inbox(app.state.store, channel="phone", name="Hotline", signing_secret=SECRET, **settings)
    pbx.target = f"{app.url}/channels/phone/{inbox.id}"
    return inbox


def call(state: str) -> Any:
    return lambda frame: frame.get("type") == "call" and frame.get("state") == state


async def test_missed_call_rings_then_opens_a_conversation(
    app: LiveServer, pbx: FakePbx, agent: Agent, token: str
) -> None:
    inbox = await phone_inbox(app, pbx)
    ringing, ended = pbx.missed_call("c-1", CAROL)
    async with await open_stream(app, token) as ws:
        stream = Stream(ws)
        assert (await pbx.post(ringing)).json() == {"outcome": "signalled"}
        frame = await stream.until(call("ringing"))
        assert frame["number"] == CAROL and "contact" not in frame  # nobody knows this number yet
        assert await agent.conversations() == []  # ringing stores nothing
        assert (await pbx.post(ended)).json() == {"outcome": "stored"}
        await stream.until(call("ended"))
    (conversation,) = await agent.conversations()
    assert conversation["inbox_id"] == inbox.id and conversation["status"] == "open"
    (message,) = await agent.messages(conversation["id"])
    assert message["kind"] == "incoming" and message["body"].startswith("Missed call")


async def test_a_known_caller_rings_with_name_and_history(
    app: LiveServer, pbx: FakePbx, agent: Agent, token: str
) -> None:
    await phone_inbox(app, pbx)
    assert await pbx.play(pbx.missed_call("c-1", CAROL)) == ["signalled", "stored"]
    (conversation,) = await agent.conversations()
    async with await open_stream(app, token) as ws:
        stream = Stream(ws)
        ringing, _ = pbx.missed_call("c-2", CAROL)
        assert (await pbx.post(ringing)).status_code == 200
        frame = await stream.until(call("ringing"))
    assert frame["contact"]["id"] == conversation["contact"]["id"]
    assert frame["contact"]["open_conversations"] == 1
    assert frame["conversation_id"] == conversation["id"]


async def test_replayed_hangup_is_stored_once(app: LiveServer, pbx: FakePbx, agent: Agent) -> None:
    await phone_inbox(app, pbx)
    events = pbx.answered_call("c-9", CAROL, "ann@example.test", 95)
    assert await pbx.play(events) == ["signalled", "signalled", "stored"]
    assert (await pbx.post(events[-1])).json() == {"outcome": "duplicate"}
    (conversation,) = await agent.conversations()
    (message,) = await agent.messages(conversation["id"])
    assert "ann@example.test" in message["body"]


async def test_bad_signature_is_refused_and_nothing_is_stored(app: LiveServer, pbx: FakePbx, agent: Agent) -> None:
    await phone_inbox(app, pbx)
    _, ended = pbx.missed_call("c-1", CAROL)
    assert (await pbx.post(ended, secret="another-secret-0123456789")).status_code == 401
    assert (await pbx.post(ended, headers={"x-switchboard-signature": ""})).status_code == 401
    assert await agent.conversations() == []


async def test_click_to_call_through_the_pbx_or_a_tel_link(app: LiveServer, pbx: FakePbx, agent: Agent) -> None:
    await phone_inbox(app, pbx, dial_url=pbx.dial_template)
    assert await pbx.play(pbx.missed_call("c-1", CAROL)) == ["signalled", "stored"]
    (conversation,) = await agent.conversations()
    contact_id = conversation["contact"]["id"]
    dialing = await agent.post(f"/api/v1/contacts/{contact_id}/call", {"agent_extension": "201"})
    assert dialing.status_code == 200, dialing.text
    assert dialing.json() == {"status": "dialing"}
    assert pbx.dials == [{"from": "201", "to": CAROL}]

    pbx.dial_status = 503
    refused = await agent.post(f"/api/v1/contacts/{contact_id}/call", {"agent_extension": "201"})
    assert refused.status_code == 502 and "503" in refused.json()["error"]["detail"]


async def test_click_to_call_without_a_dial_url_answers_a_tel_link(app: LiveServer, pbx: FakePbx, agent: Agent) -> None:
    await phone_inbox(app, pbx)
    assert await pbx.play(pbx.missed_call("c-1", CAROL)) == ["signalled", "stored"]
    (conversation,) = await agent.conversations()
    answer = await agent.post(f"/api/v1/contacts/{conversation['contact']['id']}/call", {})
    assert answer.status_code == 200 and answer.json() == {"tel": f"tel:{CAROL}"}
