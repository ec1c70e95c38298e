"""A small world for the HTTP API tests: two inboxes, an admin and one agent in each inbox, with tokens,
plus a live server with small body and attachment limits and a row counter for "nothing was written"."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, func, select

from channels.base import Delivered
from inbox.service import InboxService
from inbox.store.engine import Store
from inbox.store.models import (
    Agent,
    ApiToken,
    Attachment,
    Contact,
    Conversation,
    ConversationLabel,
    Event,
    Identity,
    Inbox,
    Message,
    Outbox,
)
from tests.factories import add_member, inbound, make_inbox, make_token
from tests.servers.app import LiveServer, live_server, make_config

MAX_BODY = 16_384
MAX_ATTACHMENT = 8_192
COUNTED = (Contact, Identity, Conversation, ConversationLabel, Message, Attachment, Outbox, Event, ApiToken, Inbox)


@asynccontextmanager
async def small_server(db_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    """The real app with small limits, so oversize cases stay cheap."""
    config = make_config(db_url, tmp_path)
    config = dataclasses.replace(
        config,
        server=dataclasses.replace(config.server, max_body_bytes=MAX_BODY),
        storage=dataclasses.replace(config.storage, max_attachment_bytes=MAX_ATTACHMENT),
    )
    async with live_server(config) as running:
        yield running


@dataclass
class World:
    server: LiveServer
    support_id: int
    sales_id: int
    admin_id: int
    ann_id: int  # agent, member of support
    bob_id: int  # agent, member of sales
    tokens: dict[str, str]

    @property
    def store(self) -> Store:
        store: Store = self.server.state.store
        return store

    @property
    def service(self) -> InboxService:
        service: InboxService = self.server.state.service
        return service

    def client(self, who: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.AsyncClient(base_url=self.server.url, headers=headers, timeout=10)

    async def deliver(
        self, inbox: str = "support", external_id: str = "m1", *, sender: str = "cust-1", text: str = "Hello"
    ) -> Delivered:
        async with self.store.session() as session:
            row = await session.get(Inbox, self.support_id if inbox == "support" else self.sales_id)
        assert row is not None
        return await self.service.deliver(inbound(row, external_id, sender=sender, text=text))


async def build_world(server: LiveServer) -> World:
    store: Store = server.state.store
    support = await make_inbox(store, name="Support")
    sales = await make_inbox(store, name="Sales")
    # Agents without passwords (API tests use tokens), which spares three Argon2 hashes per test.
    async with store.transaction() as tx:
        admin = Agent(email="root@example.test", name="Root", role="admin")
        ann = Agent(email="ann@example.test", name="Ann")
        bob = Agent(email="bob@example.test", name="Bob")
        tx.add_all([admin, ann, bob])
    await add_member(store, support, ann)
    await add_member(store, sales, bob)
    tokens = {
        "admin": await make_token(store, admin),
        "ann": await make_token(store, ann),
        "bob": await make_token(store, bob),
    }
    assert support.id and sales.id and admin.id and ann.id and bob.id
    return World(server, support.id, sales.id, admin.id, ann.id, bob.id, tokens)


async def row_counts(store: Store) -> dict[str, int]:
    """Rows per table of everything a bad request could have written."""
    counts: dict[str, int] = {}
    async with store.session() as session:
        for model in COUNTED:
            counts[model.__name__] = int((await session.execute(select(func.count()).select_from(model))).scalar_one())
    return counts


@contextmanager
def statements(world: World) -> Iterator[list[str]]:
    """Every SQL statement HTTP requests send while the block runs (read and write engines).

    The app's background loops (outbox, snooze) share the engines; only statements issued from a uvicorn
    request task count.
    """
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        task = asyncio.current_task()
        if task is not None and "run_asgi" in task.get_coro().__qualname__:  # type: ignore[union-attr]
            seen.append(statement)

    engines = {world.store.engine.sync_engine, world.store.write_engine.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


def ids(page: dict[str, Any]) -> list[int]:
    """The ids of a list page's items, in order."""
    return [item["id"] for item in page["items"]]
