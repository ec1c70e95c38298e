"""A small world for the HTTP API tests: two inboxes, an admin and one agent in each inbox, with tokens,
plus a live server with small body and attachment limits and a row counter for "nothing was written"."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import func, select

from channels.base import Delivered
from inbox.models import (
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
from inbox.service import InboxService
from inbox.store import Store
from tests.factories import add_member, inbound, make_agent, make_inbox, make_token
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
    admin = await make_agent(store, email="root@example.test", name="Root", role="admin")
    ann = await make_agent(store, email="ann@example.test", name="Ann")
    bob = await make_agent(store, email="bob@example.test", name="Bob")
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
