"""Test clients for the live chat: a widget socket and an agent stream, both over real websockets."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from inbox.auth import new_api_token
from inbox.store.engine import Store
from inbox.store.models import Agent, ApiToken, Inbox
from tests.factories import make_agent, make_inbox
from tests.servers.app import LiveServer

TIMEOUT = 10.0


class Socket:
    """A websocket whose frames are read with a deadline and matched by a predicate (never by sleeping)."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.frames: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(frame))

    async def receive(self, wait: float = TIMEOUT) -> dict[str, Any]:
        frame = json.loads(await asyncio.wait_for(self.connection.recv(), wait))
        assert isinstance(frame, dict)
        self.frames.append(frame)
        return frame

    async def expect(self, match: Callable[[dict[str, Any]], bool], wait: float = TIMEOUT) -> dict[str, Any]:
        """The next frame that matches, skipping others; fails when none arrives in time."""
        deadline = time.monotonic() + wait
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching frame within {wait}s; saw {self.frames[-5:]}")
            frame = await self.receive(remaining)
            if match(frame):
                return frame

    async def expect_type(self, kind: str, wait: float = TIMEOUT) -> dict[str, Any]:
        return await self.expect(lambda frame: frame.get("type") == kind, wait)

    async def closed(self, wait: float = TIMEOUT) -> int | None:
        """Read until the server closes; answer the close code."""
        try:
            while True:
                await self.receive(wait)
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None

    async def nothing(self, match: Callable[[dict[str, Any]], bool], within: float = 0.3) -> None:
        """No matching frame arrives within `within` seconds (used only to prove an absence)."""
        try:
            await self.expect(match, within)
        except (AssertionError, TimeoutError):
            return
        raise AssertionError(f"unexpected frame {self.frames[-1]}")


@asynccontextmanager
async def widget(
    server: LiveServer, key: str, *, origin: str | None = None, hello: dict[str, Any] | None = None
) -> AsyncIterator[Socket]:
    """A widget socket; with `hello` it says hello first (the welcome or error is left to the test)."""
    headers = {"Origin": origin} if origin else {"Origin": server.url}
    async with connect(
        f"{server.ws_url}/widget/ws?key={key}", additional_headers=headers, proxy=None, max_size=2**24
    ) as connection:
        socket = Socket(connection)
        if hello is not None:
            await socket.send({"type": "hello", "visitor_token": None, "after": None, "identity": None, **hello})
        yield socket


@asynccontextmanager
async def agent_stream(server: LiveServer, token: str) -> AsyncIterator[Socket]:
    async with connect(
        f"{server.ws_url}/api/v1/stream", additional_headers={"Authorization": f"Bearer {token}"}, proxy=None
    ) as connection:
        socket = Socket(connection)
        await socket.expect_type("ready")
        yield socket


async def admin_with_token(store: Store, email: str = "admin@example.test") -> tuple[Agent, str]:
    agent = await make_agent(store, email=email, name="Ann Agent", role="admin")
    token, token_hash = new_api_token()
    async with store.transaction() as tx:
        tx.add(ApiToken(agent_id=agent.id, token_hash=token_hash))
    return agent, token


async def webchat_inbox(server: LiveServer, **settings: object) -> Inbox:
    return await make_inbox(server.state.store, channel="webchat", name="Website", **settings)
