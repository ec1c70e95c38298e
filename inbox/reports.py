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
from inbox.models import Agent, Conversation, ConversationLabel, Inbox, Label, Message, MessageKind, Status
from inbox.store import Store


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
    store: Store, *, start: datetime, end: datetime, inbox_ids: frozenset[int] | None, inbox_id: int | None = None
) -> dict[str, Any]:
    """Metrics for conversations created in [start, end), limited to the inboxes the caller may see."""

    def scoped(query: Any, inbox_column: Any) -> Any:
        if inbox_id is not None:
            query = query.where(inbox_column == inbox_id)
        if inbox_ids is not None:
            query = query.where(inbox_column.in_(inbox_ids) if inbox_ids else False)
        return query

    created = col(Conversation.created_at)
    async with store.session() as session:
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
                    .where(col(Message.created_at) >= start, col(Message.created_at) < end)
                    .group_by(col(Message.kind)),
                    col(Message.inbox_id),
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
        labels = (
            await session.execute(
                scoped(
                    select(Label.name, func.count())
                    .join(ConversationLabel, col(ConversationLabel.label_id) == col(Label.id))
                    .join(Conversation, col(Conversation.id) == col(ConversationLabel.conversation_id))
                    .where(created >= start, created < end)
                    .group_by(col(Label.name))
                    .order_by(func.count().desc()),
                    col(Conversation.inbox_id),
                )
            )
        ).all()
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
        "workload": [{"agent_id": agent_id, "name": name, "open": int(n)} for agent_id, name, n in workload],
        "labels": [{"name": name, "conversations": int(n)} for name, n in labels],
        "sla": sla(rows, targets, now=utcnow()),
        "csat": None,  # surveys are not collected yet; see the issue notes
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
