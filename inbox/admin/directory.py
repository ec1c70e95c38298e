"""Directory: the writer of who works where — agents, inboxes and their members, API tokens.

Each change that decides what a connected agent may see (inbox membership, role, deactivation) commits in
the same transaction as its event (`inbox.updated` / `agent.updated`, appended through the service), then
the event is published so every hub updates its subscriptions. It checks input, not who is asking:
callers (the HTTP API, the CLI, the setup page) decide who may do what. Every change also adds its audit
entry (`inbox.store.audit.record`) to the same transaction; the actor is whoever the request is acting as.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox.auth import hash_password, new_api_token, verify_password
from inbox.csat.survey import check_inbox_settings
from inbox.errors import Conflict, Invalid, NotFound
from inbox.gateway import quarantine
from inbox.gateway.outbox import CORE_SETTINGS
from inbox.portal import settings as acknowledgement_settings
from inbox.read import continuity, views
from inbox.realtime.events import EventRecord, EventType
from inbox.service import UNSET, InboxService
from inbox.store import audit
from inbox.store.engine import SETUP_LOCK_KEY
from inbox.store.models import Agent, ApiToken, Conversation, Inbox, InboxMember, Message, Role, TeamMember, key
from inbox.workflow import calendars as workflow_calendars

# A channel's check of the settings an admin saves for one of its inboxes (without the core's own keys,
# `CORE_SETTINGS`): raises ValueError (the channel's SettingsError) with a message naming the key. The
# composition root (inbox/app.py) registers one per channel kind; the core never imports a channel.
SettingsValidator = Callable[[Mapping[str, Any]], None]

MIN_PASSWORD_LENGTH = 10
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def check_name(name: str, field: str = "name") -> str:
    """A name people will read (agent, inbox, token): trimmed; control characters such as line breaks refused
    (an agent's name goes into outgoing mail's `From:` display name)."""
    name = name.strip()
    if any(unicodedata.category(char) == "Cc" or char in "\u2028\u2029" for char in name):
        raise Invalid(f"{field}: control characters (such as line breaks) are not allowed")
    return name


class ChannelKind(StrEnum):
    """The channels an inbox can be of."""

    API = "api"
    WEBCHAT = "webchat"
    EMAIL = "email"
    TELEGRAM = "telegram"
    WHATSAPP = "whatsapp"
    VK = "vk"
    PHONE = "phone"


def check_password(password: str, field: str = "password") -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"{field}: must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 1024:
        raise Invalid(f"{field}: must be at most 1024 characters")
    return password


def normalise_email(email: str, field: str = "email") -> str:
    email = email.strip().lower()
    if not EMAIL.match(email) or len(email) > 320:
        raise Invalid(f"{field}: must be an email address")
    return email


@dataclass(frozen=True, slots=True)
class AgentChanges:
    """A partial update of an agent; fields left `UNSET` are not touched."""

    name: Any = UNSET
    email: Any = UNSET
    role: Any = UNSET
    active: Any = UNSET
    availability: Any = UNSET
    password: Any = UNSET


class Directory:
    """Agents, inboxes, memberships and tokens; inbox and agent changes publish their events."""

    def __init__(self, service: InboxService, validators: Mapping[str, SettingsValidator] | None = None) -> None:
        self.service = service
        self.store = service.store
        self.validators: Mapping[str, SettingsValidator] = validators or {}

    def check_settings(self, channel: str, settings: Mapping[str, Any]) -> None:
        """The channel's own check of an inbox's settings (when one is registered): 422 naming the key."""
        validator = self.validators.get(channel)
        if validator is None:
            return
        try:
            validator(channel_settings(settings))
        except ValueError as exc:
            raise Invalid(str(exc)) from exc

    # ── agents ──────────────────────────────────────────────────────────────────────────────
    async def create_agent(
        self, *, email: str, name: str, role: str, password: str, only_if_none: bool = False
    ) -> Agent:
        """Add an agent; with `only_if_none` it refuses (Conflict) once any agent exists (first-admin setup)."""
        email = normalise_email(email)
        if role not in set(Role):
            raise Invalid(f"role: must be one of {', '.join(Role)}")
        check_password(password)
        password_hash = hash_password(password)
        try:
            async with self.store.transaction() as tx:
                # Taken first so two concurrent first-admin setups on PostgreSQL cannot both pass the check.
                await self.store.exclusive(tx, SETUP_LOCK_KEY)
                if only_if_none and await _count(tx, Agent) > 0:
                    raise Conflict("the first admin was already created")
                await self._email_free(tx, email)
                agent = Agent(email=email, name=check_name(name), role=role, password_hash=password_hash)
                tx.add(agent)
                await tx.flush()
                await audit.record(tx, "agent.created", target_type="agent", target_id=agent.id, after=_audited(agent))
                records = await self._agent_event(tx, agent)
        except IntegrityError as exc:
            raise Conflict(f"email: an agent with email {email} already exists") from exc
        await self.service.publish(records)
        return agent

    async def update_agent(self, agent_id: int, changes: AgentChanges) -> Agent:
        """Apply a partial update; a new password or deactivation ends the agent's sessions everywhere."""
        password_hash = None
        if changes.password is not UNSET:
            password_hash = hash_password(check_password(changes.password))
        async with self.store.transaction() as tx:
            agent: Agent = await _get(tx, Agent, agent_id, "agent")
            before = _audited(agent)
            if changes.name is not UNSET:
                agent.name = check_name(changes.name)
            if changes.email is not UNSET:
                email = normalise_email(changes.email)
                if email != agent.email:
                    await self._email_free(tx, email)
                    agent.email = email
            if changes.availability is not UNSET:
                agent.availability = changes.availability
            demoted = changes.role is not UNSET and changes.role != Role.ADMIN and agent.role == Role.ADMIN
            deactivated = changes.active is False and agent.active
            if (demoted or deactivated) and agent.role == Role.ADMIN and await self._active_admins(tx) <= 1:
                raise Conflict(f"agent {agent_id} is the last active admin; promote another admin first")
            if changes.role is not UNSET:
                agent.role = changes.role
            if changes.active is not UNSET:
                agent.active = changes.active
            if password_hash is not None or deactivated:
                agent.session_version += 1
            if password_hash is not None:
                agent.password_hash = password_hash
            await tx.flush()
            await _audit_agent(tx, agent, before, password_changed=password_hash is not None)
            records = await self._agent_event(tx, agent)
        await self.service.publish(records)
        return agent

    async def change_own_password(self, agent_id: int, current: str, new: str) -> Agent:
        async with self.store.session() as session:
            agent: Agent = await _get(session, Agent, agent_id, "agent")
        if not verify_password(agent.password_hash, current):
            raise Invalid("current_password: does not match")
        return await self.update_agent(agent_id, AgentChanges(password=new))

    async def end_sessions(self, agent_id: int) -> None:
        """Invalidate every session cookie of the agent (logout); no event: nothing others see changed."""
        async with self.store.transaction() as tx:
            agent = await _get(tx, Agent, agent_id, "agent")
            agent.session_version += 1

    async def agent_view(self, agent: Agent, *, with_email: bool = True) -> dict[str, Any]:
        async with self.store.session() as session:
            return await self._agent_data(session, agent, with_email=with_email)

    async def _agent_data(self, session: AsyncSession, agent: Agent, *, with_email: bool = True) -> dict[str, Any]:
        team_ids = (
            await session.execute(select(TeamMember.team_id).where(col(TeamMember.agent_id) == agent.id))
        ).scalars()
        inbox_ids = (
            await session.execute(select(InboxMember.inbox_id).where(col(InboxMember.agent_id) == agent.id))
        ).scalars()
        data = views.agent(agent, team_ids=sorted(team_ids), inbox_ids=sorted(inbox_ids))
        if not with_email:
            data.pop("email")
        return data

    async def _agent_event(self, tx: AsyncSession, agent: Agent) -> list[EventRecord]:
        data = await self._agent_data(tx, agent)
        return await self.service.append(tx, [(EventType.AGENT_UPDATED, data)])

    async def _email_free(self, tx: AsyncSession, email: str) -> None:
        taken = (await tx.execute(select(Agent.id).where(col(Agent.email) == email))).first()
        if taken is not None:
            raise Conflict(f"email: an agent with email {email} already exists")

    async def _active_admins(self, tx: AsyncSession) -> int:
        query = select(func.count()).select_from(Agent).where(col(Agent.role) == Role.ADMIN, col(Agent.active))
        return int((await tx.execute(query)).scalar_one())

    # ── inboxes ─────────────────────────────────────────────────────────────────────────────
    async def create_inbox(self, *, name: str, channel: str, settings: dict[str, Any]) -> dict[str, Any]:
        if channel not in set(ChannelKind):
            raise Invalid(f"channel: must be one of {', '.join(ChannelKind)}")
        check_inbox_settings(settings)
        acknowledgement_settings.check(settings)
        async with self.store.transaction() as tx:
            await _check_continuity(tx, channel, settings)
            await workflow_calendars.check_inbox_settings(tx, settings)
            self.check_settings(channel, settings)  # the core's own keys first, then the channel's
            inbox = Inbox(
                name=check_name(name),
                channel=channel,
                settings=settings,
                public_key="pk_" + secrets.token_urlsafe(18),
                secret=secrets.token_urlsafe(32),
            )
            tx.add(inbox)
            await tx.flush()
            await audit.record(
                tx, "inbox.created", target_type="inbox", target_id=inbox.id, after={**_inbox_audited(inbox)}
            )
            view, records = await self._inbox_event(tx, inbox)
        await self.service.publish(records)
        return view

    async def update_inbox(
        self, inbox_id: int, *, name: Any = UNSET, settings: Any = UNSET, rotate_secret: bool = False
    ) -> dict[str, Any]:
        async with self.store.transaction() as tx:
            inbox = await _get(tx, Inbox, inbox_id, "inbox")
            before = _inbox_audited(inbox)
            if name is not UNSET:
                inbox.name = check_name(name)
            if settings is not UNSET:
                await _check_continuity(tx, inbox.channel, settings)
                check_inbox_settings(settings)
                acknowledgement_settings.check(settings)
                await workflow_calendars.check_inbox_settings(tx, settings)
                self.check_settings(inbox.channel, settings)
                inbox.settings = settings
            if rotate_secret:
                inbox.secret = secrets.token_urlsafe(32)
            await tx.flush()
            old, new = audit.changed(before, _inbox_audited(inbox))
            if rotate_secret:
                old["secret"], new["secret"] = "old", "rotated"  # masked: the log says only that it changed
            await audit.record(tx, "inbox.updated", target_type="inbox", target_id=inbox_id, before=old, after=new)
            view, records = await self._inbox_event(tx, inbox)
        await self.service.publish(records)
        return view

    async def delete_inbox(self, inbox_id: int) -> None:
        """Delete an inbox that has no conversations (those are never thrown away by an admin click)."""
        async with self.store.transaction() as tx:
            inbox = await _get(tx, Inbox, inbox_id, "inbox")
            used = await tx.execute(select(Conversation.id).where(col(Conversation.inbox_id) == inbox_id).limit(1))
            if used.first() is not None:
                raise Conflict(f"inbox {inbox_id} has conversations and cannot be deleted")
            await _check_not_continuing(tx, inbox_id)
            await quarantine.before_inbox_deleted(tx, inbox_id)  # mail in quarantine is not thrown away either
            view = _public(views.inbox(inbox, []))
            await audit.record(
                tx, "inbox.deleted", target_type="inbox", target_id=inbox_id, before=_inbox_audited(inbox)
            )
            await tx.execute(delete(InboxMember).where(col(InboxMember.inbox_id) == inbox_id))
            await tx.delete(inbox)
            records = await self.service.append(
                tx, [(EventType.INBOX_UPDATED, {**view, "deleted": True})], inbox_id=inbox_id
            )
        await self.service.publish(records)

    async def add_member(self, inbox_id: int, agent_id: int) -> dict[str, Any]:
        async with self.store.transaction() as tx:
            inbox = await _get(tx, Inbox, inbox_id, "inbox")
            agent = await tx.get(Agent, agent_id)
            if agent is None:
                raise Invalid(f"agent_id: agent {agent_id} does not exist")
            if await tx.get(InboxMember, (inbox_id, agent_id)) is None:
                tx.add(InboxMember(inbox_id=inbox_id, agent_id=agent_id))
                await tx.flush()
                await audit.record(
                    tx, "inbox.member_added", target_type="inbox", target_id=inbox_id, after={"agent_id": agent_id}
                )
            view, records = await self._inbox_event(tx, inbox)
        await self.service.publish(records)
        return view

    async def remove_member(self, inbox_id: int, agent_id: int) -> dict[str, Any]:
        async with self.store.transaction() as tx:
            inbox = await _get(tx, Inbox, inbox_id, "inbox")
            member = await tx.get(InboxMember, (inbox_id, agent_id))
            if member is None:
                raise NotFound(f"agent {agent_id} is not a member of inbox {inbox_id}")
            await tx.delete(member)
            await tx.flush()
            await audit.record(
                tx, "inbox.member_removed", target_type="inbox", target_id=inbox_id, before={"agent_id": agent_id}
            )
            view, records = await self._inbox_event(tx, inbox)
        await self.service.publish(records)
        return view

    async def inbox_views(self, inboxes: Sequence[Inbox], *, with_secret: bool) -> list[dict[str, Any]]:
        """Views of `inboxes` with their members, in one query."""
        ids = [key(row) for row in inboxes]
        async with self.store.session() as session:
            members = await _members(session, ids)
        return [views.inbox(row, members.get(key(row), []), with_secret=with_secret) for row in inboxes]

    async def _inbox_event(self, tx: AsyncSession, inbox: Inbox) -> tuple[dict[str, Any], list[EventRecord]]:
        members = await _members(tx, [key(inbox)])
        view = views.inbox(inbox, members.get(key(inbox), []), with_secret=True)
        records = await self.service.append(tx, [(EventType.INBOX_UPDATED, _public(view))], inbox_id=inbox.id)
        return view, records

    # ── API tokens ──────────────────────────────────────────────────────────────────────────
    async def create_token(self, agent_id: int, name: str) -> tuple[ApiToken, str]:
        """A new token for the agent: the row, and the token itself (shown once, stored hashed)."""
        token, token_hash = new_api_token()
        async with self.store.transaction() as tx:
            agent = await _get(tx, Agent, agent_id, "agent")
            if not agent.active:
                raise Conflict(f"agent {agent_id} is deactivated")
            row = ApiToken(agent_id=agent_id, token_hash=token_hash, name=check_name(name))
            tx.add(row)
            await tx.flush()
            await audit.record(
                tx,
                "token.created",
                target_type="token",
                target_id=row.id,
                after={"agent_id": agent_id, "name": row.name},
            )
        return row, token

    async def delete_token(self, token_id: int, *, owner_id: int | None) -> None:
        """Revoke a token; with `owner_id` only that agent's own token (others read as not found)."""
        async with self.store.transaction() as tx:
            row = await tx.get(ApiToken, token_id)
            if row is None or (owner_id is not None and row.agent_id != owner_id):
                raise NotFound(f"token {token_id} not found")
            await tx.delete(row)
            await audit.record(
                tx,
                "token.revoked",
                target_type="token",
                target_id=token_id,
                before={"agent_id": row.agent_id, "name": row.name},
            )


def _audited(agent: Agent) -> dict[str, Any]:
    """What the audit log shows of an agent (never the password hash)."""
    return {"email": agent.email, "name": agent.name, "role": agent.role, "active": agent.active}


async def _audit_agent(tx: AsyncSession, agent: Agent, before: dict[str, Any], *, password_changed: bool) -> None:
    """One entry for a changed agent: `agent.role_changed` when the role changed, else `agent.updated`;
    none for a change of availability alone (agents flip it all day; it grants nothing)."""
    old, new = audit.changed(before, _audited(agent))
    if password_changed:
        old["password"], new["password"] = "old", "new"  # masked: the log says only that it changed
    if not new:
        return
    action = "agent.role_changed" if "role" in new else "agent.updated"
    await audit.record(tx, action, target_type="agent", target_id=agent.id, before=old, after=new)


def _inbox_audited(inbox: Inbox) -> dict[str, Any]:
    """What the audit log shows of an inbox: name, channel, settings (secrets in them masked by the log)."""
    return {"name": inbox.name, "channel": inbox.channel, "settings": dict(inbox.settings)}


def channel_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """What a channel sees of an inbox's settings: all but the keys the core reads itself."""
    return {name: value for name, value in settings.items() if name not in CORE_SETTINGS}


def _public(view: dict[str, Any]) -> dict[str, Any]:
    """An inbox as the stream carries it to every member: no secret and no settings (they may hold
    credentials); admins fetch those over the API."""
    return {name: value for name, value in view.items() if name not in ("secret", "settings")}


async def _get(session: AsyncSession, model: Any, row_id: Any, noun: str) -> Any:
    row = await session.get(model, row_id)
    if row is None:
        raise NotFound(f"{noun} {row_id} not found")
    return row


async def _count(session: AsyncSession, model: Any) -> int:
    return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def _members(session: AsyncSession, inbox_ids: Sequence[int]) -> dict[int, list[int]]:
    if not inbox_ids:
        return {}
    rows = await session.execute(
        select(InboxMember.inbox_id, InboxMember.agent_id)
        .where(col(InboxMember.inbox_id).in_(inbox_ids))
        .order_by(col(InboxMember.agent_id))
    )
    return dict(views.group((inbox_id, agent_id) for inbox_id, agent_id in rows.all()))


async def any_agent(store: Any) -> bool:
    """Whether the first agent exists yet (the setup page is open until then)."""
    async with store.session() as session:
        return (await session.execute(select(Agent.id).limit(1))).first() is not None


async def _check_continuity(tx: AsyncSession, channel: str, settings: Any) -> None:
    """Email continuity settings of a chat inbox must name an existing email inbox (inbox.read.continuity)."""
    if not isinstance(settings, dict):
        return
    target = settings.get(continuity.INBOX_KEY)
    found: dict[int, str] = {}
    if isinstance(target, int) and not isinstance(target, bool):
        row = await tx.get(Inbox, target)
        if row is not None:
            found[target] = row.channel
    continuity.check_settings(channel, settings, found)


async def _check_not_continuing(tx: AsyncSession, inbox_id: int) -> None:
    """An email inbox that continues chats (named by a chat inbox, or holding their mail) stays."""
    chats = (await tx.execute(select(Inbox).where(col(Inbox.channel) == "webchat"))).scalars()
    for chat in chats:
        if continuity.email_inbox_of(chat.settings) == inbox_id:
            raise Conflict(f"inbox {inbox_id} continues the chats of inbox {chat.id} by email and cannot be deleted")
    carried = await tx.execute(select(Message.id).where(col(Message.inbox_id) == inbox_id).limit(1))
    if carried.first() is not None:
        raise Conflict(f"inbox {inbox_id} carried messages of other conversations and cannot be deleted")
