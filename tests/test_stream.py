"""The agent stream over a real websocket: delivery, authorisation, resume with after=, resync, auth errors."""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from inbox.store.models import Cursor
from tests.factories import add_member, make_agent, make_inbox, make_token
from tests.servers.app import LiveServer
from tests.streams import StreamClient


async def post_incoming(server: LiveServer, inbox_id: int, secret: str, external_id: str, body: str = "hi") -> dict:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post(
            f"/api/v1/inboxes/{inbox_id}/incoming",
            headers={"Authorization": f"Bearer {secret}"},
            json={"external_id": external_id, "sender": {"id": "c1", "name": "Carol"}, "body": body},
        )
    assert response.status_code in (200, 201), response.text
    return response.json()  # type: ignore[no-any-return]


async def test_members_see_their_inbox_and_outsiders_see_nothing(server: LiveServer) -> None:
    store = server.state.store
    inbox = await make_inbox(store)
    member = await make_agent(store, email="m@example.test")
    outsider = await make_agent(store, email="o@example.test")
    admin = await make_agent(store, email="a@example.test", role="admin")
    await add_member(store, inbox, member)
    streams = [
        await StreamClient.open(server.ws_url, await make_token(store, agent)) for agent in (member, outsider, admin)
    ]
    for stream in streams:
        await stream.until("ready")
    delivered = await post_incoming(server, inbox.id, inbox.secret, "e1", "Where is my order?")
    for stream in (streams[0], streams[2]):
        frame = await stream.until("message.created")
        assert frame["data"]["id"] == delivered["message_id"]
        assert frame["data"]["body"] == "Where is my order?"
    assert [f for f in await streams[1].drain() if "id" in f] == []
    for stream in streams:
        await stream.close()


async def test_reconnect_with_after_gets_every_missed_event_once_in_order(server: LiveServer) -> None:
    store = server.state.store
    inbox = await make_inbox(store)
    admin = await make_agent(store, role="admin")
    token = await make_token(store, admin)
    stream = await StreamClient.open(server.ws_url, token)
    await stream.until("ready")
    await post_incoming(server, inbox.id, inbox.secret, "e1")
    last_seen = (await stream.until("message.created"))["id"]
    await stream.close()
    for n in range(2, 6):
        await post_incoming(server, inbox.id, inbox.secret, f"e{n}", f"message {n}")
    resumed = await StreamClient.open(server.ws_url, token, after=last_seen)
    await resumed.until("ready")
    await post_incoming(server, inbox.id, inbox.secret, "e6", "live one")
    await resumed.until("message.created")
    while len(resumed.events("message.created")) < 5:
        await resumed.until("message.created")
    missed = resumed.events()
    ids = [frame["id"] for frame in missed]
    assert ids == sorted(set(ids)), "events arrive in order, once"
    assert ids[0] > last_seen
    bodies = [f["data"]["body"] for f in missed if f["type"] == "message.created"]
    assert bodies == ["message 2", "message 3", "message 4", "message 5", "live one"]
    await resumed.close()


async def test_resume_from_pruned_history_asks_for_resync(server: LiveServer) -> None:
    store = server.state.store
    admin = await make_agent(store, role="admin")
    async with store.transaction() as tx:
        tx.add(Cursor(key="events.pruned_through", value="100"))
    stream = await StreamClient.open(server.ws_url, await make_token(store, admin), after=5)
    assert (await stream.next())["type"] == "resync"
    await stream.close()


async def test_unauthenticated_stream_gets_error_frame_then_close(server: LiveServer) -> None:
    async with connect(f"{server.ws_url}/api/v1/stream") as ws:
        await ws.send(json.dumps({"type": "auth", "token": "sb_wrong"}))
        frame = json.loads(await ws.recv())
        assert frame == {"type": "error", "code": "unauthorized", "detail": "invalid or revoked API token"}
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_first_frame_auth_and_bad_after(server: LiveServer) -> None:
    store = server.state.store
    token = await make_token(store, await make_agent(store, role="admin"))
    async with connect(f"{server.ws_url}/api/v1/stream") as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        assert json.loads(await ws.recv())["type"] == "ready"
    async with connect(f"{server.ws_url}/api/v1/stream?after=abc") as ws:
        frame = json.loads(await ws.recv())
        assert frame["code"] == "invalid" and "after" in frame["detail"]
