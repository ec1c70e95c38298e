"""The service's part for reference data: teams (with members), labels and canned responses.

HTTP handlers validate and call one method here; nothing else writes these tables. A unique-name clash is a
`Conflict` naming the thing. A changed label appends and publishes `label.updated` (deleting one is
`AgentWrites.delete_label`: it takes the label off its conversations).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox.errors import Conflict, Invalid, NotFound
from inbox.read import views
from inbox.realtime.events import EventRecord, EventType
from inbox.service.base import ServiceBase
from inbox.store.models import Agent, CannedResponse, Conversation, Label, Team, TeamMember


async def _get(tx: AsyncSession, model: Any, row_id: int, noun: str) -> Any:
    row = await tx.get(model, row_id)
    if row is None:
        raise NotFound(f"{noun} {row_id} not found")
    return row


async def team_view(session: AsyncSession, team: Team) -> dict[str, Any]:
    members = (await session.execute(select(TeamMember.agent_id).where(col(TeamMember.team_id) == team.id))).scalars()
    return views.team(team, sorted(members))


class CatalogWrites(ServiceBase):
    """Teams, team members, labels and canned responses."""

    @asynccontextmanager
    async def _unique(self, what: str) -> AsyncIterator[AsyncSession]:
        """A transaction whose unique-name clashes become a clear `Conflict`."""
        try:
            async with self.store.transaction() as tx:
                yield tx
        except IntegrityError as exc:
            raise Conflict(f"{what} already exists") from exc

    async def create_team(self, name: str, description: str) -> dict[str, Any]:
        async with self._unique(f"team {name!r}") as tx:
            team = Team(name=name, description=description)
            tx.add(team)
            await tx.flush()
            return await team_view(tx, team)

    async def update_team(self, team_id: int, changes: Mapping[str, Any]) -> dict[str, Any]:
        async with self._unique(f"team {changes.get('name')!r}") as tx:
            team = await _get(tx, Team, team_id, "team")
            for name, value in changes.items():
                setattr(team, name, value)
            await tx.flush()
            return await team_view(tx, team)

    async def delete_team(self, team_id: int) -> None:
        async with self.store.transaction() as tx:
            team = await _get(tx, Team, team_id, "team")
            used = await tx.execute(select(Conversation.id).where(col(Conversation.team_id) == team_id).limit(1))
            if used.first() is not None:
                raise Conflict(f"team {team_id} still has conversations assigned; reassign them first")
            await tx.execute(delete(TeamMember).where(col(TeamMember.team_id) == team_id))
            await tx.delete(team)

    async def add_team_member(self, team_id: int, agent_id: int) -> dict[str, Any]:
        async with self.store.transaction() as tx:
            team = await _get(tx, Team, team_id, "team")
            if await tx.get(Agent, agent_id) is None:
                raise Invalid(f"agent_id: agent {agent_id} does not exist")
            if await tx.get(TeamMember, (team.id, agent_id)) is None:
                tx.add(TeamMember(team_id=team.id, agent_id=agent_id))
                await tx.flush()
            return await team_view(tx, team)

    async def remove_team_member(self, team_id: int, agent_id: int) -> dict[str, Any]:
        async with self.store.transaction() as tx:
            team = await _get(tx, Team, team_id, "team")
            member = await tx.get(TeamMember, (team_id, agent_id))
            if member is None:
                raise NotFound(f"agent {agent_id} is not a member of team {team_id}")
            await tx.delete(member)
            await tx.flush()
            return await team_view(tx, team)

    async def create_label(self, name: str, color: str, description: str) -> dict[str, Any]:
        async with self._unique(f"label {name!r}") as tx:
            label = Label(name=name, color=color, description=description)
            tx.add(label)
        return views.label(label)

    async def update_label(self, label_id: int, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change a label; when it changed, `label.updated` (with `previous_name`) goes to every agent."""
        records: list[EventRecord] = []
        async with self._unique(f"label {changes.get('name')!r}") as tx:
            label = await _get(tx, Label, label_id, "label")
            before = views.label(label)
            for name, value in changes.items():
                setattr(label, name, value)
            if views.label(label) != before:
                await tx.flush()  # a name clash fails here, before the event
                data = {**views.label(label), "previous_name": before["name"]}
                records = await self._append(tx, [(EventType.LABEL_UPDATED, data)])
        await self._publish(records)
        return views.label(label)

    async def create_canned(self, short_code: str, content: str) -> dict[str, Any]:
        async with self._unique(f"canned response {short_code!r}") as tx:
            row = CannedResponse(short_code=short_code, content=content)
            tx.add(row)
        return views.canned(row)

    async def update_canned(self, canned_id: int, changes: Mapping[str, Any]) -> dict[str, Any]:
        async with self._unique(f"canned response {changes.get('short_code')!r}") as tx:
            row = await _get(tx, CannedResponse, canned_id, "canned response")
            for name, value in changes.items():
                setattr(row, name, value)
        return views.canned(row)

    async def delete_canned(self, canned_id: int) -> None:
        async with self.store.transaction() as tx:
            await tx.delete(await _get(tx, CannedResponse, canned_id, "canned response"))
