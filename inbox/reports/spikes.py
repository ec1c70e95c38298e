"""Early warning: labels whose count this week stands well above their 4-week baseline
("billing: 31 this week against a 4-week baseline of 9"). Weeks are the 7 days ending at the report's end and
the four 7-day windows before it. Read-only; alerts to agents are not sent from here (not built yet).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select as columns
from sqlmodel import col

from inbox.reports.facts import Scope, scope_conversations
from inbox.store.engine import Store
from inbox.store.models import Conversation, ConversationLabel, Label

WEEK = timedelta(days=7)
BASELINE_WEEKS = 4
MIN_COUNT = 5  # fewer conversations than this is never a spike
MIN_RATIO = 2.0  # this week at least twice the baseline…
MIN_EXCESS = 3  # …and at least this many above it


def detect(weeks: Mapping[str, Sequence[int]]) -> list[dict[str, Any]]:
    """Spikes from counts per label, oldest week first and this week last; the largest excess first."""
    found = []
    for label, counts in weeks.items():
        *before, now = counts
        baseline = sum(before) / len(before) if before else 0.0
        if now >= MIN_COUNT and now >= MIN_RATIO * baseline and now - baseline >= MIN_EXCESS:
            found.append(
                {
                    "label": label,
                    "this_week": now,
                    "baseline": round(baseline, 2),
                    "weeks": list(counts),
                    "text": f"{label}: {now} this week against a {len(before)}-week baseline of {baseline:g}",
                }
            )
    return sorted(found, key=lambda row: (-(row["this_week"] - row["baseline"]), row["label"]))


async def spikes(store: Store, *, end: datetime, scope: Scope) -> list[dict[str, Any]]:
    """Label spikes for the week ending at `end` (conversations by creation time)."""
    start = end - WEEK * (BASELINE_WEEKS + 1)
    created = col(Conversation.created_at)
    async with store.session() as session:
        query = (
            columns(col(Label.name), created)
            .join(ConversationLabel, col(ConversationLabel.label_id) == col(Label.id))
            .join(Conversation, col(Conversation.id) == col(ConversationLabel.conversation_id))
            .where(created >= start, created < end)
        )
        rows = (await session.execute(await scope_conversations(session, query, scope))).all()
    weeks: dict[str, list[int]] = {}
    for name, at in rows:
        at = at if at.tzinfo else at.replace(tzinfo=end.tzinfo)
        index = min(BASELINE_WEEKS, int((at - start) / WEEK))
        weeks.setdefault(str(name), [0] * (BASELINE_WEEKS + 1))[index] += 1
    return detect(weeks)
