"""Automation writes of `InboxService`: the actions of a rule or a macro, applied to one conversation.

The deciding happens above (`inbox.workflow.rules` chooses when a rule runs and resolves "assign via routing" to
an agent; `inbox.workflow.macros` checks who runs a macro); this part only writes the outcome: every action of
one run in one transaction, each with an activity line naming the rule or macro, then the events, published
after the commit. Every event of the run carries `"automation": {"rule_id" | "macro_id", "chain", "depth"}`,
so the rule engine never lets a rule react to its own actions and stops chains at a depth limit.

A webhook call is queued as a `WebhookDelivery` row in the same transaction (the durable outbox of
`inbox.workflow.webhooks`); a canned reply is queued in the message outbox like any system message.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlmodel import col, select

from inbox.clock import iso, utcnow
from inbox.errors import Invalid
from inbox.read import views
from inbox.realtime.events import EventType
from inbox.service.agent import AgentWrites, ConversationChanges
from inbox.service.base import _get
from inbox.store.models import (
    Agent,
    CannedResponse,
    Conversation,
    ConversationLabel,
    Label,
    Message,
    MessageKind,
    MessageStatus,
    Status,
    Team,
    Webhook,
    WebhookDelivery,
    key,
)

log = logging.getLogger(__name__)


class ActionType(StrEnum):
    ASSIGN_AGENT = "assign_agent"
    ASSIGN_TEAM = "assign_team"
    ASSIGN_ROUTING = "assign_routing"  # resolved to `assign_agent` by the caller (the router's choice)
    UNASSIGN = "unassign"
    ADD_LABEL = "add_label"
    REMOVE_LABEL = "remove_label"
    SET_PRIORITY = "set_priority"
    SET_STATUS = "set_status"
    REPLY_CANNED = "reply_canned"
    ADD_NOTE = "add_note"
    CALL_WEBHOOK = "call_webhook"


@dataclass(frozen=True, slots=True)
class Action:
    """One step of a rule or macro; only the fields of its `type` are set."""

    type: ActionType
    agent_id: int | None = None
    team_id: int | None = None
    label: str | None = None
    priority: str | None = None
    status: str | None = None
    snooze_minutes: int | None = None
    canned_response_id: int | None = None
    body: str | None = None
    webhook_id: int | None = None
    reason: str | None = None  # why (assign via routing: the router's reason)


@dataclass(frozen=True, slots=True)
class Runner:
    """Who runs the actions: a rule (with the chain of rules whose actions led here) or a macro and its agent."""

    kind: str  # "rule" | "macro"
    id: int
    name: str
    chain: tuple[int, ...] = ()
    depth: int = 1
    agent: Agent | None = field(default=None, compare=False)

    def marker(self) -> dict[str, Any]:
        return {f"{self.kind}_id": self.id, "name": self.name, "chain": list(self.chain), "depth": self.depth}

    def title(self) -> str:
        return f"{self.kind.capitalize()} \u201c{self.name}\u201d"


@dataclass(slots=True)
class _Run:
    changes: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    queued: bool = False
    webhooks: int = 0


class AutomationWrites(AgentWrites):
    """Rules' and macros' actions on one conversation."""

    async def run_actions(self, conversation_id: int, actions: Sequence[Action], *, by: Runner) -> dict[str, Any]:
        """Apply `actions` in order in one transaction; answers the conversation as it is afterwards.

        A reference that no longer exists (a deleted label, agent, canned response) is `Invalid`, and nothing
        of the run is written."""
        now = utcnow()
        marker = by.marker()
        run = _Run()
        async with self.store.transaction() as tx:
            conversation = await _get(tx, Conversation, conversation_id)
            before_status = conversation.status
            labels = await self._label_names(tx, conversation_id)
            original_labels = set(labels)
            for action in actions:
                await self._act(tx, conversation, action, labels, run, by, now)
            if labels != original_labels:
                await self._set_labels(tx, conversation_id, labels)
                run.changes.append("labels")
            if run.changes:
                conversation.updated_at = now
            await tx.flush()
            pending: list[tuple[EventType, dict[str, Any]]] = []
            view = await self._conversation_view(tx, conversation, labels=sorted(labels))
            if run.changes:
                changes = list(dict.fromkeys(run.changes))
                pending.append((EventType.CONVERSATION_UPDATED, {**view, "changes": changes, "automation": marker}))
            for line in run.lines:
                note = self.activity_message(
                    conversation_id,
                    conversation.inbox_id,
                    f"{by.title()}: {line}",
                    now=now,
                    meta={"automation": marker},
                    sender_type="system",
                    sender_name=by.name,
                )
                tx.add(note)
                await tx.flush()
                pending.append((EventType.MESSAGE_CREATED, {**views.message(note), "automation": marker}))
            for message in run.messages:
                data = {**views.message(message), "conversation": view, "automation": marker}
                pending.append((EventType.MESSAGE_CREATED, data))
            records = await self._append(tx, pending, inbox_id=conversation.inbox_id, conversation_id=conversation_id)
        await self._publish(records)
        if run.queued:
            self.wake_outbox()
        if before_status != Status.RESOLVED and conversation.status == Status.RESOLVED:
            for hook in self.on_resolved:
                try:
                    await hook(conversation_id)
                except Exception:  # the resolution stands; a failed follow-up is only logged
                    log.exception("after resolving conversation %s: %r failed", conversation_id, hook)
        return view

    async def _act(
        self,
        tx: Any,
        conversation: Conversation,
        action: Action,
        labels: set[str],
        run: _Run,
        by: Runner,
        now: Any,
    ) -> None:
        kind = action.type
        if kind in (ActionType.ASSIGN_AGENT, ActionType.ASSIGN_ROUTING):
            if action.agent_id is None:  # via routing, and nobody had room: say so
                run.lines.append(action.reason or "assign via routing: no agent available")
            elif action.agent_id != conversation.assignee_id:
                agent = await self._assignable(tx, action.agent_id, conversation.inbox_id)
                conversation.assignee_id = action.agent_id
                run.changes.append("assignee_id")
                run.lines.append(action.reason or f"assigned to {agent.name}")
        elif kind == ActionType.UNASSIGN:
            if conversation.assignee_id is not None:
                conversation.assignee_id = None
                run.changes.append("assignee_id")
                run.lines.append("unassigned")
        elif kind == ActionType.ASSIGN_TEAM:
            if action.team_id != conversation.team_id:
                team = await tx.get(Team, action.team_id)
                if team is None:
                    raise Invalid(f"team_id: team {action.team_id} does not exist")
                conversation.team_id = action.team_id
                run.changes.append("team_id")
                run.lines.append(f"assigned to team {team.name}")
        elif kind in (ActionType.ADD_LABEL, ActionType.REMOVE_LABEL):
            name = action.label or ""
            if kind == ActionType.ADD_LABEL and name not in labels:
                labels.add(name)  # existence is checked when the set is written
                run.lines.append(f"added label {name}")
            elif kind == ActionType.REMOVE_LABEL and name in labels:
                labels.discard(name)
                run.lines.append(f"removed label {name}")
        elif kind == ActionType.SET_PRIORITY:
            if action.priority != conversation.priority:
                conversation.priority = action.priority
                run.changes.append("priority")
                run.lines.append(f"set priority to {action.priority or 'none'}")
        elif kind == ActionType.SET_STATUS:
            until = (
                now + timedelta(minutes=action.snooze_minutes)
                if action.status == Status.SNOOZED and action.snooze_minutes
                else None
            )
            changes = ConversationChanges(status=action.status, snoozed_until=until)
            lines = self._apply_status(conversation, changes, by.title(), now, run.changes)
            for line in lines:
                line = line.removesuffix(f" by {by.title()}")
                run.lines.append(line[:1].lower() + line[1:])
        elif kind == ActionType.ADD_NOTE:
            note = Message(
                conversation_id=key(conversation),
                inbox_id=conversation.inbox_id,
                kind=MessageKind.NOTE,
                body=action.body or "",
                sender_type="agent" if by.agent is not None else "system",
                sender_id=by.agent.id if by.agent is not None else None,
                sender_name=by.agent.name if by.agent is not None else by.name,
                status=MessageStatus.RECEIVED,
                meta={"automation": by.marker()},
                created_at=now,
                updated_at=now,
            )
            tx.add(note)
            await tx.flush()
            run.messages.append(note)
            run.lines.append("added a private note")
            conversation.last_activity_at = now
        elif kind == ActionType.REPLY_CANNED:
            canned = await tx.get(CannedResponse, action.canned_response_id)
            if canned is None:
                raise Invalid(f"canned_response_id: canned response {action.canned_response_id} does not exist")
            sender = by.agent.name if by.agent is not None else by.name
            message = await self.queue_system_message(
                tx, conversation, canned.content, now=now, meta={"automation": by.marker()}, sender_name=sender
            )
            run.messages.append(message)
            run.queued = True
            run.lines.append(f"replied with canned response /{canned.short_code}")
            conversation.first_reply_at = conversation.first_reply_at or now
            conversation.last_activity_at = now
        elif kind == ActionType.CALL_WEBHOOK:
            hook = await tx.get(Webhook, action.webhook_id)
            if hook is None:
                raise Invalid(f"webhook_id: webhook {action.webhook_id} does not exist")
            delivery_id = str(uuid.uuid4())
            view = await self._conversation_view(tx, conversation, labels=sorted(labels))
            tx.add(
                WebhookDelivery(
                    webhook_id=key(hook),
                    delivery_id=delivery_id,
                    event_type="automation.called",
                    payload={
                        "id": delivery_id,
                        "event": "automation.called",
                        "created_at": iso(now),
                        "data": {"automation": by.marker(), "conversation": view},
                    },
                    next_attempt_at=now,
                )
            )
            run.lines.append(f"called webhook {hook.id}")
        else:  # pragma: no cover - the enum is exhaustive
            raise Invalid(f"type: unknown action {kind!r}")

    async def _label_names(self, tx: Any, conversation_id: int) -> set[str]:
        rows = await tx.execute(
            select(Label.name)
            .join(ConversationLabel, col(ConversationLabel.label_id) == Label.id)
            .where(col(ConversationLabel.conversation_id) == conversation_id)
        )
        return set(rows.scalars())
