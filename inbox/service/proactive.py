"""The service's part for proactive greetings: when a visitor answers a greeting, the conversation opens with
the greeting as its first (already delivered) message — idempotent per greeting by its external id. Which rule
and what to measure is `inbox.selfserve`'s, passed in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from channels.base import Identity, Inbound
from inbox.clock import utcnow
from inbox.read import views
from inbox.realtime.events import EventType
from inbox.service.base import ServiceBase
from inbox.store.models import Conversation, Message, MessageKind, MessageStatus, key


class ProactiveWrites(ServiceBase):
    async def open_with_greeting(
        self,
        *,
        inbox_id: int,
        rule_id: int | None,
        greeting: str,
        thread_key: str,
        sender: Identity,
        external_id: str,
        also: Callable[[AsyncSession], Awaitable[Any]],
    ) -> tuple[int, int, bool]:
        """(conversation id, message id, created). `also` runs in the same transaction (a measurement)."""
        now = utcnow()
        async with self.store.transaction() as tx:
            found = (
                await tx.execute(
                    select(Message).where(col(Message.inbox_id) == inbox_id, col(Message.external_id) == external_id)
                )
            ).scalar_one_or_none()
            if found is not None:
                return found.conversation_id, key(found), False
            probe = Inbound(inbox_id, external_id, thread_key, sender, "")
            # The same contact lookup as an inbound message, so the reply that follows finds the same contact.
            contact, contact_created = await self.contact_for(tx, probe)  # type: ignore[attr-defined]
            conversation = Conversation(
                inbox_id=inbox_id,
                contact_id=key(contact),
                thread_key=thread_key,
                created_at=now,
                updated_at=now,
                last_activity_at=now,
                preview=greeting[:160],
            )
            tx.add(conversation)
            await tx.flush()
            message = Message(
                conversation_id=key(conversation),
                inbox_id=inbox_id,
                kind=MessageKind.OUTGOING,
                body=greeting,
                sender_type="system",
                sender_name="",
                status=MessageStatus.SENT,
                external_id=external_id,
                meta={"automatic": True, "proactive_rule_id": rule_id},
                created_at=now,
                updated_at=now,
            )
            tx.add(message)
            await tx.flush()
            conversation_view = views.conversation(conversation, contact, [])
            pending: list[tuple[EventType, dict[str, Any]]] = []
            if contact_created:
                pending.append((EventType.CONTACT_CREATED, views.contact(contact)))
            pending.append((EventType.CONVERSATION_CREATED, conversation_view))
            pending.append((EventType.MESSAGE_CREATED, {**views.message(message), "conversation": conversation_view}))
            await also(tx)
            records = await self._append(tx, pending, inbox_id=inbox_id, conversation_id=conversation.id)
        await self._publish(records)
        return key(conversation), key(message), True
