"""Helpers of the Telegram end-to-end tests: the agent stream, polling with deadlines, the update fixtures."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import websockets
from sqlmodel import col, select

from inbox.auth import new_api_token
from inbox.store.engine import Store
from inbox.store.models import Agent, ApiToken, Contact, Inbox, Message
from tests.factories import make_agent, make_inbox
from tests.servers.app import LiveServer
from tests.servers.telegram import TOKEN, FakeTelegram

DATA = Path(__file__).parent.parent / "data" / "telegram"
CAROL = 111222333


def update(name: str, update_id: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    if update_id is not None:
        data["update_id"] = update_id
    return data


async def eventually(check: Callable[[], Awaitable[Any]], wait: float = 15.0) -> Any:
    """Poll `check` until it returns something truthy, or fail after `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {wait}s")
        await asyncio.sleep(0.05)


async def bot_inbox(app: LiveServer, mode: str, **extra: Any) -> Inbox:
    inbox = await make_inbox(app.state.store, channel="telegram", name="Bot", bot_token=TOKEN, mode=mode, **extra)
    app.state.runners.wake()
    return inbox


async def admin(store: Store) -> tuple[Agent, str]:
    agent = await make_agent(store, email="admin@example.test", name="Ann Admin", role="admin")
    token, token_hash = new_api_token()
    async with store.transaction() as tx:
        tx.add(ApiToken(agent_id=agent.id, token_hash=token_hash))  # type: ignore[arg-type]
    return agent, token


async def messages(store: Store) -> list[Message]:
    async with store.session() as session:
        return list((await session.execute(select(Message).order_by(col(Message.id)))).scalars())


async def message(store: Store, message_id: int) -> Message:
    async with store.session() as session:
        row = await session.get(Message, message_id)
    assert row is not None
    return row


async def contact_attributes(store: Store) -> dict[str, Any]:
    async with store.session() as session:
        contacts = list((await session.execute(select(Contact))).scalars())
    assert len(contacts) == 1
    return contacts[0].attributes


class Stream:
    """The agent stream as an agent's browser sees it."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    async def until(self, check: Callable[[dict[str, Any]], bool], wait: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + wait
        while True:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), max(0.1, deadline - time.monotonic())))
            self.frames.append(frame)
            if check(frame):
                return frame


async def open_stream(app: LiveServer, token: str) -> Any:
    return websockets.connect(f"{app.ws_url}/api/v1/stream", additional_headers={"Authorization": f"Bearer {token}"})


def created(body: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f.get("type") == "message.created" and f["data"]["body"] == body


async def returns(value: Any) -> Any:
    return value


async def count(store: Store, expected: int) -> bool:
    return len(await messages(store)) == expected


async def conversation(app: LiveServer, fake: FakeTelegram) -> int:
    """A webhook inbox with one customer message; answers its conversation id."""
    await bot_inbox(app, "webhook")
    await eventually(lambda: returns(fake.webhook))
    assert (await fake.push(update("text"))).status_code == 200
    (first,) = await messages(app.state.store)
    return first.conversation_id


async def status(store: Store, message_id: int, status: str) -> Message | None:
    row = await message(store, message_id)
    return row if row.status == status else None
