"""Membership and role changes reach connected agent streams: an agent added to an inbox starts
receiving its events, removed stops; a deactivated agent's stream is closed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.people import People
from tests.servers.app import LiveServer

Frame = dict[str, Any]


async def frames_until(ws: ClientConnection, match: Callable[[Frame], bool], seconds: float = 10.0) -> list[Frame]:
    """Every frame up to and including the first that matches (fails after `seconds`)."""
    seen: list[Frame] = []
    async with asyncio.timeout(seconds):
        while True:
            frame = json.loads(await ws.recv())
            seen.append(frame)
            if match(frame):
                return seen


def message_with(body: str) -> Callable[[Frame], bool]:
    return lambda frame: frame.get("type") == "message.created" and frame["data"]["body"] == body


async def post_incoming(http: httpx.AsyncClient, inbox: Frame, external_id: str, body: str) -> None:
    response = await http.post(
        f"/api/v1/inboxes/{inbox['id']}/incoming",
        headers={"Authorization": f"Bearer {inbox['secret']}"},
        json={"external_id": external_id, "sender": {"id": "cust", "name": "Cy"}, "body": body},
    )
    assert response.status_code == 201, response.text


async def test_added_agent_starts_receiving_removed_agent_stops(server: LiveServer, people: People) -> None:
    one = (await people.admin.post("/api/v1/inboxes", json={"name": "One", "channel": "api"})).json()
    two = (await people.admin.post("/api/v1/inboxes", json={"name": "Two", "channel": "api"})).json()
    await people.admin.post(f"/api/v1/inboxes/{two['id']}/members", json={"agent_id": people.agent_id})
    token = people.agent.headers["authorization"]
    async with (
        websockets.connect(server.ws_url + "/api/v1/stream", additional_headers={"Authorization": token}) as ws,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        assert json.loads(await ws.recv())["type"] == "ready"

        await post_incoming(http, one, "a1", "to one, unseen")
        await post_incoming(http, two, "b1", "to two, seen")
        seen = await frames_until(ws, message_with("to two, seen"))
        assert all(frame["data"].get("inbox_id") != one["id"] for frame in seen), seen

        added = await people.admin.post(f"/api/v1/inboxes/{one['id']}/members", json={"agent_id": people.agent_id})
        assert added.status_code == 200
        update = await frames_until(ws, lambda frame: frame.get("type") == "inbox.updated")
        assert update[-1]["data"]["id"] == one["id"] and people.agent_id in update[-1]["data"]["agent_ids"]
        assert "secret" not in update[-1]["data"] and "settings" not in update[-1]["data"]
        await post_incoming(http, one, "a2", "to one, now seen")
        await frames_until(ws, message_with("to one, now seen"))

        removed = await people.admin.delete(f"/api/v1/inboxes/{one['id']}/members/{people.agent_id}")
        assert removed.status_code == 200
        await post_incoming(http, one, "a3", "to one, unseen again")
        await post_incoming(http, two, "b2", "to two, seen again")
        seen = await frames_until(ws, message_with("to two, seen again"))
        assert not [frame for frame in seen if frame["data"].get("body") == "to one, unseen again"], seen


async def test_deactivating_an_agent_closes_their_stream(server: LiveServer, people: People) -> None:
    token = people.agent.headers["authorization"]
    async with websockets.connect(server.ws_url + "/api/v1/stream", additional_headers={"Authorization": token}) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        off = await people.admin.patch(f"/api/v1/agents/{people.agent_id}", json={"active": False})
        assert off.status_code == 200
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(10):
                while True:
                    await ws.recv()


async def test_promotion_to_admin_reaches_the_stream(server: LiveServer, people: People) -> None:
    hidden = (await people.admin.post("/api/v1/inboxes", json={"name": "Hidden", "channel": "api"})).json()
    token = people.agent.headers["authorization"]
    async with (
        websockets.connect(server.ws_url + "/api/v1/stream", additional_headers={"Authorization": token}) as ws,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        assert json.loads(await ws.recv())["type"] == "ready"
        promoted = await people.admin.patch(f"/api/v1/agents/{people.agent_id}", json={"role": "admin"})
        assert promoted.status_code == 200
        update = await frames_until(ws, lambda frame: frame.get("type") == "agent.updated")
        assert update[-1]["data"]["role"] == "admin"
        await post_incoming(http, hidden, "h1", "admins see every inbox")
        await frames_until(ws, message_with("admins see every inbox"))
