"""Workflow writes of `InboxService`: what routing and SLA clocks decide, written like any other change.

The deciding happens above, in `inbox.workflow` (who gets a conversation, when a promise breaches); these
methods only write the outcome with its activity line, once, and publish after the commit. Each is safe to
race: a conditional UPDATE lets exactly one writer win (two routers never assign one conversation twice,
two timers never record one breach twice).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from inbox.clock import iso, utcnow
from inbox.read import views
from inbox.realtime.events import EventType
from inbox.service.base import ServiceBase, _get
from inbox.store.models import Conversation, Message, MessageKind, SlaClock, Status

ALERTS = {"warning": EventType.SLA_WARNING, "breach": EventType.SLA_BREACHED}


class WorkflowWrites(ServiceBase):
    """Automatic assignment and SLA alerts."""

    async def auto_assign(self, conversation_id: int, agent_id: int, *, reason: str) -> dict[str, Any] | None:
        """Assign an open, unassigned conversation to `agent_id` with an activity line giving `reason`.

        Answers the conversation, or None when it was no longer open and unassigned (someone was quicker)."""
        now = utcnow()
        async with self.store.transaction() as tx:
            result: Any = await tx.execute(
                update(Conversation)
                .where(
                    col(Conversation.id) == conversation_id,
                    col(Conversation.assignee_id).is_(None),
                    col(Conversation.status) == Status.OPEN,
                )
                .values(assignee_id=agent_id, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if not result.rowcount:
                return None
            conversation = await _get(tx, Conversation, conversation_id)
            await tx.refresh(conversation)
            note = await self._system_line(
                tx, conversation, reason, "Routing", {"routing": {"agent_id": agent_id}}, now
            )
            view = await self._conversation_view(tx, conversation)
            records = await self._append(
                tx,
                [
                    (EventType.CONVERSATION_UPDATED, {**view, "changes": ["assignee_id"]}),
                    (EventType.MESSAGE_CREATED, views.message(note)),
                ],
                inbox_id=conversation.inbox_id,
                conversation_id=conversation_id,
            )
        await self._publish(records)
        return view

    async def record_sla_alert(self, conversation_id: int, target: str, kind: str, *, line: str) -> bool:
        """Record an SLA warning or breach (`kind`) of one target once, with an activity line and an event.

        Answers False when it was recorded before (by this or another process)."""
        now = utcnow()
        field = "warned_at" if kind == "warning" else "breached_at"
        column = col(getattr(SlaClock, field))
        async with self.store.transaction() as tx:
            result: Any = await tx.execute(
                update(SlaClock)
                .where(
                    col(SlaClock.conversation_id) == conversation_id, col(SlaClock.target) == target, column.is_(None)
                )
                .values({field: now})
                .execution_options(synchronize_session=False)
            )
            if not result.rowcount:
                return False
            clock = await _get(tx, SlaClock, (conversation_id, target))
            await tx.refresh(clock)
            conversation = await _get(tx, Conversation, conversation_id)
            meta = {"sla": {"target": target, "kind": kind, "due_at": iso(clock.due_at)}}
            note = await self._system_line(tx, conversation, line, "SLA", meta, now)
            view = await self._conversation_view(tx, conversation)
            data = {
                "conversation_id": conversation_id,
                "target": target,
                "due_at": iso(clock.due_at),
                "conversation": view,
            }
            records = await self._append(
                tx,
                [(ALERTS[kind], data), (EventType.MESSAGE_CREATED, views.message(note))],
                inbox_id=conversation.inbox_id,
                conversation_id=conversation_id,
            )
        await self._publish(records)
        return True

    async def _system_line(
        self, tx: AsyncSession, conversation: Conversation, body: str, by: str, meta: dict[str, Any], now: datetime
    ) -> Message:
        note = Message(
            conversation_id=conversation.id,  # type: ignore[arg-type]
            inbox_id=conversation.inbox_id,
            kind=MessageKind.ACTIVITY,
            body=body,
            sender_type="system",
            sender_name=by,
            meta={"workflow": meta},
            created_at=now,
            updated_at=now,
        )
        tx.add(note)
        await tx.flush()
        return note
