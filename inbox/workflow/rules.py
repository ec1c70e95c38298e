"""Automation rules: when a trigger happens and every condition holds, run the actions on the conversation.

Pure part first (the shapes an admin writes, validated with errors naming the field; triggers of an event;
conditions against the facts of a conversation), then `RuleEngine`, which follows the event log.

    {"name": "VIP first", "trigger": "message_incoming",
     "conditions": [{"field": "contact_attribute", "name": "plan", "op": "equals", "value": "pro"},
                    {"field": "text", "op": "contains", "value": "refund"}],
     "actions": [{"type": "set_priority", "priority": "high"}, {"type": "add_label", "label": "vip"}]}

Loops: every event a run writes carries `"automation": {"rule_id", "chain", "depth"}`. A rule never reacts to an
event whose chain names it (its own actions, or actions its own actions set off), and no rule reacts to an
event of depth `MAX_DEPTH` or more.

`text` `matches` takes a bounded regular expression (`check_pattern`): at most 200 characters; quantifiers
only on a single character, class or escape (never on a group); at most one unbounded quantifier (`*`, `+`)
and three `?`; no `{m,n}`, backreferences or lookarounds; matched case-insensitively against the first
2,000 characters of the text. That keeps every match polynomial and small, without a timeout.

One process of the cluster runs the engine (app.py holds the `timer:rules` lease); it reads the log after its
own cursor (`Cursor` row `workflow:rules:events`, a new install starts at the log's end) and saves the cursor
after each event, so a restart skips nothing and repeats at most the one event it was handling. Time-based triggers fire once per waiting
stretch of a conversation (`RuleFiring`). Writes go through `InboxService.run_actions`; this module writes
only its cursor and the firing marks.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeGuard

from sqlalchemy import and_, exists, func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox.clock import parse_iso, utcnow
from inbox.errors import Invalid, NotFound
from inbox.realtime import events
from inbox.realtime.events import EventRecord, EventType
from inbox.service import InboxService
from inbox.service.automation import Action, ActionType, Runner
from inbox.store.models import (
    Agent,
    AutomationRule,
    CannedResponse,
    Contact,
    Conversation,
    ConversationLabel,
    Cursor,
    Event,
    Inbox,
    Label,
    Message,
    MessageKind,
    RuleFiring,
    Status,
    Team,
    Webhook,
    key,
)
from inbox.workflow import settings as workflow_settings
from inbox.workflow.calendars import calendar_of
from inbox.workflow.routing import Router, choose

log = logging.getLogger(__name__)

CURSOR = "workflow:rules:events"
BATCH = 200
MAX_DEPTH = 3
MAX_CONDITIONS = 20
MAX_ACTIONS = 20
MAX_ID = 2**31 - 1
MAX_MINUTES = 366 * 24 * 60
MAX_PATTERN = 200
MAX_TEXT = 2000
PRIORITIES = ("low", "medium", "high", "urgent")
DRY_RUN = 500


class Trigger(StrEnum):
    CONVERSATION_CREATED = "conversation_created"
    MESSAGE_INCOMING = "message_incoming"
    MESSAGE_OUTGOING = "message_outgoing"
    STATUS_CHANGED = "status_changed"
    ASSIGNEE_CHANGED = "assignee_changed"
    LABEL_ADDED = "label_added"
    SLA_WARNING = "sla_warning"
    SLA_BREACHED = "sla_breached"
    PENDING_NO_REPLY = "pending_no_reply"  # pending, no customer message for `after_minutes`
    OPEN_UNASSIGNED = "open_unassigned"  # open and unassigned for `after_minutes`


TIMED = frozenset({Trigger.PENDING_NO_REPLY, Trigger.OPEN_UNASSIGNED})

# field → the operators it takes
OPERATORS: dict[str, frozenset[str]] = {
    "inbox_id": frozenset({"in", "not_in"}),
    "channel": frozenset({"in", "not_in"}),
    "status": frozenset({"in", "not_in"}),
    "priority": frozenset({"in", "not_in"}),
    "assignee_id": frozenset({"in", "not_in"}),
    "team_id": frozenset({"in", "not_in"}),
    "labels": frozenset({"has_any", "has_all", "has_none"}),
    "added_label": frozenset({"in"}),
    "contact_attribute": frozenset({"equals", "not_equals", "contains", "exists", "absent"}),
    "text": frozenset({"contains", "not_contains", "matches"}),
    "business_hours": frozenset({"is"}),
}
ID_FIELDS = frozenset({"inbox_id", "assignee_id", "team_id"})


# ── validation (pure) ───────────────────────────────────────────────────────────────────────
def check_pattern(pattern: str, where: str) -> re.Pattern[str]:
    """Compile a `matches` pattern from the bounded subset described in the module docstring."""
    if len(pattern) > MAX_PATTERN:
        raise Invalid(f"{where}: a pattern is at most {MAX_PATTERN} characters")
    unbounded = optional = 0
    previous = ""  # "atom" | "group" | "quantifier" | "" (start, "(", "|")
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            following = pattern[index + 1 : index + 2]
            if following.isdigit() or following in ("g", ""):
                raise Invalid(f"{where}: backreferences are not allowed")
            index += 2
            previous = "atom"
            continue
        if char == "[":
            end = pattern.find("]", index + 2 if pattern[index + 1 : index + 2] in ("]", "^") else index + 1)
            if end < 0:
                raise Invalid(f"{where}: unterminated character class")
            index = end + 1
            previous = "atom"
            continue
        if char == "(":
            if pattern.startswith("(?", index) and not pattern.startswith(("(?:", "(?i)"), index):
                raise Invalid(f"{where}: only plain groups and (?: ) are allowed (no lookarounds or names)")
            index += 3 if pattern.startswith("(?:", index) else 4 if pattern.startswith("(?i)", index) else 1
            previous = ""
            continue
        if char in "*+?":
            if previous == "group":
                raise Invalid(f"{where}: a quantifier on a group is not allowed")
            if previous == "quantifier" and char == "?":
                index += 1  # lazy modifier
                continue
            if previous != "atom":
                raise Invalid(f"{where}: nothing to repeat")
            if char == "?":
                optional += 1
            else:
                unbounded += 1
            previous = "quantifier"
            index += 1
            continue
        if char == "{":
            raise Invalid(f"{where}: {{m,n}} repetition is not allowed; use *, + or ?")
        previous = "group" if char == ")" else "" if char in "|^$" else "atom"
        index += 1
    if unbounded > 1:
        raise Invalid(f"{where}: at most one * or + per pattern")
    if optional > 3:
        raise Invalid(f"{where}: at most three ? per pattern")
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise Invalid(f"{where}: not a valid pattern ({exc})") from exc


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    op: str
    value: Any = None
    name: str | None = None  # contact_attribute: which attribute
    pattern: re.Pattern[str] | None = None


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _id(value: Any, where: str) -> int:
    if not (_is_int(value) and 1 <= value <= MAX_ID):
        raise Invalid(f"{where}: must be an id (a whole number from 1 to {MAX_ID})")
    return int(value)


def _text(value: Any, where: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{where}: must be a non-empty string")
    if len(value) > limit:
        raise Invalid(f"{where}: at most {limit} characters")
    return value


def _keys(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise Invalid(f"{where}.{unknown[0]}: unknown field")


def parse_conditions(raw: Any, where: str = "body.conditions") -> tuple[Condition, ...]:
    """Validate conditions (all must hold); errors name the field: `body.conditions[1].value: …`."""
    if not isinstance(raw, list):
        raise Invalid(f"{where}: must be a list")
    if len(raw) > MAX_CONDITIONS:
        raise Invalid(f"{where}: at most {MAX_CONDITIONS} conditions")
    return tuple(_condition(item, f"{where}[{index}]") for index, item in enumerate(raw))


def _condition(raw: Any, where: str) -> Condition:
    if not isinstance(raw, Mapping):
        raise Invalid(f"{where}: must be an object with field, op and value")
    _keys(raw, {"field", "op", "value", "name"}, where)
    name = raw.get("field")
    if name not in OPERATORS:
        raise Invalid(f"{where}.field: must be one of {', '.join(OPERATORS)}")
    op = raw.get("op")
    if op not in OPERATORS[name]:
        raise Invalid(f"{where}.op: {name} takes {', '.join(sorted(OPERATORS[name]))}")
    value = raw.get("value")
    at = f"{where}.value"
    if "name" in raw and name != "contact_attribute":
        raise Invalid(f"{where}.name: only contact_attribute takes a name")
    if name in ("inbox_id", "assignee_id", "team_id", "channel", "status", "priority", "labels", "added_label"):
        if not isinstance(value, list) or not value or len(value) > 100:
            raise Invalid(f"{at}: must be a list of 1 to 100 values")
        for index, item in enumerate(value):
            item_at = f"{at}[{index}]"
            if name in ID_FIELDS or name == "priority":
                if item is None:
                    continue  # none: unassigned, no team, no priority
                if name == "priority":
                    if item not in PRIORITIES:
                        raise Invalid(f"{item_at}: must be one of {', '.join(PRIORITIES)} or null")
                else:
                    _id(item, item_at)
            elif name == "status":
                if item not in set(Status):
                    raise Invalid(f"{item_at}: must be one of {', '.join(Status)}")
            else:
                _text(item, item_at, 100)
        return Condition(name, op, tuple(value))
    if name == "contact_attribute":
        attribute = _text(raw.get("name"), f"{where}.name", 100)
        if op in ("exists", "absent"):
            if value is not None:
                raise Invalid(f"{at}: {op} takes no value")
            return Condition(name, op, None, attribute)
        if not isinstance(value, str | int | float | bool) or (isinstance(value, str) and len(value) > 500):
            raise Invalid(f"{at}: must be a string (at most 500 characters), a number or a boolean")
        return Condition(name, op, value, attribute)
    if name == "text":
        text = _text(value, at, MAX_PATTERN if op == "matches" else 500)
        pattern = check_pattern(text, at) if op == "matches" else None
        return Condition(name, op, text, pattern=pattern)
    if not isinstance(value, bool):  # business_hours
        raise Invalid(f"{at}: must be true (within the inbox's business hours) or false")
    return Condition(name, op, value)


ACTION_FIELDS: dict[ActionType, set[str]] = {
    ActionType.ASSIGN_AGENT: {"agent_id"},
    ActionType.ASSIGN_TEAM: {"team_id"},
    ActionType.ASSIGN_ROUTING: set(),
    ActionType.UNASSIGN: set(),
    ActionType.ADD_LABEL: {"label"},
    ActionType.REMOVE_LABEL: {"label"},
    ActionType.SET_PRIORITY: {"priority"},
    ActionType.SET_STATUS: {"status", "snooze_minutes"},
    ActionType.REPLY_CANNED: {"canned_response_id"},
    ActionType.ADD_NOTE: {"body"},
    ActionType.CALL_WEBHOOK: {"webhook_id"},
}


def parse_actions(raw: Any, where: str = "body.actions") -> tuple[Action, ...]:
    """Validate actions (run in order); errors name the field: `body.actions[0].label: …`."""
    if not isinstance(raw, list) or not raw:
        raise Invalid(f"{where}: must be a list of 1 to {MAX_ACTIONS} actions")
    if len(raw) > MAX_ACTIONS:
        raise Invalid(f"{where}: at most {MAX_ACTIONS} actions")
    return tuple(_action(item, f"{where}[{index}]") for index, item in enumerate(raw))


def _action(raw: Any, where: str) -> Action:
    if not isinstance(raw, Mapping):
        raise Invalid(f"{where}: must be an object with a type")
    kind = raw.get("type")
    if kind == "notify_agents":
        raise Invalid(f"{where}.type: email notifications to agents are not available yet")
    if kind not in set(ActionType):
        raise Invalid(f"{where}.type: must be one of {', '.join(ActionType)}")
    kind = ActionType(kind)
    allowed = ACTION_FIELDS[kind]
    _keys(raw, allowed | {"type"}, where)
    optional = {"snooze_minutes", "priority"}
    for name in sorted(allowed - optional):
        if name not in raw:
            raise Invalid(f"{where}.{name}: required for {kind}")
    if kind == ActionType.SET_PRIORITY:
        if "priority" not in raw:
            raise Invalid(f"{where}.priority: required for {kind} (null clears it)")
        if raw["priority"] is not None and raw["priority"] not in PRIORITIES:
            raise Invalid(f"{where}.priority: must be one of {', '.join(PRIORITIES)} or null")
        return Action(kind, priority=raw["priority"])
    if kind == ActionType.SET_STATUS:
        status = raw.get("status")
        if status not in set(Status):
            raise Invalid(f"{where}.status: must be one of {', '.join(Status)}")
        minutes = raw.get("snooze_minutes")
        if status == Status.SNOOZED:
            if not (_is_int(minutes) and 1 <= minutes <= MAX_MINUTES):
                raise Invalid(f"{where}.snooze_minutes: a whole number from 1 to {MAX_MINUTES} when snoozing")
        elif minutes is not None:
            raise Invalid(f"{where}.snooze_minutes: only when status is snoozed")
        return Action(kind, status=status, snooze_minutes=minutes)
    if kind in (ActionType.ADD_LABEL, ActionType.REMOVE_LABEL):
        return Action(kind, label=_text(raw["label"], f"{where}.label", 100))
    if kind == ActionType.ADD_NOTE:
        return Action(kind, body=_text(raw["body"], f"{where}.body", 10_000))
    ids: dict[str, Any] = {name: _id(raw[name], f"{where}.{name}") for name in allowed}
    return Action(kind, **ids)


def action_json(action: Action) -> dict[str, Any]:
    """An action as stored and shown: its type and the fields of that type."""
    data: dict[str, Any] = {"type": str(action.type)}
    for name in sorted(ACTION_FIELDS[action.type]):
        value = getattr(action, name)
        if value is not None or name == "priority":
            data[name] = value
    return data


def condition_json(condition: Condition) -> dict[str, Any]:
    data: dict[str, Any] = {"field": condition.field, "op": condition.op}
    if condition.name is not None:
        data["name"] = condition.name
    if condition.value is not None:
        data["value"] = list(condition.value) if isinstance(condition.value, tuple) else condition.value
    return data


async def check_references(session: AsyncSession, actions: Sequence[Action], where: str = "body.actions") -> None:
    """Every agent, team, label, canned response and webhook the actions name exists (a 422 naming it)."""
    tables: dict[str, Any] = {
        "agent_id": Agent,
        "team_id": Team,
        "canned_response_id": CannedResponse,
        "webhook_id": Webhook,
    }
    for index, action in enumerate(actions):
        for name, table in tables.items():
            value = getattr(action, name)
            if value is not None and await session.get(table, value) is None:
                raise Invalid(
                    f"{where}[{index}].{name}: {name.removesuffix('_id').replace('_', ' ')} {value} does not exist"
                )
        if action.label is not None:
            found = (await session.execute(select(Label.id).where(col(Label.name) == action.label))).first()
            if found is None:
                raise Invalid(f"{where}[{index}].label: label {action.label!r} does not exist")


# ── matching (pure) ─────────────────────────────────────────────────────────────────────────
@dataclass(frozen=True, slots=True)
class Facts:
    """What conditions look at: one conversation as it is now, and the text of the event (or its last message)."""

    inbox_id: int
    channel: str
    status: str
    priority: str | None
    assignee_id: int | None
    team_id: int | None
    labels: frozenset[str]
    attributes: Mapping[str, Any]
    text: str
    within_hours: bool
    added_labels: frozenset[str] = field(default_factory=frozenset)


def holds(condition: Condition, facts: Facts) -> bool:
    """Whether one condition holds for these facts."""
    name, op, value = condition.field, condition.op, condition.value
    if name in ("inbox_id", "channel", "status", "priority", "assignee_id", "team_id"):
        found = getattr(facts, name) in value
        return found if op == "in" else not found
    if name == "labels":
        wanted = {label.casefold() for label in value}
        have = {label.casefold() for label in facts.labels}
        if op == "has_any":
            return bool(wanted & have)
        if op == "has_all":
            return wanted <= have
        return not wanted & have
    if name == "added_label":
        return bool({label.casefold() for label in value} & {label.casefold() for label in facts.added_labels})
    if name == "contact_attribute":
        assert condition.name is not None
        present = condition.name in facts.attributes
        if op in ("exists", "absent"):
            return present == (op == "exists")
        if not present:
            return op == "not_equals"
        actual = facts.attributes[condition.name]
        if op == "contains":
            return str(value).casefold() in str(actual).casefold()
        same = actual == value or (isinstance(actual, str) and str(value).casefold() == actual.casefold())
        return same if op == "equals" else not same
    if name == "text":
        text = facts.text[:MAX_TEXT]
        if op == "matches":
            assert condition.pattern is not None
            return condition.pattern.search(text) is not None
        found = str(value).casefold() in text.casefold()
        return found if op == "contains" else not found
    return facts.within_hours is value  # business_hours


def matches(conditions: Sequence[Condition], facts: Facts) -> bool:
    return all(holds(condition, facts) for condition in conditions)


def triggers_of(record: EventRecord) -> list[Trigger]:
    """The triggers one event sets off (a label change is `label_added` only if a label was added)."""
    data = record.data
    if record.type == EventType.CONVERSATION_CREATED:
        return [Trigger.CONVERSATION_CREATED]
    if record.type == EventType.MESSAGE_CREATED:
        kind = data.get("kind")
        if kind == MessageKind.INCOMING:
            return [Trigger.MESSAGE_INCOMING]
        if kind == MessageKind.OUTGOING:
            return [Trigger.MESSAGE_OUTGOING]
        return []
    if record.type == EventType.CONVERSATION_UPDATED:
        changes = data.get("changes") or []
        found = []
        if "status" in changes:
            found.append(Trigger.STATUS_CHANGED)
        if "assignee_id" in changes:
            found.append(Trigger.ASSIGNEE_CHANGED)
        if "labels" in changes:
            found.append(Trigger.LABEL_ADDED)
        return found
    if record.type == EventType.SLA_WARNING:
        return [Trigger.SLA_WARNING]
    if record.type == EventType.SLA_BREACHED:
        return [Trigger.SLA_BREACHED]
    return []


@dataclass(frozen=True, slots=True)
class Rule:
    id: int
    name: str
    trigger: Trigger
    after_minutes: int | None
    conditions: tuple[Condition, ...]
    actions: tuple[Action, ...]


def rule_of(row: AutomationRule) -> Rule:
    """A stored rule, parsed (stored rules were validated on the way in)."""
    return Rule(
        key(row),
        row.name,
        Trigger(row.trigger),
        row.after_minutes,
        parse_conditions(row.conditions),
        parse_actions(row.actions),
    )


# ── facts from the store ────────────────────────────────────────────────────────────────────
async def facts_of(session: AsyncSession, conversation: Conversation, text: str, at: datetime) -> Facts:
    """The facts of one conversation (at `at`, for the business-hours condition)."""
    return (await facts_many(session, [conversation], {key(conversation): text}, at))[0]


async def facts_many(
    session: AsyncSession, conversations: Sequence[Conversation], texts: Mapping[int, str], at: datetime
) -> list[Facts]:
    """The facts of many conversations with a fixed number of queries (plus one per inbox calendar)."""
    if not conversations:
        return []
    ids = [key(row) for row in conversations]
    inbox_ids = sorted({row.inbox_id for row in conversations})
    inboxes = {
        key(row): row for row in (await session.execute(select(Inbox).where(col(Inbox.id).in_(inbox_ids)))).scalars()
    }
    within = {inbox_id: (await calendar_of(session, inboxes.get(inbox_id))).is_open(at) for inbox_id in inbox_ids}
    contact_ids = sorted({row.contact_id for row in conversations})
    attributes: dict[int, Any] = dict(
        (await session.execute(select(Contact.id, Contact.attributes).where(col(Contact.id).in_(contact_ids)))).all()
    )
    labels: dict[int, set[str]] = {}
    rows = await session.execute(
        select(ConversationLabel.conversation_id, Label.name)
        .join(Label, col(ConversationLabel.label_id) == Label.id)
        .where(col(ConversationLabel.conversation_id).in_(ids))
    )
    for conversation_id, name in rows.all():
        labels.setdefault(conversation_id, set()).add(name)
    return [
        Facts(
            inbox_id=row.inbox_id,
            channel=inboxes[row.inbox_id].channel if row.inbox_id in inboxes else "",
            status=row.status,
            priority=row.priority,
            assignee_id=row.assignee_id,
            team_id=row.team_id,
            labels=frozenset(labels.get(key(row), ())),
            attributes=dict(attributes.get(row.contact_id) or {}),
            text=texts.get(key(row), ""),
            within_hours=within[row.inbox_id],
        )
        for row in conversations
    ]


async def last_incoming_text(session: AsyncSession, conversation_ids: Sequence[int]) -> dict[int, str]:
    """The body of each conversation's newest customer message."""
    if not conversation_ids:
        return {}
    newest = (
        select(func.max(Message.id))
        .where(col(Message.conversation_id).in_(conversation_ids), col(Message.kind) == MessageKind.INCOMING)
        .group_by(col(Message.conversation_id))
    )
    rows = await session.execute(select(Message.conversation_id, Message.body).where(col(Message.id).in_(newest)))
    return {conversation_id: body for conversation_id, body in rows.all()}


async def texts_of(session: AsyncSession, conversations: Sequence[Conversation]) -> dict[int, str]:
    """What `text` conditions read when no message set the rule off: the newest customer message, else the
    subject or preview."""
    found = await last_incoming_text(session, [key(row) for row in conversations])
    return {key(row): found.get(key(row)) or row.subject or row.preview for row in conversations}


async def dry_run(session: AsyncSession, rule: Rule, at: datetime, limit: int = DRY_RUN) -> dict[str, Any]:
    """Would the rule's conditions have matched the last `limit` conversations (as they are now; the text is
    each one's newest customer message)?"""
    conversations = list(
        (await session.execute(select(Conversation).order_by(col(Conversation.id).desc()).limit(limit))).scalars()
    )
    matched = [
        conversation_id
        for conversation_id, facts in zip(
            [key(row) for row in conversations],
            await facts_many(session, conversations, await texts_of(session, conversations), at),
            strict=True,
        )
        if matches(rule.conditions, facts)
    ]
    total = len(conversations)
    return {
        "matched": len(matched),
        "total": total,
        "conversation_ids": matched[:50],
        "summary": f"would have matched {len(matched)} of the last {total} conversations",
    }


# ── the engine ──────────────────────────────────────────────────────────────────────────────
def marker_of(record: EventRecord) -> tuple[tuple[int, ...], int]:
    """The chain of rules and the depth behind an event (`((), 0)` for one no rule caused)."""
    found = record.data.get("automation")
    if not isinstance(found, Mapping):
        return (), 0
    chain = tuple(item for item in found.get("chain") or () if _is_int(item))
    depth = found.get("depth")
    return chain, int(depth) if _is_int(depth) else len(chain)


class RuleEngine:
    """Runs enabled rules on the events of the log and on time; `run` loops until cancelled."""

    def __init__(
        self, service: InboxService, *, interval_seconds: float = 1.0, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.service = service
        self.store = service.store
        self.interval = interval_seconds
        self.clock = clock
        self.router = Router(service)  # only its candidates: who may get a conversation "via routing"
        self._wake = asyncio.Event()

    async def on_event(self, event: EventRecord) -> None:
        """Broker subscriber: a new event may trigger rules; look now rather than at the next tick."""
        if triggers_of(event):
            self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.tick()
            except Exception:
                log.exception("rules: a pass failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)

    async def tick(self) -> int:
        """Follow new events, then fire time-based rules; answers how many rule runs happened."""
        ran = 0
        while True:
            seen, count = await self.follow_events()
            ran += count
            if seen < BATCH:
                break
        return ran + await self.fire_timed(self.clock())

    async def _rules(self, session: AsyncSession, triggers: Sequence[Trigger]) -> list[Rule]:
        rows = (
            await session.execute(
                select(AutomationRule)
                .where(col(AutomationRule.enabled), col(AutomationRule.trigger).in_([str(t) for t in triggers]))
                .order_by(col(AutomationRule.id))
            )
        ).scalars()
        found = []
        for row in rows:
            try:
                found.append(rule_of(row))
            except (Invalid, ValueError):
                log.warning("rule %s: stored shape is not valid; skipped", row.id)
        return found

    # ── events ──────────────────────────────────────────────────────────────────────────────
    async def follow_events(self) -> tuple[int, int]:
        """One batch of the log; answers (events read, rule runs)."""
        async with self.store.session() as session:
            mark = await session.get(Cursor, CURSOR)
            after = int(mark.value) if mark is not None else None
            records = [] if after is None else await events.after(session, after, limit=BATCH)
            latest = await events.latest_id(session) if after is None else 0
        if after is None:
            await self._save_cursor(latest)
            return 0, 0
        if not records:
            return 0, 0
        async with self.store.session() as session:
            active = await self._rules(session, [trigger for trigger in Trigger if trigger not in TIMED])
        ran = 0
        for record in records:
            if not {rule.trigger for rule in active} & set(triggers_of(record)):
                continue  # the common case: no rule listens; one cursor write for the whole batch
            try:
                ran += await self.on_record(record, active)
            except Exception:
                log.exception("rules: event %s failed; skipped", record.id)
            await self._save_cursor(record.id)  # what ran is never run again after a restart
        await self._save_cursor(records[-1].id)
        return len(records), ran

    async def _save_cursor(self, value: int) -> None:
        async with self.store.transaction() as tx:
            mark = await tx.get(Cursor, CURSOR)
            if mark is None:
                tx.add(Cursor(key=CURSOR, value=str(value)))
            else:
                mark.value = str(value)
                mark.updated_at = utcnow()

    async def on_record(self, record: EventRecord, active: Sequence[Rule] | None = None) -> int:
        """Run every enabled rule (`active`: as loaded for this batch) this event triggers and whose conditions hold."""
        triggers = triggers_of(record)
        if not triggers or record.conversation_id is None:
            return 0
        chain, depth = marker_of(record)
        if depth >= MAX_DEPTH:
            log.info("rules: event %s is %s rule runs deep; no rule reacts to it", record.id, depth)
            return 0
        at = parse_iso(record.created_at) if record.created_at else self.clock()
        async with self.store.session() as session:
            if active is None:
                active = await self._rules(session, triggers)
            rules = [rule for rule in active if rule.trigger in triggers and rule.id not in chain]
            if not rules:
                return 0
            conversation = await session.get(Conversation, record.conversation_id)
            if conversation is None:
                return 0
            text = record.data.get("body") if record.type == EventType.MESSAGE_CREATED else None
            if not isinstance(text, str):
                text = (await last_incoming_text(session, [key(conversation)])).get(key(conversation), "")
            facts = await facts_of(session, conversation, text, at)
            if Trigger.LABEL_ADDED in triggers:
                added = facts.labels - await self._labels_before(session, record)
                facts = dataclasses.replace(facts, added_labels=frozenset(added))
                if not added:
                    rules = [rule for rule in rules if rule.trigger != Trigger.LABEL_ADDED]
            chosen = [rule for rule in rules if matches(rule.conditions, facts)]
        ran = 0
        for rule in chosen:
            ran += await self.apply(rule, key(conversation), chain, depth)
        return ran

    async def _labels_before(self, session: AsyncSession, record: EventRecord) -> frozenset[str]:
        """The labels the conversation carried before this event, from the newest earlier event that shows them."""
        rows = (
            await session.execute(
                select(Event.payload)
                .where(
                    col(Event.conversation_id) == record.conversation_id,
                    col(Event.id) < record.id,
                    col(Event.type).in_([EventType.CONVERSATION_CREATED, EventType.CONVERSATION_UPDATED]),
                )
                .order_by(col(Event.id).desc())
                .limit(1)
            )
        ).scalars()
        previous = next(iter(rows), None)
        labels = previous.get("labels") if isinstance(previous, Mapping) else None
        return frozenset(labels) if isinstance(labels, list) else frozenset()

    async def apply(self, rule: Rule, conversation_id: int, chain: tuple[int, ...] = (), depth: int = 0) -> int:
        """Run the rule's actions on the conversation (assign via routing resolved here); answers 1 if it ran."""
        actions = [await self._resolve(action, conversation_id) for action in rule.actions]
        runner = Runner("rule", rule.id, rule.name, chain=(*chain, rule.id), depth=depth + 1)
        try:
            await self.service.run_actions(conversation_id, actions, by=runner)
        except (Invalid, NotFound) as exc:
            log.warning("rule %s on conversation %s: %s", rule.id, conversation_id, exc)
            return 0
        return 1

    async def _resolve(self, action: Action, conversation_id: int) -> Action:
        return await resolve(self.router, action, conversation_id)

    # ── time ────────────────────────────────────────────────────────────────────────────────
    async def fire_timed(self, now: datetime) -> int:
        """Fire each time-based rule once per waiting stretch of each conversation that has waited long enough."""
        async with self.store.session() as session:
            rules = await self._rules(session, sorted(TIMED))
        ran = 0
        for rule in rules:
            ran += await self._fire(rule, now)
        return ran

    async def _fire(self, rule: Rule, now: datetime) -> int:
        since = now - timedelta(minutes=rule.after_minutes or 0)
        waiting = func.coalesce(col(Conversation.last_incoming_at), col(Conversation.created_at))
        fired = exists().where(
            and_(
                col(RuleFiring.rule_id) == rule.id,
                col(RuleFiring.conversation_id) == Conversation.id,
                col(RuleFiring.since) == waiting,
            )
        )
        conditions: list[Any] = [~fired]
        if rule.trigger == Trigger.PENDING_NO_REPLY:
            conditions += [
                col(Conversation.status) == Status.PENDING,
                col(Conversation.updated_at) <= since,
                col(Conversation.last_incoming_at).is_(None) | (col(Conversation.last_incoming_at) <= since),
                col(Conversation.created_at) <= since,
            ]
        else:
            conditions += [
                col(Conversation.status) == Status.OPEN,
                col(Conversation.assignee_id).is_(None),
                col(Conversation.last_incoming_at).is_(None) | (col(Conversation.last_incoming_at) <= since),
                col(Conversation.created_at) <= since,
            ]
        ran = 0
        async with self.store.session() as session:
            rows = list(
                (
                    await session.execute(
                        select(Conversation).where(*conditions).order_by(col(Conversation.id)).limit(BATCH)
                    )
                ).scalars()
            )
            found = await facts_many(session, rows, await texts_of(session, rows), now)
            chosen = [row for row, facts in zip(rows, found, strict=True) if matches(rule.conditions, facts)]
        for row in chosen:
            if not await self._mark(rule.id, key(row), row.last_incoming_at or row.created_at):
                continue
            ran += await self.apply(rule, key(row))
        return ran

    async def _mark(self, rule_id: int, conversation_id: int, since: datetime) -> bool:
        """Record that the rule fired for this stretch; False when it already had."""
        try:
            async with self.store.transaction() as tx:
                tx.add(RuleFiring(rule_id=rule_id, conversation_id=conversation_id, since=since, created_at=utcnow()))
        except IntegrityError:
            return False
        return True


async def resolve(router: Router, action: Action, conversation_id: int) -> Action:
    """ "Assign via routing" made concrete: the agent the inbox's routing would choose now (least loaded when the
    inbox does not route), never the current assignee; without anyone free, an action that only says so."""
    if action.type != ActionType.ASSIGN_ROUTING:
        return action
    async with router.store.session() as session:
        conversation = await session.get(Conversation, conversation_id)
        inbox = await session.get(Inbox, conversation.inbox_id) if conversation is not None else None
        if conversation is None or inbox is None:
            return action
        settings = workflow_settings.of(inbox.settings)
        candidates = await router.candidates(session, key(inbox), settings.capacity)
    mode = (
        settings.routing
        if settings.routing != workflow_settings.Routing.OFF
        else workflow_settings.Routing.LEAST_LOADED
    )
    candidates.pop(conversation.assignee_id or 0, None)
    choice = choose(list(candidates.values()), mode)
    if choice is None:
        return Action(ActionType.ASSIGN_ROUTING, reason="assign via routing: no online agent with capacity")
    pick, reason = choice
    return Action(ActionType.ASSIGN_ROUTING, agent_id=pick.agent_id, reason=reason[:1].lower() + reason[1:])
