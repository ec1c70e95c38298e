"""The acknowledgement reactor: a new conversation in an inbox with `acknowledgement_enabled` gets one message
saying its number, when to expect a reply (in business hours) and where the portal is.

It listens to `conversation.created` on the broker (every process of a cluster hears it; the acknowledgement's
primary key lets one of them win) and writes through the service (`InboxService.queue_acknowledgement`), which
queues the message in the outbox so it goes out on the conversation's own channel, marked machine-sent
(email: `Auto-Submitted: auto-replied`, to the sender only).

Loop-safe: nothing is sent when the conversation's first message was machine-made (auto-reply, bounce, list
mail, quarantined — `inbox.csat.survey.machine_made`), at most once per conversation, and at most
`per_address` per sender address and `window`. An acknowledgement skipped for any reason is not retried.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from inbox.clock import utcnow
from inbox.csat.survey import machine_made
from inbox.i18n import translate
from inbox.portal import settings as ack_settings
from inbox.portal.expected import expected_reply, say_when
from inbox.realtime.events import EventRecord, EventType
from inbox.service import InboxService
from inbox.store.models import Conversation, Inbox, Message, MessageKind

log = logging.getLogger(__name__)

PER_ADDRESS = 3
WINDOW = timedelta(hours=1)


def address_hash(kind: str, value: str) -> str:
    """What the per-address rate limit counts: a hash, so the table keeps no address."""
    return hashlib.sha256(f"{kind}:{value.strip().lower()}".encode()).hexdigest()


def compose(settings: ack_settings.AckSettings, *, number: int, expected: str | None, portal_url: str) -> str:
    """The acknowledgement's text in the inbox's language: the admin's text, else the catalogue's."""
    locale = settings.locale
    custom = settings.texts.get(locale)
    if custom:
        return ack_settings.fill(
            custom,
            number=number,
            expected=expected or translate(locale, "portal.ack.soon"),
            portal_url=portal_url,
        )
    if expected is None:
        return translate(locale, "portal.ack.body_no_time", number=number, portal_url=portal_url)
    return translate(locale, "portal.ack.body", number=number, expected=expected, portal_url=portal_url)


class Acknowledgements:
    """Acknowledges new conversations; `on_event`/`on_ephemeral` are the broker subscription."""

    def __init__(
        self,
        service: InboxService,
        *,
        base_url: str,
        per_address: int = PER_ADDRESS,
        window: timedelta = WINDOW,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.service = service
        self.store = service.store
        self.portal_url = base_url.rstrip("/") + "/portal"
        self.per_address = per_address
        self.window = window
        self.clock = clock
        self._pending: set[asyncio.Task[bool]] = set()

    async def on_event(self, event: EventRecord) -> None:
        if event.type == EventType.CONVERSATION_CREATED and isinstance(event.conversation_id, int):
            # A task: the broker's publisher (the ingest path) never waits for the acknowledgement.
            task = asyncio.create_task(self._safely(event.conversation_id))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def on_ephemeral(self, frame: dict[str, Any], inbox_id: int | None) -> None:
        return None

    async def settle(self) -> None:
        """Wait for the acknowledgements under way (tests, shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def _safely(self, conversation_id: int) -> bool:
        try:
            return await self.acknowledge(conversation_id)
        except Exception:
            log.exception("acknowledgement of conversation %s failed", conversation_id)
            return False

    async def acknowledge(self, conversation_id: int) -> bool:
        """Queue the acknowledgement of a new conversation when it is wanted; whether one was queued."""
        now = self.clock()
        async with self.store.session() as session:
            conversation = await session.get(Conversation, conversation_id)
            inbox = await session.get(Inbox, conversation.inbox_id) if conversation else None
            if conversation is None or inbox is None:
                return False
            settings = ack_settings.of(inbox.settings)
            if not settings.enabled:
                return False
            first = (
                await session.execute(
                    select(Message)
                    .where(col(Message.conversation_id) == conversation_id, col(Message.kind) == MessageKind.INCOMING)
                    .order_by(col(Message.id))
                    .limit(1)
                )
            ).scalar_one_or_none()
            if first is None or machine_made(first.meta):
                return False
            identity = first.meta.get("identity")
            if not isinstance(identity, dict) or not identity.get("value"):
                return False
            expected = await expected_reply(session, conversation)
        text = compose(
            settings,
            number=conversation_id,
            expected=say_when(settings.locale, expected, now) if expected is not None else None,
            portal_url=self.portal_url,
        )
        try:
            return await self.service.queue_acknowledgement(
                conversation_id,
                text,
                address_hash=address_hash(str(identity.get("kind")), str(identity["value"])),
                per_address=self.per_address,
                window=self.window,
                meta={"acknowledgement_due": expected.due.isoformat() if expected else None},
                now=now,
            )
        except IntegrityError:
            log.info("conversation %s: another process acknowledged it already", conversation_id)
            return False
