"""Rows the tests need before the service can act: inboxes, agents, memberships, labels."""

from __future__ import annotations

import secrets

from channels.base import Identity, IdentityKind, Inbound
from inbox.auth import hash_password, new_api_token
from inbox.store.engine import Store
from inbox.store.models import Agent, ApiToken, Inbox, InboxMember, Label


async def make_inbox(store: Store, *, channel: str = "api", name: str = "Support", **settings: object) -> Inbox:
    async with store.transaction() as tx:
        inbox = Inbox(
            name=name,
            channel=channel,
            settings=dict(settings),
            public_key=secrets.token_urlsafe(12),
            secret=secrets.token_urlsafe(24),
        )
        tx.add(inbox)
    return inbox


async def make_agent(
    store: Store, *, email: str = "ann@example.test", name: str = "Ann", role: str = "agent", password: str = "pw"
) -> Agent:
    async with store.transaction() as tx:
        agent = Agent(email=email, name=name, role=role, password_hash=hash_password(password))
        tx.add(agent)
    return agent


async def add_member(store: Store, inbox: Inbox, agent: Agent) -> None:
    async with store.transaction() as tx:
        tx.add(InboxMember(inbox_id=inbox.id, agent_id=agent.id))  # type: ignore[arg-type]


async def make_label(store: Store, name: str) -> Label:
    async with store.transaction() as tx:
        label = Label(name=name)
        tx.add(label)
    return label


def inbound(
    inbox: Inbox, external_id: str = "m1", *, text: str = "Hello", sender: str = "cust-1", thread: str | None = None
) -> Inbound:
    assert inbox.id is not None
    return Inbound(
        inbox_id=inbox.id,
        external_id=external_id,
        thread_key=thread or f"sender:{sender}",
        sender=Identity(IdentityKind.EXTERNAL, f"{inbox.id}:{sender}", name="Carol Customer"),
        text=text,
    )


async def make_token(store: Store, agent: Agent, *, name: str = "test") -> str:
    """A fresh API token for `agent` (the plain token; only its hash is stored)."""
    token, token_hash = new_api_token()
    async with store.transaction() as tx:
        tx.add(ApiToken(agent_id=agent.id, token_hash=token_hash, name=name))  # type: ignore[arg-type]
    return token
