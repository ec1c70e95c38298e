"""What the report figures are computed from: one `Fact` per conversation (its row, inbox channel, labels and
the timeline read from its messages) for a scope (period, visible inboxes, one inbox, one organisation), and
the business-hours calendar that applies to each inbox.

Read-only. Status history is read from the durable activity lines the service writes ("Resolved by Ann",
"Reopened by Ann") and from customer messages that arrive after a resolution; `timeline` is the one place that
knows this, so a status-history table (workflow branch) can replace it without touching the figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, false, func, or_
from sqlalchemy import select as columns
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox.store.models import (
    Contact,
    Conversation,
    ConversationLabel,
    Identity,
    Inbox,
    Label,
    Message,
    MessageKind,
    Organization,
    OrganizationMember,
)
from inbox.workflow.calendars import calendar_of
from inbox.workflow.hours import Calendar

CHUNK = 500  # conversation ids per `IN (…)` query (SQLite's and asyncpg's parameter limits are far above)


@dataclass(frozen=True, slots=True)
class Scope:
    """Which conversations a report covers: visible inboxes (None: all), optionally one inbox and one org."""

    inbox_ids: frozenset[int] | None = None
    inbox_id: int | None = None
    organization_id: int | None = None


@dataclass(slots=True)
class Timeline:
    """A conversation's history as the reports need it (aware UTC instants)."""

    reply_waits: list[tuple[datetime, datetime]] = field(default_factory=list)  # after the first reply
    replies: int = 0  # agent replies (outgoing messages written by an agent)
    reopened_at: list[datetime] = field(default_factory=list)
    waiting_since: datetime | None = None  # a customer message not answered yet


@dataclass(slots=True)
class Fact:
    id: int
    inbox_id: int
    channel: str
    contact_id: int
    assignee_id: int | None
    team_id: int | None
    status: str
    created_at: datetime
    first_reply_at: datetime | None
    resolved_at: datetime | None
    labels: list[str] = field(default_factory=list)
    timeline: Timeline = field(default_factory=Timeline)


def aware(at: datetime) -> datetime:
    """Stored timestamps are UTC; SQLite hands them back naive."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def timeline(messages: Iterable[tuple[str, str, datetime, str]]) -> Timeline:
    """Replies, reply waits and reopenings from a conversation's messages `(kind, sender_type, created_at,
    body)` in order. A wait starts at the first customer message after an agent reply and ends at the next
    agent reply; the wait before the first reply is the first response, not counted here. A resolution is
    left by a customer message or by an agent's "Reopened"/"Marked pending"/"Snoozed" line."""
    found = Timeline()
    answered_once = False
    resolved = False
    for kind, sender, at, body in messages:
        at = aware(at)
        if kind == MessageKind.INCOMING:
            if resolved:
                found.reopened_at.append(at)
                resolved = False
            if found.waiting_since is None:
                found.waiting_since = at
        elif kind == MessageKind.OUTGOING and sender == "agent":
            found.replies += 1
            if found.waiting_since is not None and answered_once:
                found.reply_waits.append((found.waiting_since, at))
            found.waiting_since = None
            answered_once = True
        elif kind == MessageKind.ACTIVITY:
            if body.startswith("Resolved"):
                resolved = True
            elif resolved and body.startswith(("Reopened", "Marked pending", "Snoozed")):
                found.reopened_at.append(at)
                resolved = False
    return found


def scoped(query: Any, scope: Scope, inbox_column: Any) -> Any:
    """`query` limited to the scope's inboxes (the organisation needs a session: `scope_conversations`)."""
    if scope.inbox_id is not None:
        query = query.where(inbox_column == scope.inbox_id)
    if scope.inbox_ids is not None:
        query = query.where(inbox_column.in_(scope.inbox_ids) if scope.inbox_ids else False)
    return query


def domain_contacts(domains: Sequence[str]) -> Any:
    """A select of the contact ids with an email (the contact's own or an email identity) at one of `domains`."""
    if not domains:
        return select(Contact.id).where(false())

    def matches(column: Any) -> ColumnElement[bool]:
        lowered = func.lower(func.coalesce(column, ""))
        return or_(*[lowered.like(f"%@{_like_escape(domain)}", escape="\\") for domain in domains])

    own = select(Contact.id).where(matches(col(Contact.email)))
    identities = select(Identity.contact_id).where(col(Identity.kind) == "email", matches(col(Identity.value)))
    return own.union(identities)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def load_facts(session: AsyncSession, scope: Scope, *conditions: Any, limit: int | None = None) -> list[Fact]:
    """Facts of the conversations in scope that match `conditions` (on `Conversation` columns), by id."""
    query = columns(
        col(Conversation.id),
        col(Conversation.inbox_id),
        col(Inbox.channel),
        col(Conversation.contact_id),
        col(Conversation.assignee_id),
        col(Conversation.team_id),
        col(Conversation.status),
        col(Conversation.created_at),
        col(Conversation.first_reply_at),
        col(Conversation.resolved_at),
    ).join(Inbox, col(Inbox.id) == col(Conversation.inbox_id))
    query = await scope_conversations(session, query, scope)
    query = query.where(*conditions).order_by(col(Conversation.id))
    rows = (await session.execute(query.limit(limit) if limit is not None else query)).all()
    facts = [
        Fact(
            int(cid),
            int(inbox),
            str(channel),
            int(contact),
            assignee,
            team,
            str(status),
            aware(created),
            aware(reply) if reply else None,
            aware(done) if done else None,
        )
        for cid, inbox, channel, contact, assignee, team, status, created, reply, done in rows
    ]
    by_id = {fact.id: fact for fact in facts}
    ids = list(by_id)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        labels = await session.execute(
            select(ConversationLabel.conversation_id, Label.name)
            .join(Label, col(Label.id) == col(ConversationLabel.label_id))
            .where(col(ConversationLabel.conversation_id).in_(chunk))
        )
        for cid, name in labels:
            by_id[cid].labels.append(str(name))
        messages = await session.execute(
            columns(
                col(Message.conversation_id),
                col(Message.kind),
                col(Message.sender_type),
                col(Message.created_at),
                col(Message.body),
            )
            .where(
                col(Message.conversation_id).in_(chunk),
                col(Message.kind).in_([MessageKind.INCOMING, MessageKind.OUTGOING, MessageKind.ACTIVITY]),
            )
            .order_by(col(Message.conversation_id), col(Message.id))
        )
        grouped: dict[int, list[tuple[str, str, datetime, str]]] = {}
        for cid, kind, sender, at, body in messages:
            grouped.setdefault(cid, []).append((str(kind), str(sender), at, str(body if kind == "activity" else "")))
        for cid, items in grouped.items():
            by_id[cid].timeline = timeline(items)
    for fact in facts:
        fact.labels.sort()
    return facts


async def scope_conversations(session: AsyncSession, query: Any, scope: Scope) -> Any:
    """`query` (over `Conversation`) limited to the scope; an organisation is resolved to its domains first."""
    query = scoped(query, Scope(scope.inbox_ids, scope.inbox_id), col(Conversation.inbox_id))
    if scope.organization_id is not None:
        query = query.where(
            col(Conversation.contact_id).in_(await organization_members(session, scope.organization_id))
        )
    return query


async def organization_members(session: AsyncSession, organization_id: int) -> Any:
    """A subquery of the organisation's contacts: hand-added ones, and those with no manual membership whose
    email domain is one of its domains."""
    domains = (
        await session.execute(select(Organization.domains).where(col(Organization.id) == organization_id))
    ).scalar_one_or_none() or []
    manual = select(OrganizationMember.contact_id).where(col(OrganizationMember.organization_id) == organization_id)
    by_domain = select(Contact.id).where(
        col(Contact.id).in_(domain_contacts([str(domain) for domain in domains])),
        ~col(Contact.id).in_(select(OrganizationMember.contact_id)),
        col(Contact.merged_into_id).is_(None),
    )
    return manual.union(by_domain).scalar_subquery()


async def calendar_for(session: AsyncSession, inbox: Inbox | None) -> Calendar:
    """An inbox's business hours (the calendar its `business_hours_id` names), or 24/7 when it names none."""
    return await calendar_of(session, inbox)


async def calendars(session: AsyncSession, calendar: Calendar | None) -> dict[int, Calendar]:
    """The calendar per inbox id: `calendar` for every inbox when given, else each inbox's own."""
    inboxes = list((await session.execute(select(Inbox))).scalars())
    found: dict[int, Calendar] = {}
    for inbox in inboxes:
        found[int(inbox.id or 0)] = calendar or await calendar_of(session, inbox)
    return found
