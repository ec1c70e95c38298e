"""KPIs a lead trusts: first response, next response (reply wait) and resolution times — count, average,
median, p90 — on the wall clock and in business hours; created / resolved / reopened; replies per resolution;
the same per agent, team, inbox, channel and label; volume by weekday × hour; CSAT comments.

Definitions (also in docs/REPORTS.md): times are for conversations *created* in the period; `resolved` counts
resolutions in the period (the latest one of each conversation), `reopened` every reopening in the period.
Business hours: the calendar passed in, else each inbox's `business_hours` setting, else 24/7. Read-only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_
from sqlalchemy import select as columns
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox.reports.facts import Fact, Scope, aware, calendars, load_facts, organization_members, scoped
from inbox.reports.summary import Durations
from inbox.store.engine import Store
from inbox.store.models import Agent, Contact, Conversation, CsatSurvey, Inbox, Team
from inbox.workflow.hours import ALWAYS_OPEN, Calendar

DIMENSIONS = ("agent", "team", "inbox", "channel", "label")
Spans = list[tuple[datetime, datetime, Calendar]]


def times(spans: Spans) -> dict[str, Any]:
    """Durations of (start, end, calendar) spans on both clocks."""
    return {
        "wall": Durations.of([(end - start).total_seconds() for start, end, _ in spans]).as_dict(),
        "business": Durations.of([cal.business_seconds(start, end) for start, end, cal in spans]).as_dict(),
    }


def figures(facts: Sequence[Fact], cals: dict[int, Calendar], start: datetime, end: datetime) -> dict[str, Any]:
    """Every KPI of a set of facts for the period [start, end)."""
    cohort = [fact for fact in facts if start <= fact.created_at < end]
    first: Spans = []
    waits: Spans = []
    resolution: Spans = []
    for fact in cohort:
        cal = cals.get(fact.inbox_id, ALWAYS_OPEN)
        if fact.first_reply_at is not None:
            first.append((fact.created_at, fact.first_reply_at, cal))
        if fact.resolved_at is not None:
            resolution.append((fact.created_at, fact.resolved_at, cal))
        waits.extend((asked, answered, cal) for asked, answered in fact.timeline.reply_waits)
    resolved = [fact for fact in facts if fact.resolved_at is not None and start <= fact.resolved_at < end]
    reopened = sum(1 for fact in facts for at in fact.timeline.reopened_at if start <= at < end)
    replies = sum(fact.timeline.replies for fact in resolved)
    return {
        "created": len(cohort),
        "resolved": len(resolved),
        "reopened": reopened,
        "replies_per_resolution": round(replies / len(resolved), 2) if resolved else None,
        "first_response": times(first),
        "next_response": times(waits),
        "resolution": times(resolution),
    }


def keys_of(dimension: str) -> Callable[[Fact], Iterable[Any]]:
    """The group keys of a fact along a dimension (a conversation counts once per label)."""
    return {
        "agent": lambda fact: [fact.assignee_id],
        "team": lambda fact: [fact.team_id],
        "inbox": lambda fact: [fact.inbox_id],
        "channel": lambda fact: [fact.channel],
        "label": lambda fact: fact.labels or [None],
    }[dimension]


def grouped(
    facts: Sequence[Fact],
    cals: dict[int, Calendar],
    start: datetime,
    end: datetime,
    dimension: str,
    names: dict[Any, str],
) -> list[dict[str, Any]]:
    """KPI rows per group, busiest first; the group of "none" (unassigned, unlabelled…) has key None."""
    groups: dict[Any, list[Fact]] = {}
    keys = keys_of(dimension)
    for fact in facts:
        for value in keys(fact):
            groups.setdefault(value, []).append(fact)
    rows = [
        {
            "key": value,
            "name": names.get(value, str(value)) if value is not None else "(none)",
            **figures(items, cals, start, end),
        }
        for value, items in groups.items()
    ]
    rows = [row for row in rows if row["created"] or row["resolved"] or row["reopened"]]
    return sorted(rows, key=lambda row: (-row["created"], -row["resolved"], str(row["name"])))


def heatmap(facts: Sequence[Fact], zone: ZoneInfo, start: datetime, end: datetime) -> list[list[int]]:
    """Conversations created per local weekday (0 = Monday) × hour of day."""
    cells = [[0] * 24 for _ in range(7)]
    for fact in facts:
        if start <= fact.created_at < end:
            local = fact.created_at.astimezone(zone)
            cells[local.weekday()][local.hour] += 1
    return cells


def period_condition(start: datetime, end: datetime) -> Any:
    """Conversations that can matter to a period: created in it, or touched (resolved, reopened) since it began."""
    created = col(Conversation.created_at)
    return (created < end) & or_(
        created >= start,
        col(Conversation.updated_at) >= start,
        col(Conversation.last_activity_at) >= start,
        col(Conversation.resolved_at) >= start,
    )


async def names(session: AsyncSession) -> dict[str, dict[Any, str]]:
    """Display names of agents, teams and inboxes by id (channels and labels name themselves)."""
    return {
        "agent": {i: str(n) for i, n in await session.execute(select(Agent.id, Agent.name))},
        "team": {i: str(n) for i, n in await session.execute(select(Team.id, Team.name))},
        "inbox": {i: str(n) for i, n in await session.execute(select(Inbox.id, Inbox.name))},
        "channel": {},
        "label": {},
    }


async def csat_comments(
    session: AsyncSession, scope: Scope, start: datetime, end: datetime, limit: int = 20
) -> dict[str, list[dict[str, Any]]]:
    """Answered surveys with a comment in the period: the newest first, and the lowest ratings first."""
    query = scoped(
        columns(
            col(CsatSurvey.conversation_id),
            col(CsatSurvey.rating),
            col(CsatSurvey.comment),
            col(CsatSurvey.responded_at),
            col(CsatSurvey.agent_id),
            col(Agent.name),
            col(Contact.name),
        )
        .join(Conversation, col(Conversation.id) == col(CsatSurvey.conversation_id))
        .join(Contact, col(Contact.id) == col(Conversation.contact_id))
        .outerjoin(Agent, col(Agent.id) == col(CsatSurvey.agent_id))
        .where(
            col(CsatSurvey.created_at) >= start,
            col(CsatSurvey.created_at) < end,
            col(CsatSurvey.rating).is_not(None),
            col(CsatSurvey.comment) != "",
        ),
        scope,
        col(CsatSurvey.inbox_id),
    )
    if scope.organization_id is not None:
        query = query.where(
            col(Conversation.contact_id).in_(await organization_members(session, scope.organization_id))
        )

    def row(found: Any) -> dict[str, Any]:
        cid, rating, comment, at, agent_id, agent, contact = found
        return {
            "conversation_id": cid,
            "rating": rating,
            "comment": comment,
            "responded_at": aware(at).isoformat() if at else None,
            "agent_id": agent_id,
            "agent": agent or "",
            "contact": contact or "",
        }

    newest = (
        await session.execute(
            query.order_by(col(CsatSurvey.responded_at).desc(), col(CsatSurvey.id).desc()).limit(limit)
        )
    ).all()
    lowest = (
        await session.execute(
            query.order_by(
                col(CsatSurvey.rating), col(CsatSurvey.responded_at).desc(), col(CsatSurvey.id).desc()
            ).limit(limit)
        )
    ).all()
    return {"newest": [row(r) for r in newest], "lowest": [row(r) for r in lowest]}


async def report(
    store: Store,
    *,
    start: datetime,
    end: datetime,
    scope: Scope,
    calendar: Calendar | None = None,
    zone: ZoneInfo | None = None,
) -> dict[str, Any]:
    """The KPI block of the summary: totals, per-dimension rows, the weekday × hour volume, CSAT comments."""
    zone = zone or ZoneInfo("UTC")
    async with store.session() as session:
        cals = await calendars(session, calendar)
        facts = await load_facts(session, scope, period_condition(start, end))
        labels = await names(session)
        comments = await csat_comments(session, scope, start, end)
    return {
        "kpis": {
            "calendar": calendar.name if calendar is not None else "per inbox (its business hours, else 24/7)",
            **figures(facts, cals, start, end),
            "by": {
                dimension: grouped(facts, cals, start, end, dimension, labels[dimension]) for dimension in DIMENSIONS
            },
        },
        "volume_by_hour": {"timezone": zone.key, "weekdays": heatmap(facts, zone, start, end)},
        "csat_comments": comments,
    }
