"""The customer portal's policy: sign-in links, the portal session, and what one customer may see and do.

Who is the customer: whoever proves they read an address's mail by following a sign-in link sent to it. They
see the conversations of the contacts that address belongs to (following merges): contacts with an email
identity of that address (mail from it reached us, and now its owner proved the mailbox), and contacts whose
email is that address and who have a verified identity (e.g. an identity-verified widget visitor). An email
typed into a chat form proves nothing, so a contact that only has that is not shown.

Links: `<base_url>/portal/link/<token>`, the token a random nonce signed with the server secret. Single use (a
conditional update marks the `PortalLink` row used), expiring after `link_minutes`; opening the link shows a
button, and only pressing it spends the link (mail scanners that fetch links spend nothing). Asking for a link
answers the same whether or not the address is known: a row is written for every request (so the per-address
limit counts alike) and the mail goes out in the background (so the time taken says nothing either).

Reads here; writes of conversation data go through the service (`reply_from_portal`, CSAT answers through
`inbox.csat`). `PortalLink` rows are the portal's own.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox.clock import utcnow
from inbox.csat.survey import Surveys, SurveyState
from inbox.errors import Conflict, Invalid, NotFound, Throttled
from inbox.i18n import translate
from inbox.portal.expected import expected_reply, say_when
from inbox.service import InboxService
from inbox.store.models import Contact, Conversation, CsatSurvey, Identity, Inbox, Message, MessageKind, PortalLink

log = logging.getLogger(__name__)

Mailer = Callable[[str, str, str], Awaitable[None]]  # (address, subject, text)
MAX_ADDRESS = 320
MAX_REPLY = 10_000
MAX_CONVERSATIONS = 100
ERASED = "erased:"  # an erased conversation's thread key (inbox.service.privacy)


class LinkRefused(Exception):
    """A sign-in link that does not sign in: changed, unknown, used already or too old (one answer for all)."""


def normalise(address: str) -> str:
    """An address as the portal keys it; `Invalid` when it cannot be one."""
    value = (address or "").strip().lower()
    local, at, domain = value.partition("@")
    if not at or not local or "." not in domain or len(value) > MAX_ADDRESS or any(c.isspace() for c in value):
        raise Invalid("email: enter an email address")
    return value


def address_hash(address: str) -> str:
    return hashlib.sha256(address.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Card:
    """One conversation in the customer's list."""

    id: int
    subject: str
    channel: str
    inbox_name: str
    status: str
    preview: str
    last_activity_at: datetime
    expected: str | None


@dataclass(frozen=True, slots=True)
class Line:
    id: int
    mine: bool  # the customer wrote it
    sender: str
    body: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Thread:
    card: Card
    lines: list[Line]
    survey: SurveyState | None
    survey_token: str | None


class IpWindow:
    """At most `limit` requests per client address in a sliding `seconds` window (per process)."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.seen: dict[str, deque[float]] = {}

    def allow(self, ip: str) -> bool:
        now = time.monotonic()
        times = self.seen.setdefault(ip, deque())
        while times and times[0] <= now - self.seconds:
            times.popleft()
        if len(times) >= self.limit:
            return False
        times.append(now)
        if len(self.seen) > 10_000:  # forget idle addresses rather than grow without bound
            for stale in [name for name, items in self.seen.items() if not items]:
                del self.seen[stale]
        return True


class Portal:
    """Sign-in links and sessions, and the customer's conversations."""

    def __init__(
        self,
        service: InboxService,
        *,
        secret: str,
        base_url: str,
        surveys: Surveys | None = None,
        mailer: Mailer | None = None,
        link_minutes: int = 30,
        session_hours: int = 12,
        per_address: int = 3,
        per_ip: int = 20,
        window: timedelta = timedelta(minutes=15),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.service = service
        self.store = service.store
        self.base_url = base_url.rstrip("/")
        self.surveys = surveys
        self.mailer = mailer
        self.link_ttl = timedelta(minutes=link_minutes)
        self.session_seconds = session_hours * 3600
        self.per_address = per_address
        self.window = window
        self.ips = IpWindow(per_ip, window.total_seconds())
        self.clock = clock
        self._links = URLSafeSerializer(secret, salt="switchboard-portal-link")
        self._sessions = URLSafeTimedSerializer(secret, salt="switchboard-portal-session")
        self._mailing: set[asyncio.Task[None]] = set()

    # ── sign-in links ─────────────────────────────────────────────────────────────────────────
    def link_url(self, nonce: str, address: str) -> str:
        return f"{self.base_url}/portal/link/{self._links.dumps([nonce, address])}"

    async def request_link(self, address: str, *, ip: str, locale: str) -> None:
        """Send a sign-in link when the address has conversations; answers the same either way."""
        address = normalise(address)
        if not self.ips.allow(ip):
            raise Throttled("too many sign-in requests from this address; try again later", 60)
        now = self.clock()
        hashed = address_hash(address)
        async with self.store.session() as session:
            recent = (
                await session.execute(
                    select(func.count())
                    .select_from(PortalLink)
                    .where(col(PortalLink.address_hash) == hashed, col(PortalLink.created_at) > now - self.window)
                )
            ).scalar_one()
            known = bool(await self._contact_ids(session, address)) if recent < self.per_address else False
        if recent >= self.per_address:
            log.info("portal: sign-in link rate limit reached for an address")
            return
        nonce = secrets.token_urlsafe(24)
        async with self.store.transaction() as tx:
            tx.add(PortalLink(id=nonce, address_hash=hashed, created_at=now))
        if known and self.mailer is not None:
            task = asyncio.create_task(self._mail(address, nonce, locale))
            self._mailing.add(task)
            task.add_done_callback(self._mailing.discard)

    async def settle(self) -> None:
        """Wait for the sign-in mails under way (tests, shutdown)."""
        while self._mailing:
            await asyncio.gather(*list(self._mailing), return_exceptions=True)

    async def _mail(self, address: str, nonce: str, locale: str) -> None:
        assert self.mailer is not None
        minutes = int(self.link_ttl.total_seconds() // 60)
        text = translate(locale, "portal.mail.body", url=self.link_url(nonce, address), minutes=minutes)
        try:
            await self.mailer(address, translate(locale, "portal.mail.subject"), text)
        except Exception:
            log.exception("portal: the sign-in mail could not be sent")

    async def check_link(self, token: str) -> tuple[PortalLink, str]:
        """The link's row and address when it may still sign in; `LinkRefused` otherwise."""
        try:
            value = self._links.loads(token)
        except BadSignature as exc:
            raise LinkRefused from exc
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(item, str) for item in value)):
            raise LinkRefused
        nonce, address = value
        async with self.store.session() as session:
            row = await session.get(PortalLink, nonce)
        if row is None or row.address_hash != address_hash(address):
            raise LinkRefused
        if row.used_at is not None or self.clock() > row.created_at + self.link_ttl:
            raise LinkRefused
        return row, address

    async def sign_in(self, token: str) -> str:
        """Spend the link (once, even when two requests race); answers the session value for the cookie."""
        row, address = await self.check_link(token)
        now = self.clock()
        async with self.store.transaction() as tx:
            result: Any = await tx.execute(
                update(PortalLink)
                .where(col(PortalLink.id) == row.id, col(PortalLink.used_at).is_(None))
                .values(used_at=now)
            )
            if result.rowcount != 1:
                raise LinkRefused
        return self._sessions.dumps(address)

    # ── sessions ──────────────────────────────────────────────────────────────────────────────
    def session_address(self, cookie: str | None) -> str | None:
        """The address a portal session cookie carries, or None (absent, changed or expired)."""
        if not cookie:
            return None
        try:
            value = self._sessions.loads(cookie, max_age=self.session_seconds)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None

    # ── what the customer sees ────────────────────────────────────────────────────────────────
    async def _contact_ids(self, session: AsyncSession, address: str) -> set[int]:
        """The contacts (merge roots) whose conversations this address may see (see the module's docstring)."""
        by_identity = select(Identity.contact_id).where(
            col(Identity.kind) == "email", func.lower(col(Identity.value)) == address
        )
        by_verified = (
            select(Contact.id)
            .join(Identity, col(Identity.contact_id) == col(Contact.id))
            .where(func.lower(col(Contact.email)) == address, col(Identity.verified).is_(True))
        )
        found = {int(row) for row in (await session.execute(by_identity)).scalars()}
        found |= {int(row) for row in (await session.execute(by_verified)).scalars() if row is not None}
        roots: set[int] = set()
        for contact_id in found:
            contact = await session.get(Contact, contact_id)
            for _ in range(20):  # a merge chain is short; never loop forever on a broken one
                if contact is None or contact.merged_into_id is None:
                    break
                contact = await session.get(Contact, contact.merged_into_id)
            if contact is not None and contact.id is not None:
                roots.add(contact.id)
        return roots

    async def conversations(self, address: str, *, locale: str) -> list[Card]:
        """The customer's conversations on every channel, most recent first."""
        async with self.store.session() as session:
            rows = await self._visible(session, address)
            return [await self._card(session, conversation, inbox, locale) for conversation, inbox in rows]

    async def _visible(
        self, session: AsyncSession, address: str, conversation_id: int | None = None
    ) -> list[tuple[Conversation, Inbox]]:
        contacts = await self._contact_ids(session, address)
        if not contacts:
            return []
        query = (
            select(Conversation, Inbox)
            .join(Inbox, col(Inbox.id) == col(Conversation.inbox_id))
            .where(col(Conversation.contact_id).in_(contacts), ~col(Conversation.thread_key).startswith(ERASED))
        )
        if conversation_id is not None:
            query = query.where(col(Conversation.id) == conversation_id)
        query = query.order_by(col(Conversation.last_activity_at).desc(), col(Conversation.id).desc())
        return [(row[0], row[1]) for row in (await session.execute(query.limit(MAX_CONVERSATIONS))).all()]

    async def _card(self, session: AsyncSession, conversation: Conversation, inbox: Inbox, locale: str) -> Card:
        expected = await expected_reply(session, conversation)
        assert conversation.id is not None
        return Card(
            id=conversation.id,
            subject=conversation.subject or conversation.preview,
            channel=inbox.channel,
            inbox_name=inbox.name,
            status=conversation.status,
            preview=conversation.preview,
            last_activity_at=conversation.last_activity_at,
            expected=say_when(locale, expected, self.clock()) if expected is not None else None,
        )

    async def thread(self, address: str, conversation_id: int, *, locale: str) -> Thread:
        """One conversation as the customer sees it: what they wrote and what was sent to them, never notes."""
        async with self.store.session() as session:
            found = await self._visible(session, address, conversation_id)
            if not found:
                raise NotFound(f"conversation {conversation_id} not found")
            conversation, inbox = found[0]
            card = await self._card(session, conversation, inbox, locale)
            messages = (
                await session.execute(
                    select(Message)
                    .where(
                        col(Message.conversation_id) == conversation_id,
                        col(Message.kind).in_([MessageKind.INCOMING, MessageKind.OUTGOING]),
                    )
                    .order_by(col(Message.id))
                )
            ).scalars()
            lines = [
                Line(row.id or 0, row.kind == MessageKind.INCOMING, row.sender_name, row.body, row.created_at)
                for row in messages
            ]
            survey_id = (
                await session.execute(
                    select(CsatSurvey.id)
                    .where(col(CsatSurvey.conversation_id) == conversation_id)
                    .order_by(col(CsatSurvey.id).desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
        survey, token = None, None
        if survey_id is not None and self.surveys is not None:
            token = self.surveys.token(survey_id)
            survey = await self.surveys.state(token)
            if not survey.open:
                survey, token = None, None
        return Thread(card, lines, survey, token)

    async def reply(self, address: str, conversation_id: int, text: str, *, client_id: str) -> int:
        """Store the customer's reply on the conversation's channel; the message id."""
        text = (text or "").strip()
        if not text:
            raise Invalid("body: write a message")
        if len(text) > MAX_REPLY:
            raise Invalid(f"body: at most {MAX_REPLY} characters")
        if not client_id or len(client_id) > 64:
            raise Invalid("client_id: required")
        async with self.store.session() as session:
            if not await self._visible(session, address, conversation_id):
                raise NotFound(f"conversation {conversation_id} not found")
        message_id, _ = await self.service.reply_from_portal(
            conversation_id, text, address=address, client_id=client_id, now=self.clock()
        )
        return message_id

    async def answer_survey(self, address: str, conversation_id: int, rating: Any, comment: str) -> SurveyState:
        """Answer the conversation's pending survey (the one the thread shows)."""
        thread = await self.thread(address, conversation_id, locale="en")
        if self.surveys is None or thread.survey_token is None:
            raise Conflict("this conversation has no survey waiting for an answer")
        return await self.surveys.respond(thread.survey_token, rating, comment)
