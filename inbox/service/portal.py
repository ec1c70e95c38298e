"""The service's part for acknowledgements and the customer portal: the acknowledgement (its row, the message
queued in the outbox) and a customer's reply from the portal (an incoming message on the conversation's own
channel). What to say and to whom, and who may reply where, is `inbox.portal`'s policy, passed in."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from channels.base import Identity as Sender
from channels.base import IdentityKind, Inbound
from inbox.errors import NotFound
from inbox.read import views
from inbox.realtime.events import EventRecord, EventType
from inbox.service.base import ServiceBase, _get
from inbox.service.rows import incoming_message, touch_conversation
from inbox.store.models import Acknowledgement, Contact, Conversation, Inbox, Message, MessageKind, key


class PortalWrites(ServiceBase):
    """The acknowledgement of a new conversation and the customer's reply from the portal."""

    async def queue_acknowledgement(
        self,
        conversation_id: int,
        body: str,
        *,
        address_hash: str,
        per_address: int,
        window: timedelta,
        meta: dict[str, Any],
        now: datetime,
    ) -> bool:
        """Queue the acknowledgement unless the conversation has one or the address had `per_address` in the
        last `window`; whether it did. Two processes racing collide on the primary key (IntegrityError)."""
        records: list[EventRecord] = []
        async with self.store.transaction() as tx:
            conversation = await tx.get(Conversation, conversation_id)
            if conversation is None or await tx.get(Acknowledgement, conversation_id) is not None:
                return False
            recent = (
                await tx.execute(
                    select(func.count())
                    .select_from(Acknowledgement)
                    .where(
                        col(Acknowledgement.address_hash) == address_hash,
                        col(Acknowledgement.created_at) > now - window,
                    )
                )
            ).scalar_one()
            if recent >= per_address:
                return False
            inbox = await tx.get(Inbox, conversation.inbox_id)
            row = Acknowledgement(conversation_id=conversation_id, address_hash=address_hash, created_at=now)
            tx.add(row)
            await tx.flush()
            # An activity line that is also sent (like the continuity mail): agents see it in the thread, and
            # it is no reply, so it meets no SLA promise and sets no first-reply time.
            message = await self.queue_system_message(
                tx,
                conversation,
                body,
                now=now,
                meta={**meta, "acknowledgement": True, "options": {"reply_all": False, "automatic": True}},
                sender_name=inbox.name if inbox else "",
                kind=MessageKind.ACTIVITY,
            )
            row.message_id = key(message)
            records = await self._append(
                tx,
                [(EventType.MESSAGE_CREATED, views.message(message))],
                inbox_id=conversation.inbox_id,
                conversation_id=conversation_id,
            )
        await self._publish(records)
        self.wake_outbox()
        return True

    async def reply_from_portal(
        self, conversation_id: int, text: str, *, address: str, client_id: str, now: datetime
    ) -> tuple[int, bool]:
        """Store the customer's portal reply as an incoming message of the conversation, on its channel (so an
        agent's answer goes back the way the customer last wrote); the message id and whether it was new.
        Idempotent on `client_id`. The caller checked that this customer may see the conversation."""
        external_id = f"portal:{client_id}"
        records: list[EventRecord] = []
        async with self.store.transaction() as tx:
            conversation = await tx.get(Conversation, conversation_id)
            if conversation is None:
                raise NotFound(f"conversation {conversation_id} not found")
            duplicate = (
                await tx.execute(
                    select(Message.id).where(
                        col(Message.inbox_id) == conversation.inbox_id, col(Message.external_id) == external_id
                    )
                )
            ).scalar_one_or_none()
            if duplicate is not None:
                return duplicate, False
            contact = await self._follow_merge(tx, await _get(tx, Contact, conversation.contact_id))
            identity = await self._last_identity(tx, conversation_id)
            kind = identity.get("kind")
            sender = Sender(
                IdentityKind(kind) if kind in set(IdentityKind) else IdentityKind.EMAIL,
                str(identity.get("value") or address),
                name=contact.name,
                email=identity.get("email") or address,
            )
            inbound = Inbound(
                inbox_id=conversation.inbox_id,
                external_id=external_id,
                thread_key=conversation.thread_key,
                sender=sender,
                text=text,
                metadata={"portal": {"address": address}},
            )
            reopened = touch_conversation(conversation, inbound, now)
            message = incoming_message(inbound, contact, conversation, now)
            tx.add(message)
            await tx.flush()
            view = await self._conversation_view(tx, conversation)
            pending: list[tuple[EventType, dict[str, Any]]] = []
            if reopened:
                pending.append((EventType.CONVERSATION_UPDATED, {**view, "changes": ["status"]}))
            pending.append((EventType.MESSAGE_CREATED, {**views.message(message), "conversation": view}))
            records = await self._append(tx, pending, inbox_id=conversation.inbox_id, conversation_id=conversation_id)
        await self._publish(records)
        return key(message), True

    async def _last_identity(self, tx: Any, conversation_id: int) -> dict[str, Any]:
        """Who the customer was on the channel when they last wrote (replies go back to that identity)."""
        meta = (
            await tx.execute(
                select(Message.meta)
                .where(col(Message.conversation_id) == conversation_id, col(Message.kind) == MessageKind.INCOMING)
                .order_by(col(Message.id).desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        identity = meta.get("identity") if isinstance(meta, dict) else None
        return dict(identity) if isinstance(identity, dict) else {}
