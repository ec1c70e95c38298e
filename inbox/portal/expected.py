"""When a customer may expect the next reply, and how to say it ("by Monday 10:00").

A running SLA clock (first or next response) knows best: its due time. Without one — the clocks are kept
asynchronously, or no policy applies — the promise is computed here the same way: the first-response (or
next-response) target of the policy that applies, else the inbox's `acknowledgement_reply_minutes`, counted in
the inbox's business hours from when the customer wrote. Read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from babel.dates import format_datetime
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox.i18n import LOCALES
from inbox.portal import settings as ack_settings
from inbox.store.models import Conversation, Inbox, Message, MessageKind, SlaClock, SlaPolicy, Status
from inbox.workflow.calendars import calendar_of
from inbox.workflow.clocks import policy_of
from inbox.workflow.hours import Calendar
from inbox.workflow.sla import Target, policy_for

WAITING_TARGETS = (Target.FIRST_RESPONSE, Target.NEXT_RESPONSE)


@dataclass(frozen=True, slots=True)
class Expected:
    """The due time of the next reply and the calendar it was counted in (its time zone names it)."""

    due: datetime
    calendar: Calendar


async def expected_reply(session: AsyncSession, conversation: Conversation) -> Expected | None:
    """When the next reply is due, or None: nobody waits for us (not open, last word was ours) or no target."""
    if conversation.status != Status.OPEN or not await _waiting(session, conversation):
        return None
    inbox = await session.get(Inbox, conversation.inbox_id)
    calendar = await calendar_of(session, inbox)
    clock = (
        await session.execute(
            select(SlaClock.due_at)
            .where(
                col(SlaClock.conversation_id) == conversation.id,
                col(SlaClock.target).in_([str(target) for target in WAITING_TARGETS]),
                col(SlaClock.met_at).is_(None),
                col(SlaClock.due_at).is_not(None),
            )
            .order_by(col(SlaClock.due_at))
            .limit(1)
        )
    ).scalar_one_or_none()
    if clock is not None:
        return Expected(clock, calendar)
    first = conversation.first_reply_at is None
    seconds = await _target_seconds(session, conversation, inbox, first=first)
    if seconds is None:
        return None
    since = conversation.created_at if first else (conversation.last_incoming_at or conversation.created_at)
    due = calendar.add_business_seconds(since, seconds)
    return Expected(due, calendar) if due is not None else None


async def _waiting(session: AsyncSession, conversation: Conversation) -> bool:
    """The customer's message is the last word (an agent's reply answers it; notes and activity do not)."""
    kind = (
        await session.execute(
            select(Message.kind)
            .where(
                col(Message.conversation_id) == conversation.id,
                col(Message.kind).in_([MessageKind.INCOMING, MessageKind.OUTGOING]),
            )
            .order_by(col(Message.id).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return kind == MessageKind.INCOMING


async def _target_seconds(
    session: AsyncSession, conversation: Conversation, inbox: Inbox | None, *, first: bool
) -> int | None:
    policies = [policy_of(row) for row in (await session.execute(select(SlaPolicy))).scalars()]
    policy = policy_for(policies, conversation.inbox_id, conversation.priority)
    if policy is not None:
        seconds = policy.seconds(Target.FIRST_RESPONSE if first else Target.NEXT_RESPONSE)
        if seconds is not None:
            return seconds
    minutes = ack_settings.of(inbox.settings).reply_minutes if inbox is not None else None
    return minutes * 60 if minutes is not None else None


def say_when(locale: str, expected: Expected, now: datetime) -> str:
    """`Monday 10:00 (Europe/Berlin)`; with the date when it is a week or more away. In the calendar's zone."""
    code = locale if locale in LOCALES else "en"
    zone = expected.calendar.zone
    local = expected.due.astimezone(zone)
    pattern = "EEEE HH:mm" if local - now.astimezone(zone) < timedelta(days=6) else "EEEE d MMMM HH:mm"
    return f"{format_datetime(local, pattern, locale=code)} ({expected.calendar.timezone})"
