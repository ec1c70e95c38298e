"""What an agent may see: admins see every inbox; agents see the inboxes they are members of."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox.errors import NotFound
from inbox.store.engine import Store
from inbox.store.models import Agent, Conversation, InboxMember


async def inbox_ids(store: Store, agent: Agent, db: AsyncSession | None = None) -> frozenset[int] | None:
    """The inboxes `agent` may see, or None for "all" (admins); `db`: the request's read session, if any."""
    if agent.role == "admin":
        return None
    async with store.reading(db) as session:
        rows = await session.execute(select(InboxMember.inbox_id).where(col(InboxMember.agent_id) == agent.id))
        return frozenset(rows.scalars())


async def may_see_inbox(store: Store, agent: Agent, inbox_id: int) -> bool:
    visible = await inbox_ids(store, agent)
    return visible is None or inbox_id in visible


async def conversation(store: Store, agent: Agent, conversation_id: int) -> Conversation:
    """The conversation if `agent` may see it; 404 otherwise (we do not reveal that it exists)."""
    async with store.session() as session:
        row = await session.get(Conversation, conversation_id)
    if row is None or not await may_see_inbox(store, agent, row.inbox_id):
        raise NotFound(f"conversation {conversation_id} not found")
    return row
