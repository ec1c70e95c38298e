"""SMTP both ways: sending replies with aiosmtplib and receiving mail with an aiosmtpd server.

Out: STARTTLS, implicit TLS or plain per mailbox; a 4xx answer or a network failure is transient
(`DeliveryError(retry_after=0)`: the outbox backs off), a 5xx answer is permanent and its text is shown.
In: recipients are routed to the inbox owning the address (plus-addresses included); unknown recipients
get 550, mail over the size limit 552 (aiosmtpd enforces `data_size_limit`), a failure to store 451.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from email.message import EmailMessage
from typing import Any

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session

from channels.base import DeliveryError, FailureRun, InboxInfo, Overloaded
from channels.email.settings import MailboxSettings, Security

log = logging.getLogger(__name__)


# ── out ─────────────────────────────────────────────────────────────────────────────────────
async def send_message(message: EmailMessage, mailbox: MailboxSettings, *, seconds: float) -> None:
    """Hand one message to the mailbox's SMTP relay; translate failures into `DeliveryError`."""
    if not mailbox.smtp_enabled:
        raise DeliveryError("email: this inbox has no smtp_host configured")
    try:
        await aiosmtplib.send(
            message,
            hostname=mailbox.smtp_host,
            port=mailbox.smtp_port,
            username=mailbox.smtp_username or None,
            password=mailbox.smtp_password or None,
            use_tls=mailbox.smtp_security == Security.TLS,
            start_tls=mailbox.smtp_security == Security.STARTTLS,
            timeout=seconds,
        )
    except aiosmtplib.SMTPRecipientsRefused as error:
        refused = error.recipients
        permanent = all(item.code >= 500 for item in refused)
        reason = "; ".join(f"{item.recipient}: {item.code} {item.message}" for item in refused)
        raise DeliveryError(f"SMTP server refused {reason}", retry_after=None if permanent else 0) from error
    except aiosmtplib.SMTPResponseException as error:
        reason = f"SMTP server answered {error.code} {error.message}"
        raise DeliveryError(reason, retry_after=None if error.code >= 500 else 0) from error
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
        raise DeliveryError(f"SMTP server unreachable: {error or type(error).__name__}", retry_after=0) from error


# ── in ──────────────────────────────────────────────────────────────────────────────────────
Ingest = Callable[[InboxInfo, bytes, Sequence[str]], Awaitable[Any]]
Lookup = Callable[[], Awaitable[Sequence[InboxInfo]]]


def route(recipient: str, inboxes: Sequence[InboxInfo]) -> InboxInfo | None:
    """The email inbox that owns this address (`local+anything@domain` counts as `local@domain`)."""
    address = recipient.strip().strip("<>").lower()
    local, _, domain = address.rpartition("@")
    base = f"{local.split('+', 1)[0]}@{domain}"
    for inbox in inboxes:
        try:
            owned = MailboxSettings.from_inbox(inbox.settings).addresses
        except ValueError:
            continue
        if address in owned or base in owned:
            return inbox
    return None


class InboundHandler:
    """aiosmtpd handler: route each recipient, then hand the mail to `ingest` once per inbox."""

    def __init__(self, inboxes: Lookup, ingest: Ingest) -> None:
        self.inboxes = inboxes
        self.ingest = ingest
        # The database down fails every mail: one line when that starts (with its traceback), one when it ends.
        self.failing = FailureRun(log, "email: storing mail received over SMTP", trace=True)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if route(address, await self.inboxes()) is None:
            return f"550 5.1.1 <{address}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes):
            raw = str(raw).encode("utf-8", "surrogateescape")
        inboxes = await self.inboxes()
        targets: dict[int, InboxInfo] = {}
        for recipient in envelope.rcpt_tos:
            inbox = route(recipient, inboxes)
            if inbox is not None:
                targets[inbox.id] = inbox
        try:
            for inbox in targets.values():
                await self.ingest(inbox, raw, list(envelope.rcpt_tos))
        except Overloaded:
            # RFC 3463 X.3.2 "system not accepting network messages": the sender queues it and tries again;
            # an inbox that took it already stores it once (its Message-ID is the external id).
            return "451 4.3.2 too busy to accept mail right now; try again later"
        except Exception as error:
            self.failing.failed(error)
            return "451 4.3.0 temporary failure storing the message; try again later"
        self.failing.succeeded()
        return "250 2.0.0 OK: queued"


def smtp_server_factory(handler: InboundHandler, *, max_bytes: int, hostname: str) -> Callable[[], SMTP]:
    """What `loop.create_server` needs: a fresh aiosmtpd `SMTP` protocol per connection."""
    return lambda: SMTP(handler, data_size_limit=max_bytes, hostname=hostname, decode_data=False, enable_SMTPUTF8=True)
