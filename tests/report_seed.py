"""A small support history with known numbers, for the report tests (API and page).

Five conversations created ten hours ago in a CSAT-enabled inbox with a 60-minute first-response target, and
one created forty days ago (the previous period of a 30-day report). Times are set exactly after the real
flows (deliver, assign, reply, resolve, answer the survey) ran, so every expected figure below is arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from inbox.clock import utcnow
from inbox.csat.survey import Surveys
from inbox.service import ConversationChanges, InboxService
from inbox.store.models import Agent, Conversation, CsatSurvey, Inbox
from tests.factories import add_member, inbound, make_agent, make_inbox, make_label

# (agent, first reply after s, resolved after s or None, label, rating or None)
PLAN: list[tuple[str | None, int | None, int | None, str, int | None]] = [
    ("Bob", 1800, 7200, "billing", 5),
    ("Bob", 5400, 14400, "billing", 4),
    ("Cat", 600, 3600, "shipping", 2),
    ("Cat", 2700, None, "shipping", None),
    (None, None, None, "", None),
]

EXPECTED: dict[str, Any] = {
    "conversations": {"created": 5, "resolved": 3, "open_now": 2, "unanswered": 1},
    "first_response": {"count": 4, "average_seconds": 2625.0, "median_seconds": 1800.0, "p90_seconds": 5400.0},
    "resolution": {"count": 3, "average_seconds": 8400.0, "median_seconds": 7200.0, "p90_seconds": 14400.0},
    "sla": {"met": 3, "breached": 2, "pending": 0, "rate": 0.6},
    "labels": [
        {"name": "billing", "conversations": 2, "previous": 1},
        {"name": "shipping", "conversations": 2, "previous": 0},
    ],
}


@dataclass
class Seeded:
    inbox: Inbox
    admin: Agent
    bob: Agent
    cat: Agent
    conversation_ids: list[int]


async def seed(service: InboxService, surveys: Surveys) -> Seeded:
    store = service.store
    inbox = await make_inbox(store, csat_enabled=True, sla_first_response_minutes=60)
    admin = await make_agent(store, email="ann@example.test", name="Ann", role="admin")
    agents = {
        "Bob": await make_agent(store, email="bob@example.test", name="Bob"),
        "Cat": await make_agent(store, email="cat@example.test", name="Cat"),
    }
    for agent in agents.values():
        await add_member(store, inbox, agent)
    for name in ("billing", "shipping"):
        await make_label(store, name)
    start = utcnow() - timedelta(hours=10)
    ids: list[int] = []
    for index, (who, reply_after, resolve_after, label, rating) in enumerate(PLAN):
        delivered = await service.deliver(inbound(inbox, f"seed-{index}", sender=f"customer-{index}"))
        cid = delivered.conversation_id
        ids.append(cid)
        agent = agents[who] if who else admin
        changes = ConversationChanges(assignee_id=agents[who].id if who else None, labels=[label] if label else [])
        await service.update_conversation(cid, changes, by=admin)
        if reply_after is not None:
            await service.reply(cid, by=agent, body="Answer", client_id=None)
        if resolve_after is not None:
            await service.update_conversation(cid, ConversationChanges(status="resolved"), by=agent)
        async with store.transaction() as tx:
            row = await tx.get(Conversation, cid)
            assert row is not None
            row.created_at = start
            row.first_reply_at = start + timedelta(seconds=reply_after) if reply_after is not None else None
            row.resolved_at = start + timedelta(seconds=resolve_after) if resolve_after is not None else None
        if rating is not None:
            async with store.session() as session:
                survey = (
                    await session.execute(select(CsatSurvey).where(col(CsatSurvey.conversation_id) == cid))
                ).scalar_one()
            assert survey.id is not None
            await surveys.respond(surveys.token(survey.id), rating, "thanks!" if rating == 5 else "")
    # One billing conversation in the previous period, resolved back then (no survey: written directly).
    old = await service.deliver(inbound(inbox, "seed-old", sender="customer-old"))
    await service.update_conversation(old.conversation_id, ConversationChanges(labels=["billing"]), by=admin)
    async with store.transaction() as tx:
        row = await tx.get(Conversation, old.conversation_id)
        assert row is not None
        row.created_at = utcnow() - timedelta(days=40)
        row.status = "resolved"
        row.resolved_at = row.created_at + timedelta(hours=1)
    return Seeded(inbox, admin, agents["Bob"], agents["Cat"], ids)
