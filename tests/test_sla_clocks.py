"""SLA clocks kept from the event log (`inbox.workflow.clocks`) on both databases: promises start, pause while
pending, resume, are met by a reply or the resolution; the warning and the breach are recorded once each,
with an activity line and an event, at the instants a controlled clock names."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from inbox.service import ConversationChanges, InboxService
from inbox.store.engine import Store
from inbox.store.models import BusinessHours, Message, MessageKind, SlaClock, SlaPolicy
from inbox.workflow.clocks import SlaClocks
from inbox.workflow.hours import calendar_from
from tests.conftest import Recorder
from tests.factories import inbound, make_agent, make_inbox

BERLIN = {
    "timezone": "Europe/Berlin",
    "hours": {day: [{"start": "09:00", "end": "17:00"}] for day in ("mon", "tue", "wed", "thu", "fri")},
}


async def policy(store: Store, **targets: int | None) -> None:
    async with store.transaction() as tx:
        tx.add(SlaPolicy(name="Standard", warning_seconds=60, **targets))


async def clocks_of(store: Store, conversation_id: int) -> dict[str, SlaClock]:
    async with store.session() as session:
        rows = (
            await session.execute(select(SlaClock).where(col(SlaClock.conversation_id) == conversation_id))
        ).scalars()
        return {row.target: row for row in rows}


async def sla_lines(store: Store) -> list[str]:
    async with store.session() as session:
        rows = (
            await session.execute(
                select(Message.body)
                .where(col(Message.kind) == MessageKind.ACTIVITY, col(Message.sender_name) == "SLA")
                .order_by(col(Message.id))
            )
        ).scalars()
        return list(rows)


async def test_first_response_warning_and_breach_once(store: Store, service: InboxService, recorder: Recorder) -> None:
    await policy(store, first_response_seconds=120, resolution_seconds=3600)
    inbox = await make_inbox(store)
    clocks = SlaClocks(service)
    await clocks.tick()  # a new install starts at the end of the log
    delivered = await service.deliver(inbound(inbox))
    await clocks.follow_events()
    found = await clocks_of(store, delivered.conversation_id)
    assert set(found) == {"first_response", "resolution"}
    first = found["first_response"]
    created = next(event for event in recorder.events if event.type == "conversation.created")
    assert created.created_at is not None
    assert first.started_at.isoformat(timespec="milliseconds").replace("+00:00", "Z") == created.created_at
    assert first.due_at == first.started_at + timedelta(seconds=120)
    assert found["resolution"].due_at == first.started_at + timedelta(hours=1)
    due = first.due_at
    assert await clocks.alert_due(due - timedelta(seconds=61)) == 0
    assert await clocks.alert_due(due - timedelta(seconds=30)) == 1  # the warning
    assert await clocks.alert_due(due - timedelta(seconds=20)) == 0  # once
    assert await clocks.alert_due(due) == 1  # the breach
    assert await clocks.alert_due(due + timedelta(hours=2)) == 1  # resolution: past due at once, so the breach only
    assert await clocks.alert_due(due + timedelta(hours=3)) == 0
    lines = await sla_lines(store)
    assert lines[0] == f"SLA warning: first response due in 1 min ({due:%Y-%m-%d %H:%M} UTC)"
    assert lines[1] == f"SLA breached: first response was due {due:%Y-%m-%d %H:%M} UTC"
    assert [e.type for e in recorder.events if e.type.startswith("sla.")] == [
        "sla.warning",
        "sla.breached",
        "sla.breached",
    ]
    breached = next(e for e in recorder.events if e.type == "sla.breached")
    assert breached.data["target"] == "first_response" and breached.data["conversation_id"] == delivered.conversation_id


async def test_pending_pauses_reply_meets_customer_restarts(store: Store, service: InboxService) -> None:
    await policy(store, first_response_seconds=600, next_response_seconds=300, resolution_seconds=7200)
    inbox = await make_inbox(store)
    agent = await make_agent(store, role="admin")
    clocks = SlaClocks(service)
    await clocks.tick()
    conversation_id = (await service.deliver(inbound(inbox, "m1"))).conversation_id
    await service.update_conversation(conversation_id, ConversationChanges(status="pending"), by=agent)
    await clocks.follow_events()
    found = await clocks_of(store, conversation_id)
    assert found["first_response"].due_at is None and found["first_response"].running_since is None
    await service.update_conversation(conversation_id, ConversationChanges(status="open"), by=agent)
    await clocks.follow_events()
    first = (await clocks_of(store, conversation_id))["first_response"]
    assert first.running_since is not None and first.due_at is not None
    assert first.due_at == first.running_since + timedelta(seconds=600 - first.elapsed)
    await service.reply(conversation_id, by=agent, body="On it", client_id="r1")
    await clocks.follow_events()
    found = await clocks_of(store, conversation_id)
    assert found["first_response"].met_at is not None and found["first_response"].due_at is None
    assert "next_response" not in found  # nobody is waiting
    await service.deliver(inbound(inbox, "m2"))
    await clocks.follow_events()
    waiting = (await clocks_of(store, conversation_id))["next_response"]
    assert waiting.due_at == waiting.started_at + timedelta(seconds=300)
    await service.reply(conversation_id, by=agent, body="Done", client_id="r2")
    await service.update_conversation(conversation_id, ConversationChanges(status="resolved"), by=agent)
    await clocks.follow_events()
    found = await clocks_of(store, conversation_id)
    assert found["next_response"].met_at is not None and found["resolution"].met_at is not None
    assert await clocks.alert_due(waiting.started_at + timedelta(days=1)) == 0  # all met: nothing to raise


async def test_due_time_counts_the_inboxes_business_hours(store: Store, service: InboxService) -> None:
    async with store.transaction() as tx:
        hours = BusinessHours(name="Berlin", calendar=BERLIN)
        tx.add(hours)
    await policy(store, first_response_seconds=4 * 3600)
    inbox = await make_inbox(store, business_hours_id=hours.id)
    clocks = SlaClocks(service)
    await clocks.tick()
    conversation_id = (await service.deliver(inbound(inbox))).conversation_id
    await clocks.follow_events()
    first = (await clocks_of(store, conversation_id))["first_response"]
    assert first.due_at == calendar_from(BERLIN).add_business_seconds(first.started_at, 4 * 3600)
    assert first.due_at is not None and first.due_at - first.started_at >= timedelta(hours=4)


async def test_no_policy_no_clocks(store: Store, service: InboxService) -> None:
    inbox = await make_inbox(store)
    clocks = SlaClocks(service)
    await clocks.tick()
    conversation_id = (await service.deliver(inbound(inbox))).conversation_id
    await clocks.tick()
    assert await clocks_of(store, conversation_id) == {}
