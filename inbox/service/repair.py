"""Repair of misfiled inbound messages: `switchboard repair misfiled` (dry run unless `--apply`).

Until the direct inbound writer paired its look-up rows with messages by key (see `inbox.service.ingest.direct`),
PostgreSQL could file a customer's message under another customer's contact and conversation. Every
incoming message keeps the identity it arrived with (`meta.identity`); a message whose conversation's
contact does not own that identity (merges followed) is misfiled. It moves to its sender's own
conversation in the same inbox — the newest one — or to one opened for it (with the sender's contact and
identity, when the sender never got one). Both conversations get an activity line saying what moved and
why, and an event each, so open inboxes update.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as core_select
from sqlmodel import col, select

from inbox.clock import utcnow
from inbox.read import views
from inbox.realtime.events import EventRecord, EventType
from inbox.service.base import ServiceBase
from inbox.store.models import Contact, Conversation, Identity, Message, MessageKind, Status


@dataclass(frozen=True, slots=True)
class Misfiled:
    """One message filed under another customer: where it is and whose it is."""

    message_id: int
    inbox_id: int
    conversation_id: int  # where it was filed
    filed_contact_id: int
    sender_kind: str
    sender_value: str
    owner_contact_id: int | None  # the contact that owns the sender's identity; None: the sender has none yet
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Moved:
    message_id: int
    from_conversation: int
    to_conversation: int
    contact_id: int


def _root(contacts: dict[int, int | None], contact_id: int | None) -> int | None:
    """The contact `contact_id` was merged into, transitively (itself when never merged)."""
    seen: set[int] = set()
    while contact_id is not None and contacts.get(contact_id) is not None and contact_id not in seen:
        seen.add(contact_id)
        contact_id = contacts[contact_id]
    return contact_id


class Repairs(ServiceBase):
    """Finding and moving misfiled inbound messages (the only writer moves them)."""

    async def find_misfiled(self) -> list[Misfiled]:
        """Every incoming message whose conversation's contact does not own the identity it arrived with."""
        async with self.store.session() as session:
            merged = {row[0]: row[1] for row in await session.execute(select(Contact.id, Contact.merged_into_id))}
            owners = {
                (kind, value): contact_id
                for kind, value, contact_id in await session.execute(
                    select(Identity.kind, Identity.value, Identity.contact_id)
                )
            }
            rows = await session.execute(
                core_select(
                    col(Message.id),
                    col(Message.inbox_id),
                    col(Message.conversation_id),
                    col(Message.meta),
                    col(Message.created_at),
                    col(Conversation.contact_id),
                )
                .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
                .where(col(Message.kind) == MessageKind.INCOMING)
                .order_by(col(Message.id))
            )
            found: list[Misfiled] = []
            for message_id, inbox_id, conversation_id, meta, created_at, filed_contact in rows:
                identity = (meta or {}).get("identity") or {}
                kind, value = identity.get("kind"), identity.get("value")
                if not kind or not value:
                    continue  # older rows without the identity: nothing to compare with
                owner = _root(merged, owners.get((str(kind), str(value))))
                if owner is not None and owner == _root(merged, filed_contact):
                    continue
                found.append(
                    Misfiled(
                        message_id,
                        inbox_id,
                        conversation_id,
                        filed_contact,
                        str(kind),
                        str(value),
                        owner,
                        created_at,
                    )
                )
            return found

    async def refile(self, misfiled: Iterable[Misfiled]) -> list[Moved]:
        """Move each misfiled message to its sender's own conversation (one transaction; events after)."""
        items = list(misfiled)
        if not items:
            return []
        now = utcnow()
        moved: list[Moved] = []
        touched: set[int] = set()
        async with self.store.transaction() as tx:
            opened: dict[tuple[int, str, str], Conversation] = {}
            new_contacts: list[Contact] = []
            for item in items:
                message = await tx.get(Message, item.message_id)
                if message is None or message.conversation_id != item.conversation_id:
                    continue  # moved or gone since it was found
                contact = await self._owner(tx, item, new_contacts, now)
                target = await self._own_conversation(tx, item, contact, opened, now)
                assert target.id is not None and contact.id is not None
                message.conversation_id = target.id
                message.sender_id = contact.id
                message.updated_at = now
                moved.append(Moved(item.message_id, item.conversation_id, target.id, contact.id))
                touched.update((item.conversation_id, target.id))
            await tx.flush()
            by_conversation: dict[int, list[Moved]] = defaultdict(list)
            for move in moved:
                by_conversation[move.from_conversation].append(move)
                by_conversation[move.to_conversation].append(move)
            pending: list[tuple[EventType, dict[str, Any], int | None, int | None]] = []
            records: list[EventRecord] = []
            for contact in new_contacts:
                pending.append((EventType.CONTACT_CREATED, views.contact(contact), None, None))
            for conversation_id in sorted(touched):
                conversation = await tx.get(Conversation, conversation_id)
                assert conversation is not None
                await self._recount(tx, conversation)
                line = _activity_text(conversation_id, by_conversation[conversation_id])
                activity = self.activity_message(
                    conversation_id,
                    conversation.inbox_id,
                    line,
                    now=now,
                    meta={
                        "repair": "misfiled",
                        "messages": [move.message_id for move in by_conversation[conversation_id]],
                    },
                )
                tx.add(activity)
                await tx.flush()
                view = await self._conversation_view(tx, conversation)
                pending.append(
                    (EventType.MESSAGE_CREATED, views.message(activity, []), conversation.inbox_id, conversation_id)
                )
                pending.append(
                    (
                        EventType.CONVERSATION_UPDATED,
                        {**view, "changes": ["messages"]},
                        conversation.inbox_id,
                        conversation_id,
                    )
                )
            for type_, data, inbox_id, target_id in pending:
                records.extend(await self._append(tx, [(type_, data)], inbox_id=inbox_id, conversation_id=target_id))
        await self._publish(records)
        return moved

    async def _owner(self, tx: Any, item: Misfiled, new_contacts: list[Contact], now: datetime) -> Contact:
        """The sender's contact; opened, with its identity, when the sender never got one."""
        if item.owner_contact_id is not None:
            contact = await tx.get(Contact, item.owner_contact_id)
            assert contact is not None
            return contact  # type: ignore[no-any-return]
        identity = (
            await tx.execute(
                select(Identity).where(col(Identity.kind) == item.sender_kind, col(Identity.value) == item.sender_value)
            )
        ).scalar_one_or_none()
        if identity is not None:  # opened for an earlier message of the same sender in this repair
            contact = await tx.get(Contact, identity.contact_id)
            assert contact is not None
            return contact  # type: ignore[no-any-return]
        message = await tx.get(Message, item.message_id)
        contact = Contact(name=message.sender_name if message else "", created_at=now, updated_at=now)
        tx.add(contact)
        await tx.flush()
        tx.add(Identity(contact_id=key_of(contact), kind=item.sender_kind, value=item.sender_value, created_at=now))
        new_contacts.append(contact)
        return contact

    async def _own_conversation(
        self,
        tx: Any,
        item: Misfiled,
        contact: Contact,
        opened: dict[tuple[int, str, str], Conversation],
        now: datetime,
    ) -> Conversation:
        """The sender's newest conversation in the message's inbox, or one opened for the repair."""
        key = (item.inbox_id, item.sender_kind, item.sender_value)
        if key in opened:
            return opened[key]
        found = (
            await tx.execute(
                select(Conversation)
                .where(col(Conversation.inbox_id) == item.inbox_id, col(Conversation.contact_id) == contact.id)
                .order_by(col(Conversation.id).desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if found is not None:
            return found  # type: ignore[no-any-return]
        # No conversation of the sender's own: one for the repaired messages. Its thread key cannot be the
        # channel's (only the channel derives it), so the sender's next message opens a new conversation.
        conversation = Conversation(
            inbox_id=item.inbox_id,
            contact_id=key_of(contact),
            thread_key=f"repaired:{item.sender_kind}:{item.sender_value}"[:512],
            status=Status.OPEN,
            created_at=item.created_at,
            updated_at=now,
            last_activity_at=item.created_at,
        )
        tx.add(conversation)
        await tx.flush()
        opened[key] = conversation
        return conversation

    async def _recount(self, tx: Any, conversation: Conversation) -> None:
        """The conversation's activity, preview and last incoming time from the messages it now holds."""
        rows = await tx.execute(
            select(func.max(Message.created_at), func.max(Message.id)).where(
                col(Message.conversation_id) == conversation.id
            )
        )
        last_at, last_id = rows.one()
        incoming = (
            await tx.execute(
                select(func.max(Message.created_at)).where(
                    col(Message.conversation_id) == conversation.id, col(Message.kind) == MessageKind.INCOMING
                )
            )
        ).scalar_one()
        if last_id is not None:
            last = await tx.get(Message, last_id)
            conversation.preview = (last.body if last else "")[:200]
            conversation.last_activity_at = last_at
        conversation.last_incoming_at = incoming
        conversation.updated_at = utcnow()


def key_of(contact: Contact) -> int:
    assert contact.id is not None
    return contact.id


def _activity_text(conversation_id: int, moves: list[Moved]) -> str:
    away = [move.message_id for move in moves if move.from_conversation == conversation_id]
    here = [move.message_id for move in moves if move.to_conversation == conversation_id]
    parts = []
    if away:
        parts.append(f"{len(away)} message(s) moved to their sender's own conversation (filed here by mistake)")
    if here:
        parts.append(f"{len(here)} message(s) of this customer moved here (they had been filed under another customer)")
    return "; ".join(parts) + "."
