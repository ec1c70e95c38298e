"""InboxService: the only writer of conversation data.

Every public method commits one transaction that also appends its events to the log, then publishes
those events. It knows nothing of HTTP or of any concrete channel; callers check who may do what.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from channels.base import Delivered, Inbound
from inbox import continuity, events, views
from inbox.blobs import BlobStore, StoredBlob
from inbox.broker import Broker
from inbox.clock import utcnow
from inbox.errors import Conflict, Invalid, NotFound
from inbox.events import EventRecord, EventType
from inbox.inbound import Written, incoming_message, preview, touch_conversation
from inbox.ingest import DeliveryBatcher
from inbox.models import (
    Agent,
    Attachment,
    Contact,
    Conversation,
    ConversationLabel,
    Identity,
    Inbox,
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
from inbox.store import Store

log = logging.getLogger(__name__)

UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class ConversationChanges:
    """A partial update of a conversation; fields left `UNSET` are not touched."""

    status: Any = UNSET
    assignee_id: Any = UNSET
    team_id: Any = UNSET
    priority: Any = UNSET
    snoozed_until: Any = UNSET
    labels: Any = UNSET


class InboxService:
    """Writes conversations, messages and contacts; appends and publishes their events."""

    def __init__(self, store: Store, broker: Broker, blobs: BlobStore) -> None:
        self.store = store
        self.broker = broker
        self.blobs = blobs
        self.on_queued: list[Callable[[], None]] = []
        # Called with the conversation id after a change to `resolved` was published (CSAT surveys).
        self.on_resolved: list[Callable[[int], Awaitable[Any]]] = []
        self.batcher = DeliveryBatcher(self)

    # ── inbound ─────────────────────────────────────────────────────────────────────────────
    async def deliver(self, inbound: Inbound) -> Delivered:
        """Store one inbound message once; find or open its conversation; publish.

        Concurrent deliveries are written together by `self.batcher` (group commit, `inbox.ingest`).
        """
        stored = [(item, await self.blobs.save(item.data)) for item in inbound.attachments]
        return await self.batcher.submit(inbound, stored)

    async def deliver_one(self, inbound: Inbound, stored: Sequence[tuple[Any, Any]]) -> Delivered:
        """The per-message path: one delivery in its own transaction (the batcher's fallback)."""
        for attempt in range(3):
            try:
                return await self._deliver(inbound, stored)
            except IntegrityError:
                # A concurrent delivery of the same message or identity won the race: look again.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _deliver(self, inbound: Inbound, stored: Sequence[tuple[Any, Any]]) -> Delivered:
        async with self.store.transaction() as tx:
            written = await self.deliver_in(tx, inbound, stored, utcnow())
            if isinstance(written, Delivered):
                return written
            records = await self._append(
                tx, written.pending(), inbox_id=written.conversation.inbox_id, conversation_id=written.conversation.id
            )
        await self._publish(records)
        return written.delivered(self.blobs)

    async def deliver_in(
        self, tx: AsyncSession, inbound: Inbound, stored: Sequence[tuple[Any, Any]], now: datetime
    ) -> Delivered | Written:
        """Write one inbound message inside `tx`: a duplicate answers its `Delivered`, a new one its `Written`."""
        duplicate = (
            await tx.execute(
                select(Message).where(
                    col(Message.inbox_id) == inbound.inbox_id, col(Message.external_id) == inbound.external_id
                )
            )
        ).scalar_one_or_none()
        if duplicate is not None:
            conversation = await tx.get(Conversation, duplicate.conversation_id)
            assert duplicate.id is not None and conversation is not None
            return Delivered(duplicate.id, duplicate.conversation_id, conversation.contact_id, False)
        conversation = None
        if inbound.conversation_id is not None:
            # The channel threaded this message itself (email); trust it only within the same inbox, or in
            # a chat inbox that continues its conversations through this one (inbox.continuity).
            conversation = await tx.get(Conversation, inbound.conversation_id)
            if conversation is not None and conversation.inbox_id != inbound.inbox_id:
                chat = await tx.get(Inbox, conversation.inbox_id)
                if chat is None or not continuity.links(chat.settings, inbound.inbox_id):
                    conversation = None
        contact, contact_created = await self.contact_for(tx, inbound, conversation)
        conversation = (
            conversation
            or (
                await tx.execute(
                    select(Conversation)
                    .where(
                        col(Conversation.inbox_id) == inbound.inbox_id,
                        col(Conversation.thread_key) == inbound.thread_key,
                    )
                    .order_by(col(Conversation.id).desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
        )
        conversation_created = conversation is None
        reopened = False
        if conversation is None:
            # A conversation found in this inbox proves the inbox exists; only a new one needs the check
            # (a contact created above is rolled back with the error).
            if await tx.get(Inbox, inbound.inbox_id) is None:
                raise NotFound(f"inbox {inbound.inbox_id} not found")
            # Inserted with its first activity already set (no UPDATE after the message).
            conversation = Conversation(
                inbox_id=inbound.inbox_id,
                contact_id=key(contact),
                thread_key=inbound.thread_key,
                subject=inbound.subject,
                created_at=now,
                updated_at=now,
                last_activity_at=now,
                last_incoming_at=now,
                unread_count=1,
                preview=preview(inbound.text),
            )
            tx.add(conversation)
            await tx.flush()
        else:
            # The conversation's activity is written in the same flush as the message.
            reopened = touch_conversation(conversation, inbound, now)
        message = incoming_message(inbound, contact, conversation, now)
        tx.add(message)
        await tx.flush()
        attachments = [
            Attachment(
                message_id=message.id,
                filename=item.filename,
                content_type=item.content_type,
                size=blob.size,
                sha256=blob.sha256,
                storage_name=blob.storage_name,
            )
            for item, blob in stored
        ]
        if attachments:
            tx.add_all(attachments)
            await tx.flush()
        before: list[tuple[EventType, dict[str, Any]]] = []
        if contact_created:
            before.append((EventType.CONTACT_CREATED, views.contact(contact)))
        # A conversation opened in this transaction has no labels yet: no need to ask.
        conversation_view = await self._conversation_view(tx, conversation, labels=[] if conversation_created else None)
        if conversation_created:
            before.append((EventType.CONVERSATION_CREATED, conversation_view))
        elif reopened:
            before.append((EventType.CONVERSATION_UPDATED, {**conversation_view, "changes": ["status"]}))
        return Written(message, contact, conversation, conversation_view, before, attachments)

    async def contact_for(
        self, tx: AsyncSession, inbound: Inbound, threaded: Conversation | None = None
    ) -> tuple[Contact, bool]:
        """Find the contact through the sender's identity (or a verified email); create one otherwise.

        A new email identity whose address is the email the `threaded` conversation's contact gave (a chat
        visitor answering a continuity mail) joins that contact instead of starting another one."""
        sender = inbound.sender
        # The identity's contact in one statement (the identity row itself is not needed).
        contact = (
            await tx.execute(
                select(Contact)
                .join(Identity, col(Identity.contact_id) == col(Contact.id))
                .where(col(Identity.kind) == sender.kind, col(Identity.value) == sender.value)
            )
        ).scalar_one_or_none()
        if contact is not None:
            contact = await self._follow_merge(tx, contact)
            if sender.name and not contact.name:
                contact.name = sender.name
            return contact, False
        contact = None
        if sender.email and sender.verified:
            by_email = (
                await tx.execute(
                    select(Identity).where(col(Identity.kind) == "email", col(Identity.value) == sender.email.lower())
                )
            ).scalar_one_or_none()
            if by_email is not None:
                contact = await self._follow_merge(tx, await _get(tx, Contact, by_email.contact_id))
        if contact is None and threaded is not None and sender.kind == "email":
            owner = await self._follow_merge(tx, await _get(tx, Contact, threaded.contact_id))
            if owner.email and owner.email.lower() == sender.value.lower():
                contact = owner
        created = contact is None
        if contact is None:
            contact = Contact(name=sender.name, email=sender.email.lower() if sender.email else None)
            tx.add(contact)
            await tx.flush()
        tx.add(
            Identity(
                contact_id=key(contact),
                kind=str(sender.kind),
                value=sender.value,
                name=sender.name,
                verified=sender.verified,
            )
        )
        await tx.flush()
        return contact, created

    async def _follow_merge(self, tx: AsyncSession, contact: Contact) -> Contact:
        while contact.merged_into_id is not None:
            contact = await _get(tx, Contact, contact.merged_into_id)
        return contact

    async def edit_incoming(self, inbound: Inbound, edited_at: datetime | None = None) -> Delivered | None:
        """A customer edited a message: store the new text, mark it edited, publish `message.updated`.

        Answers None when `(inbox, external_id)` was never stored.
        """
        now = utcnow()
        async with self.store.transaction() as tx:
            message = (
                await tx.execute(
                    select(Message).where(
                        col(Message.inbox_id) == inbound.inbox_id, col(Message.external_id) == inbound.external_id
                    )
                )
            ).scalar_one_or_none()
            if message is None:
                return None
            conversation = await _get(tx, Conversation, message.conversation_id)
            result = Delivered(key(message), message.conversation_id, conversation.contact_id, False)
            if message.body == inbound.text and message.html == inbound.html:
                return result
            message.body = inbound.text
            message.html = inbound.html
            message.meta = {**message.meta, **inbound.metadata, "edited_at": (edited_at or now).isoformat()}
            message.updated_at = now
            attachments = await _attachments_of(tx, [key(message)])
            records = await self._append(
                tx,
                [(EventType.MESSAGE_UPDATED, views.message(message, attachments.get(key(message), [])))],
                inbox_id=message.inbox_id,
                conversation_id=message.conversation_id,
            )
        await self._publish(records)
        return result

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
            attachments = await _attachments_of(session, [key(message)])
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

    # ── outbox results ──────────────────────────────────────────────────────────────────────
    async def mark_sent(self, message_id: int, external_id: str | None) -> None:
        await self._set_delivery(message_id, MessageStatus.SENT, None, external_id=external_id, done=True)

    async def mark_failed(self, message_id: int, reason: str) -> None:
        await self._set_delivery(message_id, MessageStatus.FAILED, reason, done=True)

    async def note_retry(self, message_id: int, reason: str, next_attempt_at: datetime) -> None:
        """Record a transient failure; the message stays queued (no event: nothing changed for agents)."""
        async with self.store.transaction() as tx:
            await tx.execute(
                update(Outbox)
                .where(col(Outbox.message_id) == message_id)
                .values(last_error=reason, next_attempt_at=next_attempt_at)
            )

    async def retry(self, message_id: int) -> dict[str, Any]:
        """Queue a failed outgoing message again (the retry button)."""
        async with self.store.session() as session:
            message = await _get(session, Message, message_id)
        mail = message.kind == MessageKind.ACTIVITY and "continuity" in message.meta  # a continuity mail
        if not (message.kind == MessageKind.OUTGOING or mail) or message.status != MessageStatus.FAILED:
            raise Conflict(f"message {message_id} is not a failed outgoing message")
        view = await self._set_delivery(message_id, MessageStatus.QUEUED, None, done=False, reset=True)
        for wake in self.on_queued:
            wake()
        return view

    async def _set_delivery(
        self,
        message_id: int,
        status: MessageStatus,
        error: str | None,
        *,
        done: bool,
        external_id: str | None = None,
        reset: bool = False,
    ) -> dict[str, Any]:
        now = utcnow()
        async with self.store.transaction() as tx:
            message = await _get(tx, Message, message_id)
            message.status = status
            message.error = error
            message.updated_at = now
            if external_id is not None:
                message.external_id = external_id
            values: dict[str, Any] = {"done": done}
            if reset:
                values.update(attempts=0, next_attempt_at=now, last_error=None)
            elif error is not None:
                values["last_error"] = error
            await tx.execute(update(Outbox).where(col(Outbox.message_id) == message_id).values(**values))
            attachments = await _attachments_of(tx, [message_id])
            view = views.message(message, attachments.get(message_id, []))
            conversation = await _get(tx, Conversation, message.conversation_id)
            records = await self._append(
                tx,
                [(EventType.MESSAGE_UPDATED, view)],
                inbox_id=conversation.inbox_id,  # a continuity mail travels through another inbox
                conversation_id=message.conversation_id,
            )
        await self._publish(records)
        return view

    # ── uploads ─────────────────────────────────────────────────────────────────────────────
    async def add_upload(self, *, by: Agent, filename: str, content_type: str, blob: StoredBlob) -> dict[str, Any]:
        """Record an agent's upload, not yet part of a message (no event: only its uploader can use it)."""
        async with self.store.transaction() as tx:
            row = Attachment(
                uploaded_by=by.id,
                filename=filename,
                content_type=content_type,
                size=blob.size,
                sha256=blob.sha256,
                storage_name=blob.storage_name,
            )
            tx.add(row)
            await tx.flush()
            view = views.attachment(row)
        return view

    async def remove_unattached_uploads(self, older_than: timedelta, *, limit: int = 500) -> int:
        """Delete uploads never attached to a message, older than `older_than`, with their files.

        Each row is deleted only while still unattached, so a reply claiming it at the same moment wins;
        a file is removed once no other attachment row names it. No event: only the uploader knew of it.
        """
        cutoff = utcnow() - older_than
        async with self.store.transaction() as tx:
            rows = list(
                (
                    await tx.execute(
                        select(Attachment.id, Attachment.storage_name)
                        .where(col(Attachment.message_id).is_(None), col(Attachment.created_at) < cutoff)
                        .order_by(col(Attachment.id))
                        .limit(limit)
                    )
                ).all()
            )
            removed: list[str] = []
            for attachment_id, storage_name in rows:
                result = await tx.execute(
                    delete(Attachment).where(col(Attachment.id) == attachment_id, col(Attachment.message_id).is_(None))
                )
                if getattr(result, "rowcount", 0):
                    removed.append(storage_name)
            still_used = (
                set(
                    (
                        await tx.execute(
                            select(Attachment.storage_name).where(col(Attachment.storage_name).in_(removed))
                        )
                    ).scalars()
                )
                if removed
                else set()
            )
        for storage_name in removed:
            if storage_name not in still_used:
                await self.blobs.delete(storage_name)
        return len(removed)

    # ── contacts ────────────────────────────────────────────────────────────────────────────
    async def update_contact(self, contact_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        async with self.store.transaction() as tx:
            contact = await _get(tx, Contact, contact_id)
            for key, value in fields.items():
                setattr(contact, key, value)
            contact.updated_at = utcnow()
            identities = list(
                (await tx.execute(select(Identity).where(col(Identity.contact_id) == contact_id))).scalars()
            )
            view = views.contact(contact, identities)
            records = await self._append(tx, [(EventType.CONTACT_UPDATED, view)])
        await self._publish(records)
        return view

    async def set_contact_attributes(self, kind: str, value: str, attributes: Mapping[str, Any]) -> None:
        """Merge attributes into the contact owning identity `(kind, value)`; None removes a key.

        Channels use it for facts they learn (a Telegram username, "unreachable"); no event when unchanged.
        """
        async with self.store.transaction() as tx:
            identity = (
                await tx.execute(select(Identity).where(col(Identity.kind) == kind, col(Identity.value) == value))
            ).scalar_one_or_none()
            if identity is None:
                return
            contact = await self._follow_merge(tx, await _get(tx, Contact, identity.contact_id))
            merged = {**contact.attributes}
            for name, item in attributes.items():
                if item is None:
                    merged.pop(name, None)
                else:
                    merged[name] = item
            if merged == contact.attributes:
                return
            contact.attributes = merged
            contact.updated_at = utcnow()
            identities = list(
                (await tx.execute(select(Identity).where(col(Identity.contact_id) == contact.id))).scalars()
            )
            records = await self._append(tx, [(EventType.CONTACT_UPDATED, views.contact(contact, identities))])
        await self._publish(records)

    async def merge_contacts(self, source_id: int, target_id: int) -> dict[str, Any]:
        """Fold `source` into `target`: identities and conversations move; source points at target."""
        if source_id == target_id:
            raise Invalid("into_id: a contact cannot be merged into itself")
        async with self.store.transaction() as tx:
            source = await _get(tx, Contact, source_id)
            target = await _get(tx, Contact, target_id)
            if source.merged_into_id is not None or target.merged_into_id is not None:
                raise Conflict("contact was already merged")
            await tx.execute(update(Identity).where(col(Identity.contact_id) == source_id).values(contact_id=target_id))
            await tx.execute(
                update(Conversation).where(col(Conversation.contact_id) == source_id).values(contact_id=target_id)
            )
            target.name = target.name or source.name
            target.email = target.email or source.email
            target.phone = target.phone or source.phone
            target.attributes = {**source.attributes, **target.attributes}
            target.updated_at = utcnow()
            source.merged_into_id = target_id
            identities = list(
                (await tx.execute(select(Identity).where(col(Identity.contact_id) == target_id))).scalars()
            )
            view = views.contact(target, identities)
            records = await self._append(tx, [(EventType.CONTACT_MERGED, {**view, "merged_id": source_id})])
        await self._publish(records)
        return view

    # ── plumbing ────────────────────────────────────────────────────────────────────────────
    async def _conversation_view(
        self, tx: AsyncSession, conversation: Conversation, *, labels: list[str] | None = None
    ) -> dict[str, Any]:
        """The conversation as events carry it; `labels` when the caller knows them already."""
        contact = await tx.get(Contact, conversation.contact_id)
        if labels is not None:
            return views.conversation(conversation, contact, labels)
        labels = list(
            (
                await tx.execute(
                    select(Label.name)
                    .join(ConversationLabel, col(ConversationLabel.label_id) == Label.id)
                    .where(col(ConversationLabel.conversation_id) == conversation.id)
                )
            ).scalars()
        )
        return views.conversation(conversation, contact, labels)

    async def _append(
        self,
        tx: AsyncSession,
        pending: Sequence[tuple[EventType, dict[str, Any]]],
        *,
        inbox_id: int | None = None,
        conversation_id: int | None = None,
    ) -> list[EventRecord]:
        rows = [
            await events.append(tx, type_, data, inbox_id=inbox_id, conversation_id=conversation_id)
            for type_, data in pending
        ]
        return [EventRecord.of(row) for row in rows]

    async def _publish(self, records: Iterable[EventRecord]) -> None:
        for record in records:
            await self.broker.publish(record)

    async def append(
        self,
        tx: AsyncSession,
        pending: Sequence[tuple[EventType, dict[str, Any]]],
        *,
        inbox_id: int | None = None,
        conversation_id: int | None = None,
    ) -> list[EventRecord]:
        """Append events inside a sibling writer's open transaction (see `inbox.directory`); publish after commit."""
        return await self._append(tx, pending, inbox_id=inbox_id, conversation_id=conversation_id)

    async def publish(self, records: Iterable[EventRecord]) -> None:
        """Publish events appended with `append`, once their transaction has committed."""
        await self._publish(records)


async def _get(session: AsyncSession, model: Any, key: Any) -> Any:
    row = await session.get(model, key)
    if row is None:
        raise NotFound(f"{model.__tablename__} {key} not found")
    return row


async def _attachments_of(session: AsyncSession, message_ids: Sequence[int]) -> dict[int, list[Attachment]]:
    if not message_ids:
        return {}
    rows = (
        await session.execute(
            select(Attachment).where(col(Attachment.message_id).in_(message_ids)).order_by(col(Attachment.id))
        )
    ).scalars()
    return dict(views.group((row.message_id, row) for row in rows if row.message_id is not None))
