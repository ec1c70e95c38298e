"""The email-continuity worker: follows the event log, records what chat visitors saw, queues the batched mail.

One process of the cluster runs `ContinuityWorker.run` (app.py holds the `timer:continuity` lease around it);
`record_seen` runs in whichever process holds the visitor's socket. The rules (settings, the mail's text, its
`Outbound`) are the pure functions of `inbox.read.continuity`; README "Email continuity for live chat" tells the story.
This module writes only `Continuity` rows and, in `_queue`, one activity line + outbox row through the service's
event log (like `inbox.admin.directory`).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from inbox.clock import utcnow
from inbox.config import ContinuityConfig
from inbox.read.continuity import (
    CURSOR,
    EVENT_BATCH,
    MAX_REPLIES,
    activity_text,
    address_of,
    chat_link,
    compose_text,
    email_inbox_of,
)
from inbox.realtime import events
from inbox.realtime.events import EventType
from inbox.store.engine import Store
from inbox.store.models import (
    Contact,
    Continuity,
    Conversation,
    Cursor,
    Event,
    Inbox,
    Message,
    MessageKind,
    MessageStatus,
    key,
)

if TYPE_CHECKING:
    from inbox.service import InboxService

log = logging.getLogger(__name__)


class ContinuityWorker:
    """Schedules chat conversations from the event log, records what visitors saw, queues the batched mail."""

    def __init__(self, store: Store, service: InboxService, config: ContinuityConfig) -> None:
        self.store = store
        self.service = service
        self.config = config

    async def run(self) -> None:
        """Follow events and send due mail until cancelled (one process of the cluster runs this)."""
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("continuity: a pass failed; trying again")
            await asyncio.sleep(self.config.interval_seconds)

    async def tick(self) -> int:
        """One pass: schedule from new events, then queue every due mail; answers how many were queued."""
        while await self.follow_events() == EVENT_BATCH:
            pass
        return await self.send_due()

    # ── what the visitor saw ────────────────────────────────────────────────────────────────
    async def record_seen(self, conversation_id: int, message_id: int) -> None:
        """The visitor saw the chat up to `message_id` (clamped to the conversation's newest reply)."""
        async with self.store.session() as session:
            newest = (
                await session.execute(
                    select(func.max(Message.id)).where(
                        col(Message.conversation_id) == conversation_id, col(Message.kind) == MessageKind.OUTGOING
                    )
                )
            ).scalar()
        seen = min(message_id, int(newest or 0))
        if seen <= 0:
            return
        await self._upsert(
            conversation_id,
            col(Continuity.seen_up_to) < seen,
            {"seen_up_to": seen},
            Continuity(conversation_id=conversation_id, seen_up_to=seen),
        )

    async def _upsert(self, conversation_id: int, condition: Any, values: dict[str, Any], row: Continuity) -> None:
        """Conditional UPDATE of one row (never lowers a mark), or INSERT it; atomic on both databases."""
        for _ in range(2):
            async with self.store.transaction() as tx:
                result: Any = await tx.execute(
                    update(Continuity)
                    .where(col(Continuity.conversation_id) == conversation_id, condition)
                    .values(**values, updated_at=utcnow())
                )
                if result.rowcount or await tx.get(Continuity, conversation_id) is not None:
                    return
            try:
                async with self.store.transaction() as tx:
                    tx.add(row)
                return
            except IntegrityError:
                continue  # another writer inserted it: update it instead

    # ── scheduling from the event log ───────────────────────────────────────────────────────
    async def follow_events(self) -> int:
        """Read the next events after the cursor; schedule the chats that got an agent reply. Answers how many."""
        async with self.store.session() as session:
            mark = await session.get(Cursor, CURSOR)
            after = int(mark.value) if mark is not None else await self._start(session)
            chats = await self._chat_inboxes(session)
            # No chat inbox is continued by email: skip the log rather than read it.
            records = await events.after(session, after, limit=EVENT_BATCH) if chats else []
            skip_to = None if chats else await events.latest_id(session)
        if skip_to is not None:
            if mark is None or skip_to != after:
                await self._save_cursor(skip_to)
            return 0
        delay = timedelta(seconds=self.config.delay_seconds)
        for record in records:
            data = record.data
            if record.type != EventType.MESSAGE_CREATED or record.inbox_id not in chats:
                continue
            if data.get("kind") != MessageKind.OUTGOING or not isinstance(record.conversation_id, int):
                continue
            try:
                created = datetime.fromisoformat(str(data.get("created_at")))
            except ValueError:
                created = utcnow()
            await self.schedule(record.conversation_id, created + delay)
        newest = records[-1].id if records else after
        if mark is None or newest != after:
            await self._save_cursor(newest)
        return len(records)

    async def _start(self, session: Any) -> int:
        """Without a cursor (first start): only replies recent enough to be still unsent matter."""
        since = utcnow() - timedelta(seconds=self.config.max_delay_seconds)
        first = (await session.execute(select(func.min(Event.id)).where(col(Event.created_at) >= since))).scalar()
        if first is not None:
            return int(first) - 1
        return await events.latest_id(session)

    async def _save_cursor(self, value: int) -> None:
        try:
            async with self.store.transaction() as tx:
                row = await tx.get(Cursor, CURSOR)
                if row is None:
                    tx.add(Cursor(key=CURSOR, value=str(value), updated_at=utcnow()))
                else:
                    row.value = str(value)
                    row.updated_at = utcnow()
        except IntegrityError:
            log.warning("continuity: cursor written by another process at the same time")

    async def _chat_inboxes(self, session: Any) -> dict[int, int]:
        """Chat inbox id → the email inbox that continues its conversations."""
        rows = (await session.execute(select(Inbox).where(col(Inbox.channel) == "webchat"))).scalars()
        return {key(row): target for row in rows if (target := email_inbox_of(row.settings)) is not None}

    async def schedule(self, conversation_id: int, at: datetime) -> None:
        """Look at the conversation at `at` (or earlier, if it is due sooner already)."""
        await self._upsert(
            conversation_id,
            col(Continuity.due_at).is_(None) | (col(Continuity.due_at) > at),
            {"due_at": at},
            Continuity(conversation_id=conversation_id, due_at=at),
        )

    # ── sending ─────────────────────────────────────────────────────────────────────────────
    async def send_due(self) -> int:
        now = utcnow()
        async with self.store.session() as session:
            due = list(
                (
                    await session.execute(
                        select(Continuity.conversation_id)
                        .where(col(Continuity.due_at) <= now)
                        .order_by(col(Continuity.due_at))
                        .limit(100)
                    )
                ).scalars()
            )
        queued = 0
        for conversation_id in due:
            try:
                queued += await self.check(conversation_id)
            except Exception:
                log.exception("continuity: conversation %s could not be checked", conversation_id)
        return queued

    async def check(self, conversation_id: int) -> int:
        """Queue the conversation's mail if it is time; reschedule or clear it otherwise. Answers 1 if queued."""
        now = utcnow()
        async with self.store.session() as session:
            state = await session.get(Continuity, conversation_id)
            conversation = await session.get(Conversation, conversation_id)
            chat = await session.get(Inbox, conversation.inbox_id) if conversation else None
            target_id = email_inbox_of(chat.settings) if chat else None
            target = await session.get(Inbox, target_id) if target_id else None
            if state is None or conversation is None or chat is None or target is None:
                return await self._clear(conversation_id)
            contact = await session.get(Contact, conversation.contact_id)
            while contact is not None and contact.merged_into_id is not None:
                contact = await session.get(Contact, contact.merged_into_id)
            address = address_of(contact.email if contact else None)
            if address is None:
                return await self._clear(conversation_id)  # a visitor who left no email gets nothing
            floor = max(state.seen_up_to, state.emailed_up_to)
            floor = max(floor, await self._answered(session, conversation_id, floor))
            replies = list(
                (
                    await session.execute(
                        select(Message)
                        .where(
                            col(Message.conversation_id) == conversation_id,
                            col(Message.kind) == MessageKind.OUTGOING,
                            col(Message.id) > floor,
                            col(Message.status) != MessageStatus.FAILED,
                        )
                        .order_by(col(Message.id))
                        .limit(MAX_REPLIES)
                    )
                ).scalars()
            )
            if not replies:
                return await self._clear(conversation_id)
            send_at = min(
                replies[-1].created_at + timedelta(seconds=self.config.delay_seconds),
                replies[0].created_at + timedelta(seconds=self.config.max_delay_seconds),
            )
            if send_at > now:
                await self._reschedule(conversation_id, send_at)
                return 0
            previous = await self._previous_mail(session, conversation_id, key(target))
        assert contact is not None
        names = list(dict.fromkeys(reply.sender_name for reply in replies if reply.sender_name))
        meta = {
            "to": address,
            "name": contact.name,
            "replies": [key(reply) for reply in replies],
            "subject": conversation.subject or f"Your chat with {chat.name}",
            "from_name": names[0] if len(names) == 1 else chat.name,
            "text": compose_text(chat.name, replies, chat_link(chat.settings)),
            "in_reply_to": previous[0],
            "references": previous[1],
        }
        return await self._queue(conversation_id, key(chat), key(target), key(replies[-1]), meta, len(replies))

    async def _answered(self, session: Any, conversation_id: int, floor: int) -> int:
        """The visitor's newest own message after `floor` (they saw the chat then); an autoresponder's is not."""
        rows = (
            await session.execute(
                select(Message.id, Message.meta)
                .where(
                    col(Message.conversation_id) == conversation_id,
                    col(Message.kind) == MessageKind.INCOMING,
                    col(Message.id) > floor,
                )
                .order_by(col(Message.id).desc())
                .limit(MAX_REPLIES)
            )
        ).all()
        for message_id, meta in rows:
            mail = meta.get("email") if isinstance(meta, dict) else None
            if not (isinstance(mail, dict) and mail.get("automatic")):
                return int(message_id)
        return 0

    async def _previous_mail(self, session: Any, conversation_id: int, target_id: int) -> tuple[str | None, list[str]]:
        """What a new continuity mail answers, for threading: the visitor's last mail, or our last one."""
        rows = list(
            (
                await session.execute(
                    select(Message)
                    .where(
                        col(Message.conversation_id) == conversation_id,
                        col(Message.inbox_id) == target_id,
                        col(Message.external_id).is_not(None),
                    )
                    .order_by(col(Message.id).desc())
                    .limit(1)
                )
            ).scalars()
        )
        if not rows or not rows[0].external_id:
            return None, []
        last = rows[0]
        source = last.meta.get("email") if last.kind == MessageKind.INCOMING else last.meta.get("continuity")
        earlier = source.get("references") if isinstance(source, dict) else None
        references = [item for item in earlier if isinstance(item, str)] if isinstance(earlier, list) else []
        return last.external_id, [*references, last.external_id][-20:]

    async def _queue(
        self, conversation_id: int, chat_id: int, target_id: int, up_to: int, meta: dict[str, Any], count: int
    ) -> int:
        """One transaction: the activity line (queued, through the email inbox), its outbox row, the new mark."""
        queued = await self.service.queue_continuity_mail(
            conversation_id,
            chat_id=chat_id,
            email_inbox_id=target_id,
            up_to=up_to,
            meta=meta,
            body=activity_text(meta["to"], count),
        )
        if not queued:
            return 0  # queued already (by an earlier holder of the lease)
        log.info("continuity: conversation %s: %s unseen replies queued as one mail", conversation_id, count)
        return 1

    async def _clear(self, conversation_id: int) -> int:
        async with self.store.transaction() as tx:
            await tx.execute(
                update(Continuity).where(col(Continuity.conversation_id) == conversation_id).values(due_at=None)
            )
        return 0

    async def _reschedule(self, conversation_id: int, at: datetime) -> None:
        async with self.store.transaction() as tx:
            await tx.execute(
                update(Continuity).where(col(Continuity.conversation_id) == conversation_id).values(due_at=at)
            )
