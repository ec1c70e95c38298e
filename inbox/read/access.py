"""What an agent may see: admins see every inbox; supervisors the inboxes of their teams (theirs and their
teammates'); agents the inboxes they are members of. The rules themselves are `inbox.read.permissions`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox.errors import NotFound
from inbox.read.permissions import Membership, sees_all_inboxes, sees_team_inboxes
from inbox.store.engine import Store
from inbox.store.models import Agent, Conversation, InboxMember, TeamMember


async def memberships(store: Store, agent: Agent, db: AsyncSession | None = None) -> dict[int, Membership] | None:
    """How `agent` relates to each inbox it may see, or None for "every inbox" (admins)."""
    if sees_all_inboxes(agent.role):
        return None
    async with store.reading(db) as session:
        own = await session.execute(select(InboxMember.inbox_id).where(col(InboxMember.agent_id) == agent.id))
        found = {inbox_id: Membership.MEMBER for inbox_id in own.scalars()}
        if sees_team_inboxes(agent.role):
            teams = select(TeamMember.team_id).where(col(TeamMember.agent_id) == agent.id)
            mates = select(TeamMember.agent_id).where(col(TeamMember.team_id).in_(teams))
            rows = await session.execute(
                select(InboxMember.inbox_id).where(col(InboxMember.agent_id).in_(mates)).distinct()
            )
            for inbox_id in rows.scalars():
                found.setdefault(inbox_id, Membership.TEAM)
        return found


async def membership(store: Store, agent: Agent, inbox_id: int) -> Membership:
    """How `agent` relates to one inbox (admins: as a member of every inbox)."""
    found = await memberships(store, agent)
    if found is None:
        return Membership.MEMBER
    return found.get(inbox_id, Membership.NONE)


async def inbox_ids(store: Store, agent: Agent, db: AsyncSession | None = None) -> frozenset[int] | None:
    """The inboxes `agent` may see, or None for "all" (admins); `db`: the request's read session, if any."""
    found = await memberships(store, agent, db)
    return None if found is None else frozenset(found)


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
