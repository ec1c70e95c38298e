"""Automation rules (`inbox.workflow.rules`): the bounded patterns and the shapes (errors name the field), every
condition, every trigger and action on both databases through the real service and event log, loops (a rule
never reacts to its own actions; chains stop at the depth limit), time-based triggers on a controlled clock,
and over HTTP the CRUD, the validation and the dry run."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from inbox.errors import Invalid
from inbox.service import ConversationChanges, InboxService
from inbox.store.engine import Store
from inbox.store.models import (
    Agent,
    AutomationRule,
    Availability,
    BusinessHours,
    CannedResponse,
    Contact,
    Conversation,
    Message,
    MessageKind,
    SlaClock,
    Team,
)
from inbox.workflow import rules
from inbox.workflow.rules import Condition, Facts, RuleEngine, check_pattern, holds, parse_actions, parse_conditions
from tests.conftest import Recorder
from tests.factories import add_member, inbound, make_agent, make_inbox, make_label
from tests.people import People, make_people
from tests.servers.app import LiveServer

# ── pure: patterns, shapes, conditions ──────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        (r"^refund", "Refund now"),
        (r"order #?\d+", "about order 12"),
        (r"(urgent|asap)", "need it ASAP"),
        (r"[a-z]+@example\.com", "write to ann@example.com"),
        (r"(?i)^re: .*$", "RE: hello"),
        (r"colou?r", "the color"),
        (r"a+?b", "aab"),
    ],
)
def test_bounded_patterns_are_accepted(pattern: str, text: str) -> None:
    assert check_pattern(pattern, "x").search(text) is not None


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(a+)+$", "a quantifier on a group"),
        (r"(a|aa)*", "a quantifier on a group"),
        (r"\w+\s+x", "at most one * or +"),
        (r"a{1,30}", "repetition is not allowed"),
        (r"(a)\1", "backreferences"),
        (r"(?=a)b", "lookarounds"),
        (r"a?a?a?a?aaaa", "at most three ?"),
        ("a" * 201, "at most 200 characters"),
        (r"[abc", "unterminated"),
        (r"*a", "nothing to repeat"),
    ],
)
def test_catastrophic_or_unsupported_patterns_are_refused(pattern: str, reason: str) -> None:
    with pytest.raises(Invalid, match=re.escape(reason)) as caught:
        check_pattern(pattern, "body.conditions[0].value")
    assert str(caught.value).startswith("body.conditions[0].value: ")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"field": "mood", "op": "in", "value": ["x"]}, "body.conditions[0].field: must be one of"),
        ({"field": "status", "op": "has_any", "value": ["open"]}, "body.conditions[0].op: status takes in, not_in"),
        ({"field": "status", "op": "in", "value": ["gone"]}, "body.conditions[0].value[0]: must be one of"),
        ({"field": "inbox_id", "op": "in", "value": [0]}, "body.conditions[0].value[0]: must be an id"),
        ({"field": "inbox_id", "op": "in", "value": []}, "body.conditions[0].value: must be a list of 1 to 100"),
        ({"field": "priority", "op": "in", "value": ["meh"]}, "body.conditions[0].value[0]: must be one of low"),
        ({"field": "contact_attribute", "op": "equals", "value": "x"}, "body.conditions[0].name: must be a non-empty"),
        ({"field": "text", "op": "matches", "value": "(a+)+"}, "body.conditions[0].value: a quantifier on a group"),
        ({"field": "business_hours", "op": "is", "value": "yes"}, "body.conditions[0].value: must be true"),
        ({"field": "text", "op": "contains", "value": "x", "extra": 1}, "body.conditions[0].extra: unknown field"),
    ],
)
def test_bad_conditions_name_the_field(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_conditions([raw])
    assert str(caught.value).startswith(message), str(caught.value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "body.actions: must be a list of 1 to 20"),
        ([{"type": "explode"}], "body.actions[0].type: must be one of"),
        ([{"type": "notify_agents"}], "body.actions[0].type: email notifications to agents are not available"),
        ([{"type": "add_label"}], "body.actions[0].label: required"),
        ([{"type": "assign_agent", "agent_id": "1"}], "body.actions[0].agent_id: must be an id"),
        ([{"type": "set_status", "status": "snoozed"}], "body.actions[0].snooze_minutes: a whole number"),
        ([{"type": "set_status", "status": "open", "snooze_minutes": 5}], "body.actions[0].snooze_minutes: only"),
        ([{"type": "set_priority"}], "body.actions[0].priority: required"),
        ([{"type": "unassign", "agent_id": 1}], "body.actions[0].agent_id: unknown field"),
        ([{"type": "add_note", "body": "ok"}, {"type": "add_note", "body": " "}], "body.actions[1].body: must be"),
    ],
)
def test_bad_actions_name_the_field(raw: Any, message: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_actions(raw)
    assert str(caught.value).startswith(message), str(caught.value)


FACTS = Facts(
    inbox_id=3,
    channel="email",
    status="open",
    priority=None,
    assignee_id=7,
    team_id=None,
    labels=frozenset({"VIP", "billing"}),
    attributes={"plan": "Pro", "seats": 12},
    text="Hello, I want a REFUND for order #1234",
    within_hours=False,
    added_labels=frozenset({"billing"}),
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"field": "inbox_id", "op": "in", "value": [3, 4]}, True),
        ({"field": "inbox_id", "op": "not_in", "value": [3]}, False),
        ({"field": "channel", "op": "in", "value": ["webchat"]}, False),
        ({"field": "status", "op": "in", "value": ["open"]}, True),
        ({"field": "priority", "op": "in", "value": [None]}, True),
        ({"field": "priority", "op": "in", "value": ["high"]}, False),
        ({"field": "assignee_id", "op": "in", "value": [None]}, False),
        ({"field": "assignee_id", "op": "not_in", "value": [None]}, True),
        ({"field": "team_id", "op": "in", "value": [None]}, True),
        ({"field": "labels", "op": "has_any", "value": ["vip", "x"]}, True),
        ({"field": "labels", "op": "has_all", "value": ["vip", "x"]}, False),
        ({"field": "labels", "op": "has_none", "value": ["spam"]}, True),
        ({"field": "added_label", "op": "in", "value": ["vip"]}, False),
        ({"field": "added_label", "op": "in", "value": ["Billing"]}, True),
        ({"field": "contact_attribute", "name": "plan", "op": "equals", "value": "pro"}, True),
        ({"field": "contact_attribute", "name": "plan", "op": "not_equals", "value": "pro"}, False),
        ({"field": "contact_attribute", "name": "seats", "op": "equals", "value": 12}, True),
        ({"field": "contact_attribute", "name": "plan", "op": "contains", "value": "r"}, True),
        ({"field": "contact_attribute", "name": "tier", "op": "exists"}, False),
        ({"field": "contact_attribute", "name": "tier", "op": "absent"}, True),
        ({"field": "text", "op": "contains", "value": "refund"}, True),
        ({"field": "text", "op": "not_contains", "value": "refund"}, False),
        ({"field": "text", "op": "matches", "value": r"order #?\d+"}, True),
        ({"field": "text", "op": "matches", "value": r"^refund"}, False),
        ({"field": "business_hours", "op": "is", "value": True}, False),
        ({"field": "business_hours", "op": "is", "value": False}, True),
    ],
)
def test_every_condition(raw: dict[str, Any], expected: bool) -> None:
    (condition,) = parse_conditions([raw])
    assert holds(condition, FACTS) is expected


def test_text_is_matched_on_a_bounded_prefix() -> None:
    condition = Condition("text", "contains", "needle")
    assert holds(condition, dataclasses.replace(FACTS, text="x" * 1000 + "needle"))
    assert not holds(condition, dataclasses.replace(FACTS, text="x" * 5000 + "needle"))


# ── the engine, on both databases ───────────────────────────────────────────────────────────
async def add_rule(
    store: Store, name: str, trigger: str, actions: list[Any], conditions: list[Any] | None = None, **extra: Any
) -> int:
    async with store.transaction() as tx:
        row = AutomationRule(name=name, trigger=trigger, actions=actions, conditions=conditions or [], **extra)
        tx.add(row)
        await tx.flush()
        assert row.id is not None
        return row.id


async def started(service: InboxService, **kwargs: Any) -> RuleEngine:
    engine = RuleEngine(service, **kwargs)
    await engine.tick()  # a new install starts at the end of the log
    return engine


async def conversation(store: Store, conversation_id: int) -> Conversation:
    async with store.session() as session:
        row = await session.get(Conversation, conversation_id)
        assert row is not None
        return row


async def labels(service: InboxService, conversation_id: int) -> set[str]:
    async with service.store.session() as session:
        return await service._label_names(session, conversation_id)


async def lines(store: Store, conversation_id: int, kind: MessageKind = MessageKind.ACTIVITY) -> list[str]:
    async with store.session() as session:
        rows = await session.execute(
            select(Message.body)
            .where(col(Message.conversation_id) == conversation_id, col(Message.kind) == kind)
            .order_by(col(Message.id))
        )
        return list(rows.scalars())


async def test_a_rule_runs_its_actions_with_activity_lines_naming_it(
    store: Store, service: InboxService, recorder: Recorder
) -> None:
    inbox = await make_inbox(store)
    await make_label(store, "billing")
    async with store.transaction() as tx:
        team = Team(name="Billing")
        tx.add(team)
        tx.add(CannedResponse(short_code="refund", content="We are on it."))
    await add_rule(
        store,
        "Refunds",
        "message_incoming",
        [
            {"type": "set_priority", "priority": "high"},
            {"type": "add_label", "label": "billing"},
            {"type": "assign_team", "team_id": team.id},
            {"type": "add_note", "body": "Check the order first."},
            {"type": "reply_canned", "canned_response_id": 1},
        ],
        [{"field": "text", "op": "contains", "value": "refund"}],
    )
    engine = await started(service)
    hit = await service.deliver(inbound(inbox, "m1", text="I want a REFUND please", sender="a"))
    miss = await service.deliver(inbound(inbox, "m2", text="Just saying hello", sender="b"))
    assert await engine.tick() == 1
    found = await conversation(store, hit.conversation_id)
    assert (found.priority, found.team_id) == ("high", team.id)
    assert await labels(service, hit.conversation_id) == {"billing"}
    assert await lines(store, hit.conversation_id) == [
        "Rule \u201cRefunds\u201d: set priority to high",
        "Rule \u201cRefunds\u201d: added label billing",
        "Rule \u201cRefunds\u201d: assigned to team Billing",
        "Rule \u201cRefunds\u201d: added a private note",
        "Rule \u201cRefunds\u201d: replied with canned response /refund",
    ]
    assert await lines(store, hit.conversation_id, MessageKind.NOTE) == ["Check the order first."]
    assert await lines(store, hit.conversation_id, MessageKind.OUTGOING) == ["We are on it."]
    other = await conversation(store, miss.conversation_id)
    assert other.priority is None and await lines(store, miss.conversation_id) == []
    updated = [
        e for e in recorder.events if e.type == "conversation.updated" and e.conversation_id == hit.conversation_id
    ]
    assert updated[-1].data["automation"]["rule_id"] == 1 and updated[-1].data["automation"]["depth"] == 1
    assert sorted(updated[-1].data["changes"]) == ["labels", "priority", "team_id"]
    assert await engine.tick() == 0  # the cursor moved on: nothing runs twice


async def test_assign_remove_label_and_snooze(store: Store, service: InboxService, recorder: Recorder) -> None:
    inbox = await make_inbox(store)
    agent = await make_agent(store)
    await add_member(store, inbox, agent)
    await make_label(store, "new")
    await add_rule(
        store,
        "Triage",
        "message_incoming",
        [
            {"type": "assign_agent", "agent_id": agent.id},
            {"type": "remove_label", "label": "new"},
            {"type": "set_status", "status": "snoozed", "snooze_minutes": 30},
        ],
        [{"field": "labels", "op": "has_any", "value": ["new"]}],
    )
    delivered = await service.deliver(inbound(inbox, "m1"))
    await service.update_conversation(delivered.conversation_id, ConversationChanges(labels=["new"]), by=None)
    engine = await started(service)
    await service.deliver(inbound(inbox, "m2"))
    assert await engine.tick() == 1
    found = await conversation(store, delivered.conversation_id)
    assert (found.assignee_id, found.status) == (agent.id, "snoozed")
    assert found.snoozed_until is not None
    assert timedelta(minutes=29) < found.snoozed_until - datetime.now(UTC) <= timedelta(minutes=30)
    assert await labels(service, delivered.conversation_id) == set()
    assert (await lines(store, delivered.conversation_id))[-3:] == [
        "Rule \u201cTriage\u201d: assigned to Ann",
        "Rule \u201cTriage\u201d: removed label new",
        f"Rule \u201cTriage\u201d: snoozed until {found.snoozed_until:%Y-%m-%d %H:%M} UTC",
    ]
    assert await engine.tick() == 0  # its own changes (assignee, labels, status) set nothing off


TRIGGERS = [
    "conversation_created",
    "message_incoming",
    "message_outgoing",
    "status_changed",
    "assignee_changed",
    "label_added",
    "sla_warning",
    "sla_breached",
]


@pytest.mark.parametrize("trigger", TRIGGERS)
async def test_every_trigger(store: Store, service: InboxService, trigger: str) -> None:
    inbox = await make_inbox(store)
    agent = await make_agent(store)
    await add_member(store, inbox, agent)
    await make_label(store, "seen")
    await make_label(store, "other")
    for each in TRIGGERS:  # one rule per trigger; only the one under test may fire
        await add_rule(store, each, each, [{"type": "add_note", "body": f"fired: {each}"}])
    delivered = await service.deliver(inbound(inbox, "m1", text="Hi"))
    conversation_id = delivered.conversation_id
    engine = await started(service)
    if trigger == "conversation_created":
        conversation_id = (
            await service.deliver(inbound(inbox, "m2", text="New", sender="someone-else"))
        ).conversation_id
        expected = {"fired: conversation_created", "fired: message_incoming"}
    elif trigger == "message_incoming":
        await service.deliver(inbound(inbox, "m2", text="More"))
        expected = {"fired: message_incoming"}
    elif trigger == "message_outgoing":
        await service.reply(conversation_id, by=agent, body="Hello", client_id=None)
        expected = {"fired: message_outgoing"}
    elif trigger == "status_changed":
        await service.update_conversation(conversation_id, ConversationChanges(status="pending"), by=agent)
        expected = {"fired: status_changed"}
    elif trigger == "assignee_changed":
        await service.update_conversation(conversation_id, ConversationChanges(assignee_id=agent.id), by=agent)
        expected = {"fired: assignee_changed"}
    elif trigger == "label_added":
        await service.update_conversation(conversation_id, ConversationChanges(labels=["seen"]), by=agent)
        expected = {"fired: label_added"}
    else:
        async with store.transaction() as tx:
            now = datetime.now(UTC)
            tx.add(
                SlaClock(
                    conversation_id=conversation_id,
                    target="first_response",
                    inbox_id=inbox.id,
                    target_seconds=60,
                    started_at=now,
                    due_at=now,
                )
            )
        kind = "warning" if trigger == "sla_warning" else "breach"
        assert await service.record_sla_alert(conversation_id, "first_response", kind, line="SLA!")
        expected = {f"fired: {trigger}"}
    await engine.tick()
    assert set(await lines(store, conversation_id, MessageKind.NOTE)) == expected


async def test_label_added_fires_only_when_a_label_was_added(store: Store, service: InboxService) -> None:
    inbox = await make_inbox(store)
    await make_label(store, "vip")
    await make_label(store, "spam")
    await add_rule(
        store,
        "VIP",
        "label_added",
        [{"type": "set_priority", "priority": "urgent"}],
        [{"field": "added_label", "op": "in", "value": ["vip"]}],
    )
    delivered = await service.deliver(inbound(inbox))
    engine = await started(service)
    await service.update_conversation(delivered.conversation_id, ConversationChanges(labels=["spam"]), by=None)
    await engine.tick()
    assert (await conversation(store, delivered.conversation_id)).priority is None
    await service.update_conversation(delivered.conversation_id, ConversationChanges(labels=["spam", "vip"]), by=None)
    await engine.tick()
    assert (await conversation(store, delivered.conversation_id)).priority == "urgent"
    await service.update_conversation(delivered.conversation_id, ConversationChanges(priority="low"), by=None)
    await service.update_conversation(delivered.conversation_id, ConversationChanges(labels=["vip"]), by=None)
    await engine.tick()
    # removing spam added nothing (vip was there before), so the priority stays as it was set last by hand
    assert (await conversation(store, delivered.conversation_id)).priority == "low"
    assert len([line for line in await lines(store, delivered.conversation_id) if line.startswith("Rule")]) == 1


async def test_conditions_read_the_contact_inbox_and_business_hours(store: Store, service: InboxService) -> None:
    async with store.transaction() as tx:
        hours = BusinessHours(name="Never", calendar={"timezone": "UTC", "hours": {}})
        tx.add(hours)
    open_inbox = await make_inbox(store, name="Always")
    closed_inbox = await make_inbox(store, name="Closed", business_hours_id=hours.id)
    await add_rule(
        store,
        "After hours",
        "conversation_created",
        [{"type": "add_note", "body": "after hours, pro"}],
        [
            {"field": "business_hours", "op": "is", "value": False},
            {"field": "contact_attribute", "name": "plan", "op": "equals", "value": "pro"},
            {"field": "channel", "op": "in", "value": ["api"]},
        ],
    )
    engine = await started(service)
    first = await service.deliver(inbound(open_inbox, "m1", sender="p"))
    second = await service.deliver(inbound(closed_inbox, "m2", sender="q"))
    third = await service.deliver(inbound(closed_inbox, "m3", sender="r"))
    async with store.transaction() as tx:
        for delivered in (first, second):
            contact = await tx.get(Contact, delivered.contact_id)
            assert contact is not None
            contact.attributes = {"plan": "Pro"}
    await engine.tick()
    assert await lines(store, first.conversation_id, MessageKind.NOTE) == []  # within hours (always open)
    assert await lines(store, second.conversation_id, MessageKind.NOTE) == ["after hours, pro"]
    assert await lines(store, third.conversation_id, MessageKind.NOTE) == []  # no plan attribute


async def test_a_rule_never_reacts_to_its_own_actions(store: Store, service: InboxService) -> None:
    inbox = await make_inbox(store)
    await add_rule(
        store,
        "Park",
        "status_changed",
        [{"type": "set_status", "status": "pending"}],
        [{"field": "status", "op": "in", "value": ["open"]}],
    )
    await add_rule(
        store,
        "Unpark",
        "status_changed",
        [{"type": "set_status", "status": "open"}],
        [{"field": "status", "op": "in", "value": ["pending"]}],
    )
    delivered = await service.deliver(inbound(inbox))
    await service.update_conversation(delivered.conversation_id, ConversationChanges(status="pending"), by=None)
    engine = await started(service)
    await service.update_conversation(delivered.conversation_id, ConversationChanges(status="open"), by=None)
    for _ in range(5):
        await engine.tick()
    assert [line for line in await lines(store, delivered.conversation_id) if line.startswith("Rule")] == [
        "Rule \u201cPark\u201d: marked pending",
        "Rule \u201cUnpark\u201d: reopened",
    ]
    assert (await conversation(store, delivered.conversation_id)).status == "open"


async def test_a_chain_of_rules_stops_at_the_depth_limit(store: Store, service: InboxService) -> None:
    inbox = await make_inbox(store)
    for index in range(6):
        await make_label(store, f"l{index}")
    for index in range(5):
        await add_rule(
            store,
            f"step {index}",
            "label_added",
            [{"type": "add_label", "label": f"l{index + 1}"}],
            [{"field": "added_label", "op": "in", "value": [f"l{index}"]}],
        )
    delivered = await service.deliver(inbound(inbox))
    engine = await started(service)
    await service.update_conversation(delivered.conversation_id, ConversationChanges(labels=["l0"]), by=None)
    for _ in range(6):
        await engine.tick()
    assert rules.MAX_DEPTH == 3
    assert await labels(service, delivered.conversation_id) == {"l0", "l1", "l2", "l3"}


async def test_disabled_rules_do_not_run(store: Store, service: InboxService) -> None:
    inbox = await make_inbox(store)
    await add_rule(store, "Off", "conversation_created", [{"type": "set_priority", "priority": "low"}], enabled=False)
    engine = await started(service)
    delivered = await service.deliver(inbound(inbox))
    await engine.tick()
    assert (await conversation(store, delivered.conversation_id)).priority is None


async def test_time_based_triggers_fire_once_per_wait(store: Store, service: InboxService) -> None:
    inbox = await make_inbox(store)
    agent = await make_agent(store)
    await add_member(store, inbox, agent)
    async with store.transaction() as tx:
        row = await tx.get(Agent, agent.id)
        assert row is not None
        row.availability = Availability.ONLINE
    await add_rule(
        store,
        "Close stale",
        "pending_no_reply",
        [{"type": "add_note", "body": "No answer in 2 days"}, {"type": "set_status", "status": "resolved"}],
        after_minutes=48 * 60,
    )
    await add_rule(store, "Route waiting", "open_unassigned", [{"type": "assign_routing"}], after_minutes=10)
    now = datetime.now(UTC)
    clock = [now]
    engine = await started(service, clock=lambda: clock[0])
    waiting = await service.deliver(inbound(inbox, "m1", sender="w"))
    stale = await service.deliver(inbound(inbox, "m2", sender="s"))
    await service.update_conversation(
        stale.conversation_id, ConversationChanges(assignee_id=agent.id, status="pending"), by=agent
    )
    await engine.tick()
    assert (await conversation(store, waiting.conversation_id)).assignee_id is None
    clock[0] = now + timedelta(minutes=11)
    assert await engine.tick() == 1
    assigned = await conversation(store, waiting.conversation_id)
    assert assigned.assignee_id == agent.id
    assert (await lines(store, waiting.conversation_id))[-1] == (
        "Rule \u201cRoute waiting\u201d: auto-assigned to Ann: least loaded, 1 of 10 open"
    )
    clock[0] = now + timedelta(hours=47)
    assert await engine.tick() == 0
    clock[0] = now + timedelta(hours=48, minutes=1)
    assert await engine.tick() == 1
    assert (await conversation(store, stale.conversation_id)).status == "resolved"
    assert await lines(store, stale.conversation_id, MessageKind.NOTE) == ["No answer in 2 days"]
    await service.update_conversation(stale.conversation_id, ConversationChanges(status="pending"), by=agent)
    clock[0] = now + timedelta(hours=100)
    assert await engine.tick() == 0  # once per wait: no new customer message, no second run


async def test_assign_via_routing_says_so_when_nobody_is_free(store: Store, service: InboxService) -> None:
    inbox = await make_inbox(store)
    await add_rule(store, "Route", "conversation_created", [{"type": "assign_routing"}])
    engine = await started(service)
    delivered = await service.deliver(inbound(inbox))
    await engine.tick()
    assert (await conversation(store, delivered.conversation_id)).assignee_id is None
    assert await lines(store, delivered.conversation_id) == [
        "Rule \u201cRoute\u201d: assign via routing: no online agent with capacity"
    ]


async def test_a_dangling_reference_writes_nothing(store: Store, service: InboxService) -> None:
    inbox = await make_inbox(store)
    await add_rule(
        store,
        "Broken",
        "conversation_created",
        [{"type": "set_priority", "priority": "high"}, {"type": "add_label", "label": "gone"}],
    )
    engine = await started(service)
    delivered = await service.deliver(inbound(inbox))
    assert await engine.tick() == 0
    assert (await conversation(store, delivered.conversation_id)).priority is None
    assert await lines(store, delivered.conversation_id) == []


# ── over HTTP ───────────────────────────────────────────────────────────────────────────────
@pytest.fixture
async def people(server: LiveServer) -> AsyncIterator[People]:
    found = await make_people(server)
    yield found
    await found.admin.aclose()
    await found.agent.aclose()


def error(response: httpx.Response) -> str:
    detail: str = response.json()["error"]["detail"]
    return detail


RULE = {
    "name": "Urgent words",
    "trigger": "message_incoming",
    "conditions": [{"field": "text", "op": "matches", "value": "(urgent|asap)"}],
    "actions": [{"type": "set_priority", "priority": "urgent"}],
}


async def test_rules_crud_and_validation_over_http(server: LiveServer, people: People) -> None:
    created = await people.admin.post("/api/v1/automation_rules", json=RULE)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["enabled"] is True and rule["actions"] == [{"type": "set_priority", "priority": "urgent"}]
    rule_id = rule["id"]
    assert (await people.agent.get(f"/api/v1/automation_rules/{rule_id}")).json()["name"] == "Urgent words"
    assert [item["id"] for item in (await people.agent.get("/api/v1/automation_rules")).json()["items"]] == [rule_id]
    assert (await people.agent.post("/api/v1/automation_rules", json={**RULE, "name": "x"})).status_code == 403
    again = await people.admin.post("/api/v1/automation_rules", json=RULE)
    assert again.status_code == 409 and error(again).startswith("name:")
    off = await people.admin.patch(f"/api/v1/automation_rules/{rule_id}", json={"enabled": False})
    assert off.status_code == 200 and off.json()["enabled"] is False
    timed = await people.admin.patch(f"/api/v1/automation_rules/{rule_id}", json={"trigger": "open_unassigned"})
    assert timed.status_code == 422 and error(timed).startswith("body.after_minutes: required")
    assert (await people.admin.delete(f"/api/v1/automation_rules/{rule_id}")).status_code == 204
    assert (await people.admin.get(f"/api/v1/automation_rules/{rule_id}")).status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"trigger": "whenever"}, "body.trigger"),
        ({"name": ""}, "body.name"),
        ({"actions": [{"type": "add_label", "label": "nope"}]}, "body.actions[0].label: label 'nope' does not exist"),
        (
            {"actions": [{"type": "assign_agent", "agent_id": 99999}]},
            "body.actions[0].agent_id: agent 99999 does not exist",
        ),
        (
            {"actions": [{"type": "call_webhook", "webhook_id": 5}]},
            "body.actions[0].webhook_id: webhook 5 does not exist",
        ),
        ({"conditions": [{"field": "text", "op": "matches", "value": "(a+)+"}]}, "body.conditions[0].value"),
        ({"after_minutes": 10}, "body.after_minutes: only for"),
        ({"trigger": "pending_no_reply", "after_minutes": 0}, "body.after_minutes"),
        ({"conditions": "all"}, "body.conditions"),
        ({"surprise": 1}, "body.surprise"),
    ],
)
async def test_bad_rules_are_422_naming_the_field(
    server: LiveServer, people: People, change: dict[str, Any], field: str
) -> None:
    response = await people.admin.post("/api/v1/automation_rules", json={**RULE, **change})
    assert response.status_code == 422, response.text
    assert error(response).startswith(field), error(response)


async def test_rule_ids_out_of_range_are_404(server: LiveServer, people: People) -> None:
    for path in ("/api/v1/automation_rules/0", "/api/v1/automation_rules/99999999999"):
        assert (await people.admin.get(path)).status_code == 404
        assert (await people.admin.post(f"{path}/dry_run")).status_code == 404


async def test_dry_run_counts_the_recent_conversations_that_would_match(server: LiveServer, people: People) -> None:
    service: InboxService = server.state.service
    inbox = await make_inbox(service.store)
    for index, text in enumerate(["URGENT: down", "hello", "please asap", "thanks"]):
        await service.deliver(inbound(inbox, f"m{index}", text=text, sender=f"c{index}"))
    created = (await people.admin.post("/api/v1/automation_rules", json={**RULE, "enabled": False})).json()
    response = await people.admin.post(f"/api/v1/automation_rules/{created['id']}/dry_run")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["matched"], body["total"]) == (2, 4)
    assert body["summary"] == "would have matched 2 of the last 4 conversations"
    async with service.store.session() as session:
        priorities = (await session.execute(select(Conversation.priority))).scalars().all()
    assert set(priorities) == {None}  # a dry run changes nothing
    assert (await people.agent.post(f"/api/v1/automation_rules/{created['id']}/dry_run")).status_code == 403


async def test_an_enabled_rule_runs_in_the_live_app(server: LiveServer, people: People) -> None:
    from tests.poll import eventually

    service: InboxService = server.state.service
    inbox = await make_inbox(service.store)
    assert (await people.admin.post("/api/v1/automation_rules", json=RULE)).status_code == 201
    await eventually(lambda: _cursor_set(service.store), what="the rule engine started")
    delivered = await service.deliver(inbound(inbox, text="this is urgent"))

    async def urgent() -> bool:
        return (await conversation(service.store, delivered.conversation_id)).priority == "urgent"

    await eventually(urgent, what="the rule set the priority")


async def _cursor_set(store: Store) -> bool:
    from inbox.store.models import Cursor

    async with store.session() as session:
        return await session.get(Cursor, rules.CURSOR) is not None
