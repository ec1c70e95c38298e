"""Support metrics over a time range: volumes, first-response and resolution times, workload, label trends.

Read-only queries; the numbers are computed from stored timestamps, so they can be recomputed at any time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from inbox.clock import utcnow
from inbox.csat.survey import SATISFIED
from inbox.reports.facts import Scope, organization_members
from inbox.reports.facts import scoped as scope_inboxes
from inbox.store.engine import Store
from inbox.store.models import (
    Agent,
    Conversation,
    ConversationLabel,
    CsatSurvey,
    Inbox,
    Label,
    Message,
    MessageKind,
    Status,
)


@dataclass(frozen=True, slots=True)
class Durations:
    """Summary of a set of durations, in seconds."""

    count: int
    average: float | None
    median: float | None
    p90: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Durations:
        if not values:
            return cls(0, None, None, None)
        ordered = sorted(values)
        return cls(len(ordered), sum(ordered) / len(ordered), _percentile(ordered, 0.5), _percentile(ordered, 0.9))

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "average_seconds": _round(self.average),
            "median_seconds": _round(self.median),
            "p90_seconds": _round(self.p90),
        }


def _percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


async def summary(
    store: Store,
    *,
    start: datetime,
    end: datetime,
    inbox_ids: frozenset[int] | None = None,
    inbox_id: int | None = None,
    scope: Scope | None = None,
) -> dict[str, Any]:
    """Metrics for conversations created in [start, end), limited to the inboxes the caller may see (and, with a
    `scope`, to one organisation's contacts)."""
    scope = scope or Scope(inbox_ids, inbox_id)

    created = col(Conversation.created_at)
    async with store.session() as session:
        members = (
            await organization_members(session, scope.organization_id) if scope.organization_id is not None else None
        )

        def scoped(query: Any, inbox_column: Any, conversation_column: Any = None) -> Any:
            query = scope_inboxes(query, scope, inbox_column)
            if members is not None:
                # Rows that belong to a conversation (messages, surveys) or are one: of the organisation's contacts.
                target = conversation_column if conversation_column is not None else col(Conversation.id)
                query = query.where(
                    target.in_(select(Conversation.id).where(col(Conversation.contact_id).in_(members)))
                )
            return query

        rows = (
            await session.execute(
                scoped(
                    select(
                        Conversation.created_at,
                        Conversation.first_reply_at,
                        Conversation.resolved_at,
                        Conversation.inbox_id,
                    ).where(created >= start, created < end),
                    col(Conversation.inbox_id),
                )
            )
        ).all()
        messages = (
            await session.execute(
                scoped(
                    select(Message.kind, func.count())
                    .where(
                        col(Message.created_at) >= start,
                        col(Message.created_at) < end,
                        col(Message.sender_type) != "system",  # survey messages are not replies
                    )
                    .group_by(col(Message.kind)),
                    col(Message.inbox_id),
                    col(Message.conversation_id),
                )
            )
        ).all()
        workload = (
            await session.execute(
                scoped(
                    select(Agent.id, Agent.name, func.count(col(Conversation.id)))
                    .join(Conversation, col(Conversation.assignee_id) == col(Agent.id))
                    .where(col(Conversation.status).in_([Status.OPEN, Status.PENDING]))
                    .group_by(col(Agent.id), col(Agent.name))
                    .order_by(func.count(col(Conversation.id)).desc()),
                    col(Conversation.inbox_id),
                )
            )
        ).all()
        resolved_by = (
            await session.execute(
                scoped(
                    select(Conversation.assignee_id, func.count())
                    .where(
                        col(Conversation.resolved_at) >= start,
                        col(Conversation.resolved_at) < end,
                        col(Conversation.assignee_id).is_not(None),
                    )
                    .group_by(col(Conversation.assignee_id)),
                    col(Conversation.inbox_id),
                )
            )
        ).all()
        agent_names: dict[int, str] = {
            int(agent_id): str(name)
            for agent_id, name in await session.execute(
                select(Agent.id, Agent.name).where(col(Agent.id).in_([a for a, _ in resolved_by]))
            )
        }

        async def label_counts(since: datetime, until: datetime) -> list[tuple[str, int]]:
            found = await session.execute(
                scoped(
                    select(Label.name, func.count())
                    .join(ConversationLabel, col(ConversationLabel.label_id) == col(Label.id))
                    .join(Conversation, col(Conversation.id) == col(ConversationLabel.conversation_id))
                    .where(created >= since, created < until)
                    .group_by(col(Label.name))
                    .order_by(func.count().desc(), col(Label.name)),
                    col(Conversation.inbox_id),
                )
            )
            return [(str(name), int(n)) for name, n in found.all()]

        labels = await label_counts(start, end)
        previous_labels = dict(await label_counts(start - (end - start), start))
        surveys = (
            await session.execute(
                scoped(
                    select(CsatSurvey.rating, CsatSurvey.agent_id, CsatSurvey.conversation_id).where(
                        col(CsatSurvey.created_at) >= start, col(CsatSurvey.created_at) < end
                    ),
                    col(CsatSurvey.inbox_id),
                    col(CsatSurvey.conversation_id),
                )
            )
        ).all()
        rated_ids = sorted({conversation_id for rating, _, conversation_id in surveys if rating is not None})
        survey_labels = (
            (
                await session.execute(
                    select(ConversationLabel.conversation_id, Label.name)
                    .join(Label, col(Label.id) == col(ConversationLabel.label_id))
                    .where(col(ConversationLabel.conversation_id).in_(rated_ids))
                )
            ).all()
            if rated_ids
            else []
        )
        survey_agents: dict[int, str] = {
            int(agent_id): str(name)
            for agent_id, name in await session.execute(
                select(Agent.id, Agent.name).where(col(Agent.id).in_({a for _, a, _ in surveys if a is not None}))
            )
        }
        open_now = (
            await session.execute(
                scoped(
                    select(func.count()).select_from(Conversation).where(col(Conversation.status) == Status.OPEN),
                    col(Conversation.inbox_id),
                )
            )
        ).scalar_one()
        targets = {
            inbox.id: inbox.settings.get("sla_first_response_minutes")
            for inbox in (await session.execute(select(Inbox))).scalars()
        }
    first_response = [(reply - made).total_seconds() for made, reply, _, _ in rows if reply is not None]
    resolution = [(done - made).total_seconds() for made, _, done, _ in rows if done is not None]
    counts = {str(kind): int(n) for kind, n in messages}
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "conversations": {
            "created": len(rows),
            "resolved": len(resolution),
            "open_now": int(open_now),
            "unanswered": len(rows) - len(first_response),
        },
        "messages": {
            "incoming": counts.get(MessageKind.INCOMING, 0),
            "outgoing": counts.get(MessageKind.OUTGOING, 0),
            "notes": counts.get(MessageKind.NOTE, 0),
        },
        "first_response": Durations.of(first_response).as_dict(),
        "resolution": Durations.of(resolution).as_dict(),
        "workload": workload_rows(workload, resolved_by, agent_names),
        "labels": [{"name": name, "conversations": n, "previous": previous_labels.get(name, 0)} for name, n in labels],
        "sla": sla(rows, targets, now=utcnow()),
        "csat": csat(surveys, survey_labels, survey_agents),
    }


def workload_rows(
    open_rows: Sequence[Any], resolved_rows: Sequence[Any], names: dict[int, str]
) -> list[dict[str, Any]]:
    """Per agent: conversations open now and conversations resolved in the period (busiest first)."""
    table: dict[int, dict[str, Any]] = {}
    for agent_id, name, n in open_rows:
        table[agent_id] = {"agent_id": agent_id, "name": name, "open": int(n), "resolved": 0}
    for agent_id, n in resolved_rows:
        row = table.setdefault(
            agent_id, {"agent_id": agent_id, "name": names.get(agent_id, ""), "open": 0, "resolved": 0}
        )
        row["resolved"] = int(n)
    return sorted(table.values(), key=lambda row: (-row["open"], -row["resolved"], row["name"]))


def rating_summary(ratings: Sequence[int]) -> dict[str, Any]:
    """Count, average (2 decimals) and share of satisfied answers (4 or 5), in percent."""
    if not ratings:
        return {"responses": 0, "average": None, "satisfied_percent": None}
    satisfied = sum(1 for value in ratings if value >= SATISFIED)
    return {
        "responses": len(ratings),
        "average": round(sum(ratings) / len(ratings), 2),
        "satisfied_percent": round(100 * satisfied / len(ratings), 1),
    }


def csat(surveys: Sequence[Any], labels: Sequence[Any], agents: dict[int, str]) -> dict[str, Any]:
    """Satisfaction for the surveys sent in the period: overall, per agent (assignee at resolution), per label."""
    answered = [(int(rating), agent_id, conversation_id) for rating, agent_id, conversation_id in surveys if rating]
    by_agent: dict[int, list[int]] = {}
    by_conversation: dict[int, list[int]] = {}
    for rating, agent_id, conversation_id in answered:
        if agent_id is not None:
            by_agent.setdefault(agent_id, []).append(rating)
        by_conversation.setdefault(conversation_id, []).append(rating)
    by_label: dict[str, list[int]] = {}
    for conversation_id, name in labels:
        by_label.setdefault(str(name), []).extend(by_conversation.get(conversation_id, []))
    sent = len(surveys)
    return {
        "sent": sent,
        **rating_summary([rating for rating, _, _ in answered]),
        "response_rate": round(len(answered) / sent, 3) if sent else None,
        "distribution": {str(value): sum(1 for r, _, _ in answered if r == value) for value in range(1, 6)},
        "by_agent": sorted(
            (
                {"agent_id": agent_id, "name": agents.get(agent_id, ""), **rating_summary(values)}
                for agent_id, values in by_agent.items()
            ),
            key=lambda row: (-row["responses"], row["name"]),
        ),
        "by_label": sorted(
            ({"name": name, **rating_summary(values)} for name, values in by_label.items()),
            key=lambda row: (-row["responses"], row["name"]),
        ),
    }


def sla(rows: Sequence[Any], targets: dict[int | None, Any], *, now: datetime) -> dict[str, Any]:
    """First-response SLA: met when the first reply came within the inbox's `sla_first_response_minutes`.

    A conversation still waiting past its target counts as breached; one still inside it is pending.
    """
    met = breached = pending = 0
    for made, reply, _, inbox_id in rows:
        minutes = targets.get(inbox_id)
        if not isinstance(minutes, int | float) or isinstance(minutes, bool) or minutes <= 0:
            continue
        deadline = made + timedelta(minutes=minutes)
        if reply is not None:
            met, breached = (met + 1, breached) if reply <= deadline else (met, breached + 1)
        elif now > deadline:
            breached += 1
        else:
            pending += 1
    decided = met + breached
    return {
        "met": met,
        "breached": breached,
        "pending": pending,
        "rate": round(met / decided, 3) if decided else None,
    }
