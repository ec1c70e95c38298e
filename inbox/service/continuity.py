"""The service's part for email continuity of live chats: the mail of unseen replies queued in the outbox
(sent through the email inbox), its activity line, and the conversation's continuity mark — one transaction,
so a mail is queued once however many workers hold the lease in turn. When and what to mail is
`inbox.continuity`'s policy."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from inbox.clock import utcnow
from inbox.read import views
from inbox.realtime.events import EventRecord, EventType
from inbox.service.base import ServiceBase
from inbox.store.models import Continuity, Conversation, MessageKind


class ContinuityWrites(ServiceBase):
    async def queue_continuity_mail(
        self, conversation_id: int, *, chat_id: int, email_inbox_id: int, up_to: int, meta: dict[str, Any], body: str
    ) -> bool:
        """Queue the continuity mail unless the mark shows it queued up to `up_to` already; whether it did."""
        now = utcnow()
        records: list[EventRecord] = []
        async with self.store.transaction() as tx:
            query = select(Continuity).where(col(Continuity.conversation_id) == conversation_id)
            if not self.store.is_sqlite:
                query = query.with_for_update()
            state = (await tx.execute(query)).scalar_one_or_none()
            conversation = await tx.get(Conversation, conversation_id)
            if state is None or conversation is None or state.emailed_up_to >= up_to:
                return False
            line = await self.queue_system_message(
                tx,
                conversation,
                body,
                now=now,
                meta={"continuity": meta},
                sender_name="Switchboard",
                kind=MessageKind.ACTIVITY,
                inbox_id=email_inbox_id,
            )
            state.emailed_up_to = up_to
            state.due_at = None
            state.updated_at = now
            records = await self._append(
                tx,
                [(EventType.MESSAGE_CREATED, views.message(line))],
                inbox_id=chat_id,
                conversation_id=conversation_id,
            )
        await self._publish(records)
        self.wake_outbox()
        return True
