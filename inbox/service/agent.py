"""Agent writes of `InboxService`: replies and notes (queued in the outbox), conversation changes, labels,
read marks and snooze wake-ups."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox.clock import utcnow
from inbox.errors import Conflict, Invalid, NotFound
from inbox.read import views
from inbox.read.queries import attachments_of
from inbox.realtime.events import EventRecord, EventType
from inbox.service.base import UNSET, ServiceBase, _get
from inbox.service.rows import preview
from inbox.store.models import (
    Agent,
    Attachment,
    Conversation,
    ConversationLabel,
    InboxMember,
    Label,
    Message,
    MessageKind,
    MessageStatus,
    Outbox,
    Status,
    Team,
    key,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConversationChanges:
    """A partial update of a conversation; fields left `UNSET` are not touched."""

    status: Any = UNSET
    assignee_id: Any = UNSET
    team_id: Any = UNSET
    priority: Any = UNSET
    snoozed_until: Any = UNSET
    labels: Any = UNSET


class AgentWrites(ServiceBase):
    """What agents do to conversations: replies, notes, status, assignment, labels, read marks, snoozes."""

    # ── agent writes ────────────────────────────────────────────────────────────────────────
    async def reply(
        self,
        conversation_id: int,
        *,
        by: Agent,
        body: str,
        client_id: str | None,
        attachment_ids: Sequence[int] = (),
        options: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Queue an outgoing reply (and its outbox row) once per `client_id`; answers (message, created).

        `options` are per-message sending choices kept in the message's meta and handed to the channel
        (email: `{"reply_all": false}` sends to the customer only).
        """
        return await self._agent_message(
            conversation_id, by, body, client_id, attachment_ids, MessageKind.OUTGOING, options or {}
        )

    async def add_note(
        self,
        conversation_id: int,
        *,
        by: Agent,
        body: str,
        client_id: str | None,
        attachment_ids: Sequence[int] = (),
    ) -> tuple[dict[str, Any], bool]:
        """Store a private note (never sent to the customer) once per `client_id`."""
        return await self._agent_message(conversation_id, by, body, client_id, attachment_ids, MessageKind.NOTE)

    async def _agent_message(
        self,
        conversation_id: int,
        by: Agent,
        body: str,
        client_id: str | None,
        attachment_ids: Sequence[int],
        kind: MessageKind,
        options: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], bool]:
        if not body.strip() and not attachment_ids:
            raise Invalid("body: a message needs text or an attachment")
        client_id = client_id or str(uuid.uuid4())
        try:
            return await self._write_agent_message(
                conversation_id, by, body, client_id, attachment_ids, kind, options or {}
            )
        except IntegrityError:
            pass  # the same client_id raced in; fall through to return the stored one
        existing = await self._by_client_id(client_id, conversation_id)
        if existing is None:
            raise Conflict(f"client_id {client_id}: could not store the message")
        return existing, False

    async def _by_client_id(self, client_id: str, conversation_id: int) -> dict[str, Any] | None:
        async with self.store.session() as session:
            message = (
                await session.execute(select(Message).where(col(Message.client_id) == client_id))
            ).scalar_one_or_none()
            if message is None:
                return None
            if message.conversation_id != conversation_id:
                raise Conflict(f"client_id {client_id} was already used in another conversation")
            attachments = await attachments_of(session, [key(message)])
            return views.message(message, attachments.get(key(message), []))

    async def _write_agent_message(
        self,
        conversation_id: int,
        by: Agent,
        body: str,
        client_id: str,
        attachment_ids: Sequence[int],
        kind: MessageKind,
        options: dict[str, Any],
    ) -> tuple[dict[str, Any], bool]:
        existing = await self._by_client_id(client_id, conversation_id)
        if existing is not None:
            return existing, False
        now = utcnow()
        async with self.store.transaction() as tx:
            conversation = await _get(tx, Conversation, conversation_id)
            attachments = await self._claim_attachments(tx, attachment_ids, by)
            outgoing = kind == MessageKind.OUTGOING
            message = Message(
                conversation_id=conversation_id,
                inbox_id=conversation.inbox_id,
                kind=kind,
                body=body,
                sender_type="agent",
                sender_id=by.id,
                sender_name=by.name,
                status=MessageStatus.QUEUED if outgoing else MessageStatus.RECEIVED,
                client_id=client_id,
                meta={"options": dict(options)} if options else {},
                created_at=now,
                updated_at=now,
            )
            tx.add(message)
            await tx.flush()
            for item in attachments:
                item.message_id = message.id
            if outgoing:
                tx.add(Outbox(message_id=key(message), delivery_id=str(uuid.uuid4()), next_attempt_at=now))
                conversation.first_reply_at = conversation.first_reply_at or now
                conversation.unread_count = 0
                conversation.preview = preview(body)
            conversation.last_activity_at = now
            conversation.updated_at = now
            await tx.flush()
            data = {
                **views.message(message, attachments),
                "conversation": await self._conversation_view(tx, conversation),
            }
            records = await self._append(
                tx,
                [(EventType.MESSAGE_CREATED, data)],
                inbox_id=conversation.inbox_id,
                conversation_id=conversation_id,
            )
        await self._publish(records)
        if outgoing:
            for wake in self.on_queued:
                wake()
        return views.message(message, attachments), True

    async def _claim_attachments(self, tx: AsyncSession, ids: Sequence[int], by: Agent) -> list[Attachment]:
        if not ids:
            return []
        rows = list((await tx.execute(select(Attachment).where(col(Attachment.id).in_(ids)))).scalars())
        found = {row.id: row for row in rows}
        for attachment_id in ids:
            row = found.get(attachment_id)
            if row is None or row.uploaded_by != by.id or row.message_id is not None:
                raise Invalid(f"attachment_ids: attachment {attachment_id} is not an unsent upload of yours")
        return rows

    async def update_conversation(
        self, conversation_id: int, changes: ConversationChanges, *, by: Agent | None
    ) -> dict[str, Any]:
        """Apply a partial update; record activity lines; publish `conversation.updated`."""
        now = utcnow()
        actor = by.name if by is not None else "Switchboard"
        async with self.store.transaction() as tx:
            conversation = await _get(tx, Conversation, conversation_id)
            changed: list[str] = []
            activity: list[str] = []
            if changes.assignee_id is not UNSET and changes.assignee_id != conversation.assignee_id:
                if changes.assignee_id is None:
                    activity.append(f"Unassigned by {actor}")
                else:
                    assignee = await self._assignable(tx, changes.assignee_id, conversation.inbox_id)
                    activity.append(
                        f"Self-assigned by {actor}"
                        if by and assignee.id == by.id
                        else f"Assigned to {assignee.name} by {actor}"
                    )
                conversation.assignee_id = changes.assignee_id
                changed.append("assignee_id")
            if changes.team_id is not UNSET and changes.team_id != conversation.team_id:
                if changes.team_id is None:
                    activity.append(f"Removed from team by {actor}")
                else:
                    team = await tx.get(Team, changes.team_id)
                    if team is None:
                        raise Invalid(f"team_id: team {changes.team_id} does not exist")
                    activity.append(f"Assigned to team {team.name} by {actor}")
                conversation.team_id = changes.team_id
                changed.append("team_id")
            if changes.priority is not UNSET and changes.priority != conversation.priority:
                conversation.priority = changes.priority
                changed.append("priority")
            if changes.status is not UNSET or changes.snoozed_until is not UNSET:
                activity += self._apply_status(conversation, changes, actor, now, changed)
            if changes.labels is not UNSET and await self._set_labels(tx, conversation_id, changes.labels):
                changed.append("labels")
            if not changed:
                view = await self._conversation_view(tx, conversation)
                return view
            conversation.updated_at = now
            pending: list[tuple[EventType, dict[str, Any]]] = []
            for line in activity:
                note = Message(
                    conversation_id=conversation_id,
                    inbox_id=conversation.inbox_id,
                    kind=MessageKind.ACTIVITY,
                    body=line,
                    sender_type="system" if by is None else "agent",
                    sender_id=by.id if by else None,
                    sender_name=actor,
                    created_at=now,
                    updated_at=now,
                )
                tx.add(note)
                await tx.flush()
                pending.append((EventType.MESSAGE_CREATED, views.message(note)))
            view = await self._conversation_view(tx, conversation)
            pending.insert(0, (EventType.CONVERSATION_UPDATED, {**view, "changes": changed}))
            records = await self._append(tx, pending, inbox_id=conversation.inbox_id, conversation_id=conversation_id)
        await self._publish(records)
        if "status" in changed and conversation.status == Status.RESOLVED:
            for hook in self.on_resolved:
                try:
                    await hook(conversation_id)
                except Exception:  # the resolution stands; a failed follow-up is logged, not raised
                    log.exception("after resolving conversation %s: %r failed", conversation_id, hook)
        return view

    def _apply_status(
        self,
        conversation: Conversation,
        changes: ConversationChanges,
        actor: str,
        now: datetime,
        changed: list[str],
    ) -> list[str]:
        status = conversation.status if changes.status is UNSET else changes.status
        if status not in set(Status):
            raise Invalid(f"status: must be one of {', '.join(Status)}")
        until = conversation.snoozed_until if changes.snoozed_until is UNSET else changes.snoozed_until
        if status == Status.SNOOZED:
            if until is None:
                raise Invalid("snoozed_until: required when status is snoozed")
            if until <= now:
                raise Invalid("snoozed_until: must be in the future")
        else:
            until = None
        if status == conversation.status and until == conversation.snoozed_until:
            return []
        conversation.status = status
        conversation.snoozed_until = until
        conversation.resolved_at = now if status == Status.RESOLVED else None
        changed += ["status", "snoozed_until"]
        if status == Status.SNOOZED:
            return [f"Snoozed until {until:%Y-%m-%d %H:%M} UTC by {actor}"]
        verb = {"open": "Reopened", "pending": "Marked pending", "resolved": "Resolved"}[status]
        return [f"{verb} by {actor}"]

    async def _assignable(self, tx: AsyncSession, agent_id: int, inbox_id: int) -> Agent:
        agent = await tx.get(Agent, agent_id)
        if agent is None or not agent.active:
            raise Invalid(f"assignee_id: agent {agent_id} does not exist")
        if agent.role != "admin":
            member = await tx.get(InboxMember, (inbox_id, agent_id))
            if member is None:
                raise Invalid(f"assignee_id: agent {agent_id} is not a member of inbox {inbox_id}")
        return agent

    async def _set_labels(self, tx: AsyncSession, conversation_id: int, names: Iterable[str]) -> bool:
        wanted = set(names)
        rows = list((await tx.execute(select(Label).where(col(Label.name).in_(wanted)))).scalars()) if wanted else []
        missing = wanted - {row.name for row in rows}
        if missing:
            raise Invalid(f"labels: label {sorted(missing)[0]!r} does not exist")
        current = set(
            (
                await tx.execute(
                    select(ConversationLabel.label_id).where(col(ConversationLabel.conversation_id) == conversation_id)
                )
            ).scalars()
        )
        target = {row.id for row in rows}
        if current == target:
            return False
        await tx.execute(delete(ConversationLabel).where(col(ConversationLabel.conversation_id) == conversation_id))
        tx.add_all(
            [
                ConversationLabel(conversation_id=conversation_id, label_id=label_id)
                for label_id in target
                if label_id is not None
            ]
        )
        await tx.flush()
        return True

    async def delete_label(self, label_id: int) -> int:
        """Delete a label; each conversation that carried it gets `conversation.updated` (changes: labels)."""
        async with self.store.transaction() as tx:
            label = await _get(tx, Label, label_id)
            carried = list(
                (
                    await tx.execute(
                        select(ConversationLabel.conversation_id).where(col(ConversationLabel.label_id) == label_id)
                    )
                ).scalars()
            )
            await tx.execute(delete(ConversationLabel).where(col(ConversationLabel.label_id) == label_id))
            await tx.delete(label)
            await tx.flush()
            records: list[EventRecord] = []
            for conversation_id in carried:
                conversation = await _get(tx, Conversation, conversation_id)
                view = await self._conversation_view(tx, conversation)
                records += await self._append(
                    tx,
                    [(EventType.CONVERSATION_UPDATED, {**view, "changes": ["labels"]})],
                    inbox_id=conversation.inbox_id,
                    conversation_id=conversation_id,
                )
        await self._publish(records)
        return len(carried)

    async def mark_read(self, conversation_id: int) -> None:
        """Reset the unread count when an agent opens a conversation (no event: it is per-agent noise)."""
        async with self.store.transaction() as tx:
            await tx.execute(update(Conversation).where(col(Conversation.id) == conversation_id).values(unread_count=0))

    async def wake_snoozed(self) -> int:
        """Reopen conversations whose snooze has run out; each wakes once even with several workers."""
        now = utcnow()
        async with self.store.session() as session:
            due = list(
                (
                    await session.execute(
                        select(Conversation.id).where(
                            col(Conversation.status) == Status.SNOOZED,
                            col(Conversation.snoozed_until) <= now,
                        )
                    )
                ).scalars()
            )
        woken = 0
        for conversation_id in due:
            try:
                await self.update_conversation(conversation_id, ConversationChanges(status=Status.OPEN), by=None)
                woken += 1
            except (Invalid, NotFound):
                continue
        return woken
