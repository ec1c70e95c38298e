"""The outbox worker: `queued → channel.send → sent | failed(reason)`.

Rows are claimed with a lease (and `FOR UPDATE SKIP LOCKED` on PostgreSQL), so several workers never
send one reply at once and a crashed worker's rows are picked up again when the lease runs out. A
transient `DeliveryError` is retried with exponential backoff, or after the channel's own `retry_after`.
Results are written through `InboxService`, which publishes `message.updated`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import col, select

from channels.base import Channel, DeliveryError, Identity, IdentityKind, InboxInfo, Outbound, OutboundAttachment
from inbox.clock import utcnow
from inbox.config import OutboxConfig
from inbox.read import continuity
from inbox.service import InboxService
from inbox.store.blobs import BlobStore
from inbox.store.engine import Store
from inbox.store.models import Attachment, Conversation, Inbox, Message, Outbox, key

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Claim:
    message_id: int
    delivery_id: str
    attempt: int


# Inbox settings the core reads itself (reports, surveys, email continuity). Channels never see them: their settings readers
# refuse keys they do not know, so an email inbox with an SLA target or surveys on must still send.
CORE_SETTINGS = frozenset(
    {"sla_first_response_minutes", "csat_enabled", "email_continuity_inbox_id", "email_continuity_chat_url"}
    # team workflow (inbox.workflow.settings): the inbox's calendar, routing mode and capacity override
    | {"business_hours_id", "routing", "routing_capacity"}
    # acknowledgements (inbox.portal.settings): on/off, language, default reply time, the admin's texts
    | {"acknowledgement_enabled", "acknowledgement_locale", "acknowledgement_reply_minutes", "acknowledgement_text"}
)


def inbox_info(row: Inbox) -> InboxInfo:
    assert row.id is not None
    settings = {name: value for name, value in row.settings.items() if name not in CORE_SETTINGS}
    return InboxInfo(row.id, row.name, row.channel, settings, row.secret, row.public_key)


class OutboxWorker:
    """Sends queued replies through their inbox's channel until cancelled."""

    def __init__(
        self,
        store: Store,
        service: InboxService,
        blobs: BlobStore,
        channels: Mapping[str, Channel],
        config: OutboxConfig,
    ) -> None:
        self.store = store
        self.service = service
        self.blobs = blobs
        self.channels = channels
        self.config = config
        self._wake = asyncio.Event()
        self.on_result: Callable[[str, str], None] = lambda channel, result: None
        self._inflight: set[int] = set()

    def wake(self) -> None:
        """Called after a reply is queued so it goes out now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                claims = await self.claim(self.config.concurrency - len(self._inflight))
            except Exception:
                log.exception("outbox: claiming due rows failed; retrying")
                claims = []
            for claim in claims:
                self._inflight.add(claim.message_id)
                task = asyncio.create_task(self._send(claim))
                task.add_done_callback(self._finished(claim.message_id))
            if claims and len(self._inflight) < self.config.concurrency:
                continue  # there may be more due rows
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.poll_interval_seconds)

    def _finished(self, message_id: int) -> Callable[[asyncio.Task[None]], None]:
        return lambda _task: self._inflight.discard(message_id)

    async def claim(self, limit: int) -> list[Claim]:
        """Lease up to `limit` due rows to this worker."""
        if limit <= 0:
            return []
        now = utcnow()
        lease_until = now + timedelta(seconds=self.config.lease_seconds)
        async with self.store.transaction() as tx:
            query = (
                select(Outbox)
                .where(col(Outbox.done) == False, col(Outbox.next_attempt_at) <= now)  # noqa: E712
                .order_by(col(Outbox.next_attempt_at))
                .limit(limit)
            )
            if not self.store.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            rows = list((await tx.execute(query)).scalars())
            claims = []
            for row in rows:
                if row.message_id in self._inflight:
                    continue
                row.attempts += 1
                row.next_attempt_at = lease_until
                claims.append(Claim(row.message_id, row.delivery_id, row.attempts))
        return claims

    async def _send(self, claim: Claim) -> None:
        try:
            await self._attempt(claim)
        except Exception:
            log.exception("outbox: message %s could not be processed", claim.message_id)

    async def _attempt(self, claim: Claim) -> None:
        outbound = await self.outbound(claim)
        if outbound is None:
            return
        channel = self.channels.get(outbound.inbox.channel)
        if channel is None:
            await self.service.mark_failed(claim.message_id, f"channel {outbound.inbox.channel!r} is not enabled")
            return
        try:
            receipt = await channel.send(outbound)
        except DeliveryError as error:
            self.on_result(channel.name, "failed" if error.retry_after is None else "retry")
            await self._failed(claim, error.reason, error.retry_after)
        except Exception as error:  # an adapter bug must not lose the message: retry with backoff
            log.exception("outbox: channel %s raised while sending message %s", channel.name, claim.message_id)
            self.on_result(channel.name, "error")
            await self._failed(claim, f"unexpected error: {error}", 0.0)
        else:
            self.on_result(channel.name, "sent")
            await self.service.mark_sent(claim.message_id, receipt.external_id)

    async def _failed(self, claim: Claim, reason: str, retry_after: float | None) -> None:
        if retry_after is None:
            await self.service.mark_failed(claim.message_id, reason)
        elif claim.attempt >= self.config.max_attempts:
            await self.service.mark_failed(claim.message_id, f"gave up after {claim.attempt} attempts: {reason}")
        else:
            delay = retry_after if retry_after > 0 else self.backoff(claim.attempt)
            log.info("outbox: message %s will be retried in %.1fs: %s", claim.message_id, delay, reason)
            await self.service.note_retry(claim.message_id, reason, utcnow() + timedelta(seconds=delay))

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter, capped."""
        base = self.config.backoff_base_seconds * (2 ** (attempt - 1))
        return float(min(self.config.backoff_max_seconds, base * random.uniform(0.8, 1.2)))

    async def outbound(self, claim: Claim) -> Outbound | None:
        async with self.store.session() as session:
            message = await session.get(Message, claim.message_id)
            if message is None:
                return None
            conversation = await session.get(Conversation, message.conversation_id)
            inbox = await session.get(Inbox, message.inbox_id)
            assert conversation is not None and inbox is not None
            last_incoming = (
                await session.execute(
                    select(Message)
                    .where(col(Message.conversation_id) == conversation.id, col(Message.kind) == "incoming")
                    .order_by(col(Message.id).desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            # A continuity mail carries the files of the chat replies it collects (continuity.reply_ids).
            carried = continuity.reply_ids(message) or [key(message)]
            attachments = list(
                (
                    await session.execute(
                        select(Attachment).where(col(Attachment.message_id).in_(carried)).order_by(col(Attachment.id))
                    )
                ).scalars()
            )
        files = [
            OutboundAttachment(item.filename, item.content_type, item.size, str(self.blobs.path(item.storage_name)))
            for item in attachments
        ]
        mail = continuity.outbound(message, conversation, inbox_info(inbox), claim.delivery_id, files)
        if mail is not None:
            return mail
        recipient = None
        if last_incoming is not None and isinstance(last_incoming.meta.get("identity"), dict):
            found = last_incoming.meta["identity"]
            recipient = Identity(
                IdentityKind(found["kind"]), found["value"], name=last_incoming.sender_name, email=found.get("email")
            )
        assert message.id is not None and conversation.id is not None
        return Outbound(
            inbox=inbox_info(inbox),
            message_id=message.id,
            conversation_id=conversation.id,
            delivery_id=claim.delivery_id,
            thread_key=conversation.thread_key,
            recipient=recipient,
            text=message.body,
            agent_name=message.sender_name,
            subject=conversation.subject,
            attachments=files,
            # What the reply answers, so a channel can thread it (email: In-Reply-To, References, Cc).
            metadata={
                **(message.meta.get("options") or {}),  # the agent's per-message choices (reply_all, …)
                "in_reply_to": last_incoming.external_id if last_incoming is not None else None,
                "in_reply_to_meta": dict(last_incoming.meta) if last_incoming is not None else {},
            },
        )
