"""Email continuity for live chat: agent replies a widget visitor has not seen go to them by email, batched.

A webchat inbox names an email inbox in its settings (`email_continuity_inbox_id`). The worker (one per
cluster, under a lease) follows the event log from a durable cursor: an agent reply in such an inbox schedules
its conversation. When the agent has been quiet for `delay_seconds` (at most `max_delay_seconds` after the
first unseen reply), every reply newer than what the visitor has seen (the widget's "seen" frames, recorded
durably by `record_seen`), what was emailed before and the visitor's own last message becomes ONE mail to the
contact's email address. The decision and the mail are one transaction: an activity line ("Sent by email …")
travelling through the email inbox, with an outbox row — so the outbox sends it once, retries it, and a
restart neither loses nor doubles it. The email channel threads the visitor's answer back into the chat
conversation (cross-inbox match by the continuity mail's token; the core accepts it because of the setting).

This module writes only its own `Continuity` rows and, like `inbox.directory`, appends its events through
the service. It names no concrete channel: the mail is an `Outbound` for whatever channel the named inbox has.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from channels.base import Identity, IdentityKind, InboxInfo, Outbound, OutboundAttachment
from inbox import events, views
from inbox.clock import utcnow
from inbox.config import ContinuityConfig
from inbox.errors import Invalid
from inbox.events import EventType
from inbox.models import (
    Contact,
    Continuity,
    Conversation,
    Cursor,
    Event,
    Inbox,
    Message,
    MessageKind,
    MessageStatus,
    Outbox,
    key,
)
from inbox.store import Store

if TYPE_CHECKING:
    from inbox.service import InboxService

log = logging.getLogger(__name__)

INBOX_KEY = "email_continuity_inbox_id"  # webchat inbox setting: the email inbox that carries continuity mail
LINK_KEY = "email_continuity_chat_url"  # webchat inbox setting: the page with the widget, linked from the mail
CURSOR = "continuity.events"
EVENT_BATCH = 500
MAX_REPLIES = 50  # replies in one mail; more go into the next one


# ── settings (pure) ─────────────────────────────────────────────────────────────────────────
def email_inbox_of(settings: Mapping[str, Any]) -> int | None:
    """The email inbox a chat inbox's settings name for continuity, or None when it is off."""
    value = settings.get(INBOX_KEY)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def links(chat_settings: Mapping[str, Any], email_inbox_id: int) -> bool:
    """Whether a conversation of the chat inbox with these settings may receive mail through `email_inbox_id`."""
    return email_inbox_of(chat_settings) == email_inbox_id


def check_settings(channel: str, settings: Mapping[str, Any], inboxes: Mapping[int, str]) -> None:
    """Refuse bad continuity settings with an error naming the key; `inboxes` maps inbox ids to channels."""
    value = settings.get(INBOX_KEY)
    if value is not None:
        if channel != "webchat":
            raise Invalid(f"settings.{INBOX_KEY}: only a webchat inbox continues its chats by email")
        if isinstance(value, bool) or not isinstance(value, int) or inboxes.get(value) != "email":
            raise Invalid(f"settings.{INBOX_KEY}: expected the id of an email inbox, got {value!r}")
    link = settings.get(LINK_KEY)
    if link is not None and link != "":
        parts = urlsplit(link) if isinstance(link, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or len(link) > 2000:
            raise Invalid(f"settings.{LINK_KEY}: expected an http(s) address of the page with the chat, got {link!r}")


# ── the mail (pure) ─────────────────────────────────────────────────────────────────────────
def compose_text(inbox_name: str, replies: Sequence[Message], link: str | None) -> str:
    """The mail's Markdown: every unseen reply with its author, then how to answer."""
    count = len(replies)
    lines = [f"You have {count} new {'reply' if count == 1 else 'replies'} in your chat with {inbox_name}:", ""]
    for reply in replies:
        lines += [f"**{reply.sender_name or inbox_name}:**", "", reply.body.strip(), "", "---", ""]
    lines.append("Reply to this email to answer; your answer joins the same conversation.")
    if link:
        lines += ["", f"Or continue the chat: <{link}>"]
    return "\n".join(lines)


def activity_text(address: str, count: int) -> str:
    return f"Sent by email to {address} ({count} {'reply' if count == 1 else 'replies'} the visitor had not seen)"


def reply_ids(message: Message) -> list[int]:
    """The chat replies a continuity mail carries (empty for any other message)."""
    meta = message.meta.get("continuity")
    found = meta.get("replies") if isinstance(meta, dict) else None
    return [item for item in found if isinstance(item, int)] if isinstance(found, list) else []


def outbound(
    message: Message,
    conversation: Conversation,
    inbox: InboxInfo,
    delivery_id: str,
    files: Sequence[OutboundAttachment],
) -> Outbound | None:
    """The `Outbound` of a continuity mail (the outbox sends it through `inbox`); None for other messages."""
    meta = message.meta.get("continuity")
    if not isinstance(meta, dict):
        return None
    address = str(meta["to"])
    return Outbound(
        inbox=inbox,
        message_id=key(message),
        conversation_id=key(conversation),
        delivery_id=delivery_id,
        thread_key=conversation.thread_key,
        recipient=Identity(IdentityKind.EMAIL, address, name=str(meta.get("name") or ""), email=address),
        text=str(meta["text"]),
        agent_name=str(meta.get("from_name") or ""),
        subject=str(meta.get("subject") or "") or None,
        attachments=files,
        metadata={
            "automatic": True,  # Auto-Submitted: the visitor's autoresponder must not answer into the chat
            "reply_all": False,
            "continuity": True,
            "in_reply_to": meta.get("in_reply_to"),
            "in_reply_to_meta": {"email": {"references": list(meta.get("references") or [])}},
        },
    )


def _address(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    local, at, domain = value.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() or c in "<>,;" for c in value):
        return None
    return value


# ── the worker ──────────────────────────────────────────────────────────────────────────────
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
            address = _address(contact.email if contact else None)
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
            "text": compose_text(chat.name, replies, _link(chat.settings)),
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
        now = utcnow()
        async with self.store.transaction() as tx:
            query = select(Continuity).where(col(Continuity.conversation_id) == conversation_id)
            if not self.store.is_sqlite:
                query = query.with_for_update()
            state = (await tx.execute(query)).scalar_one_or_none()
            if state is None or state.emailed_up_to >= up_to:
                return 0  # queued already (by an earlier holder of the lease)
            line = Message(
                conversation_id=conversation_id,
                inbox_id=target_id,
                kind=MessageKind.ACTIVITY,
                body=activity_text(meta["to"], count),
                sender_type="system",
                sender_name="Switchboard",
                status=MessageStatus.QUEUED,
                meta={"continuity": meta},
                created_at=now,
                updated_at=now,
            )
            tx.add(line)
            await tx.flush()
            tx.add(Outbox(message_id=key(line), delivery_id=str(uuid.uuid4()), next_attempt_at=now))
            state.emailed_up_to = up_to
            state.due_at = None
            state.updated_at = now
            records = await self.service.append(
                tx,
                [(EventType.MESSAGE_CREATED, views.message(line))],
                inbox_id=chat_id,
                conversation_id=conversation_id,
            )
        await self.service.publish(records)
        for wake in self.service.on_queued:
            wake()
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


def _link(settings: Mapping[str, Any]) -> str | None:
    value = settings.get(LINK_KEY)
    return value if isinstance(value, str) and value.startswith(("http://", "https://")) else None
