"""`EmailChannel`: the I/O that ties parsing, threading and composing to IMAP and SMTP.

`ingest` is the one path every mail takes (IMAP or SMTP in): parse → bounce handling → threading →
`Host.deliver`. `send` composes and relays one agent reply. `run(inbox)` reads one inbox's mailbox (the core
runs it under a cluster lease, so one process reads each mailbox); `serve` runs the inbound SMTP listener
when enabled, in every process that configures it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from starlette.routing import BaseRoute

from channels.base import (
    ChannelHealth,
    Delivered,
    DeliveryError,
    Host,
    Identity,
    IdentityKind,
    Inbound,
    InboundAttachment,
    InboxInfo,
    MessageDigests,
    Outbound,
    Receipt,
)
from channels.email.compose import OutgoingFile, Reply, compose_reply
from channels.email.dedupe import digested_id, storage_id
from channels.email.imap import Health, ImapReader
from channels.email.parse import MailError, ParsedMail, header_sender, parse_email
from channels.email.settings import EmailSettings, MailboxSettings, SettingsError
from channels.email.smtp import InboundHandler, send_message, smtp_server_factory
from channels.email.thread import Decision, candidates, decide, outbound_message_id, reply_address

log = logging.getLogger(__name__)

MAX_QUOTED = 100_000
FOREIGN_REPORT = "delivery report for mail we did not send"


class EmailChannel:
    """Email in (IMAP IDLE, SMTP) and out (SMTP) for every inbox whose channel is `email`."""

    name: ClassVar[str] = "email"

    def __init__(self, host: Host, settings: EmailSettings | None = None) -> None:
        self.host = host
        self.settings = settings or EmailSettings()
        self.routes: Sequence[BaseRoute] = []
        self.readers: dict[int, ImapReader] = {}  # the mailboxes this process reads now (it holds their lease)
        self.misconfigured: dict[int, Health] = {}  # inboxes whose settings cannot be read (the error)
        self.smtp_server: asyncio.Server | None = None
        self.smtp_error: str | None = None
        self.sending: dict[int, Health] = {}  # per inbox: last successful send, last send error

    # ── in ──────────────────────────────────────────────────────────────────────────────────
    async def ingest(self, inbox: InboxInfo, raw: bytes, envelope_recipients: Sequence[str] = ()) -> Delivered | None:
        """Store one raw mail in `inbox`; None when it was quarantined or a bounce for one of ours (that reply is
        marked failed)."""
        try:
            mail = self.parse(raw)
        except MailError as error:
            await self.quarantine(inbox, raw, str(error))
            return None
        return await self.store_mail(inbox, mail, envelope_recipients, raw=raw)

    async def reingest(self, inbox: InboxInfo, raw: bytes) -> Delivered | None:
        """An admin's retry of a quarantined mail: store it, or raise `DeliveryError` if it still cannot be read."""
        try:
            mail = self.parse(raw)
        except MailError as error:
            raise DeliveryError(str(error)) from error
        return await self.store_mail(inbox, mail, ())

    def parse(self, raw: bytes) -> ParsedMail:
        return parse_email(
            raw, max_header_bytes=self.settings.max_header_bytes, max_bytes=self.settings.max_message_bytes
        )

    async def store_mail(
        self, inbox: InboxInfo, mail: ParsedMail, envelope_recipients: Sequence[str] = (), *, raw: bytes | None = None
    ) -> Delivered | None:
        """Bounce handling, threading, then `Host.deliver`.

        A delivery report about mail we did not send (backscatter, a report for another system) opens no
        conversation: with `raw` it goes to the inbox's quarantine, where admins read it. Without `raw` (an
        admin's retry of exactly such a report) it is stored as a message.
        """
        report = mail.report
        if report is not None:
            original = report.original_message_id
            if original is not None:
                if report.failed and await self.host.mark_failed(inbox.id, original, report.reason):
                    log.info("email: bounce for %s marked it failed: %s", original, report.reason)
                    return None
                if not report.failed and await self.host.known_external_ids(inbox.id, [original]):
                    return None  # "delayed"/"delivered" notices about our own mail are not conversation content
            if raw is not None:
                about = f"{original}, {report.reason}" if original else report.reason
                await self.quarantine(
                    inbox, raw, f"{FOREIGN_REPORT} ({about})", sender=mail.from_address, subject=mail.subject
                )
                return None
        decision = await self.thread(inbox, mail, envelope_recipients)
        external_id = await self.storage_id(inbox.id, mail)
        delivered = await self.host.deliver(inbound_from_mail(inbox.id, mail, decision, external_id=external_id))
        if not delivered.created and external_id == mail.message_id and isinstance(self.host, MessageDigests):
            # Another mail with this Message-ID was stored between the look-up and the delivery (two readers,
            # SMTP and IMAP at once): unless it is this very mail, keep this one under its digested id.
            stored = await self.host.message_digests(inbox.id, [external_id])
            if stored.get(external_id) not in (mail.digest, None):
                variant = digested_id(mail.message_id, mail.digest)
                delivered = await self.host.deliver(inbound_from_mail(inbox.id, mail, decision, external_id=variant))
        return delivered

    async def storage_id(self, inbox_id: int, mail: ParsedMail) -> str:
        """The id this mail is stored under (`channels.email.dedupe`): its Message-ID, or `<id>#<digest>` when
        another mail with the same Message-ID is stored already. A host without digests dedupes on the id."""
        if not isinstance(self.host, MessageDigests) or not mail.digest:
            return mail.message_id
        ids = [mail.message_id, digested_id(mail.message_id, mail.digest)]
        chosen = storage_id(mail.message_id, mail.digest, await self.host.message_digests(inbox_id, ids))
        if chosen != mail.message_id:
            log.info(
                "email: inbox %s: another mail has Message-ID %s; this one is %s", inbox_id, mail.message_id, chosen
            )
        return chosen

    async def thread(self, inbox: InboxInfo, mail: ParsedMail, envelope_recipients: Sequence[str] = ()) -> Decision:
        """Try every threading clue in order; the sender must take part in the matched conversation."""
        tried = []
        for candidate in candidates(mail, inbox.secret, extra_recipients=envelope_recipients):
            found = await self.host.find_conversation(
                inbox.id, conversation_id=candidate.conversation_id, external_id=candidate.message_id
            )
            tried.append(
                (candidate, found.conversation_id if found else None, found.participants if found else frozenset())
            )
            if found is not None and mail.from_address in found.participants:
                break
        return decide(mail.from_address, tried)

    async def quarantine(
        self, inbox: InboxInfo, raw: bytes, reason: str, *, sender: str | None = None, subject: str | None = None
    ) -> int:
        """Hand a mail to the core's quarantine (admins only), once per distinct bytes.

        Without `sender`/`subject` (the mail could not be parsed) they are read from its header section the way
        `parse_email` reads them, so the list names the sender the reason is about (not an address-like
        display name).
        """
        if sender is None or subject is None:
            found_sender, found_subject = header_sender(raw, self.settings.max_header_bytes)
            sender = found_sender if sender is None else sender
            subject = found_subject if subject is None else subject
        log.warning("email: inbox %s quarantined a mail (%s)", inbox.id, reason)
        return await self.host.quarantine(inbox.id, raw, reason, sender=sender, subject=subject)

    # ── out ─────────────────────────────────────────────────────────────────────────────────
    async def send(self, message: Outbound) -> Receipt:
        try:
            mailbox = MailboxSettings.from_inbox(message.inbox.settings)
        except SettingsError as error:
            raise DeliveryError(f"email inbox {message.inbox.id}: {error}") from error
        recipient = message.recipient
        to_address = (recipient.email or recipient.value) if recipient is not None else None
        if not to_address or "@" not in to_address:
            raise DeliveryError("email: the conversation has no email address to reply to")
        answered = message.metadata.get("in_reply_to_meta") or {}
        earlier = answered.get("email") if isinstance(answered, Mapping) else None
        earlier = earlier if isinstance(earlier, Mapping) else {}
        ours = mailbox.addresses
        cc = [
            a
            for a in [*earlier.get("to", []), *earlier.get("cc", [])]
            if _base(a) not in ours and a.lower() != to_address.lower()
        ]
        if message.metadata.get("reply_all") is False:  # the agent chose to answer the sender only
            cc = []
        in_reply_to = message.metadata.get("in_reply_to")
        message_id = outbound_message_id(
            message.conversation_id, message.message_id, message.delivery_id, message.inbox.secret, mailbox.domain
        )
        reply_to = (
            reply_address(mailbox.address, message.conversation_id, message.inbox.secret)
            if mailbox.reply_plus
            else mailbox.reply_to or None
        )
        try:
            files = [
                OutgoingFile(item.filename, item.content_type, await asyncio.to_thread(Path(item.path).read_bytes))
                for item in message.attachments
            ]
        except OSError as error:
            raise DeliveryError(f"email: attachment could not be read: {error}") from error
        composed = compose_reply(
            Reply(
                from_name=message.agent_name or mailbox.display_name or message.inbox.name,
                from_address=mailbox.address,
                to=[to_address],
                cc=list(dict.fromkeys(cc)),
                message_id=message_id,
                markdown=message.text,
                subject=message.subject or str(earlier.get("subject") or ""),
                conversation_number=message.conversation_id,
                reply_to=reply_to,
                in_reply_to=in_reply_to if _real_id(in_reply_to) else None,
                references=[r for r in earlier.get("references", []) if _real_id(r)],
                signature=mailbox.signature,
                attachments=files,
                automatic=bool(message.metadata.get("automatic")),
            )
        )
        health = self.sending.setdefault(message.inbox.id, Health())
        try:
            await send_message(composed, mailbox, seconds=self.settings.connect_timeout_seconds)
        except DeliveryError as error:
            if error.retry_after is not None:  # a relay problem, not one bad recipient
                health.failed(error)
            raise
        health.succeeded()
        return Receipt(external_id=message_id)

    def health(self) -> list[ChannelHealth]:
        """Per inbox: last successful fetch and send, last error, failing since, backlog (Unix timestamps)."""
        rows = []
        for inbox_id in sorted({*self.readers, *self.sending, *self.misconfigured}):
            fetch = self.readers[inbox_id].health if inbox_id in self.readers else Health()
            fetch = self.misconfigured.get(inbox_id, fetch)
            send = self.sending.get(inbox_id, Health())
            errors = [item for item in (fetch, send) if item.last_error_at is not None]
            last = max(errors, key=lambda item: item.last_error_at or 0.0) if errors else None
            failing = [item.failing_since for item in (fetch, send) if item.failing_since is not None]
            rows.append(
                ChannelHealth(
                    inbox_id=inbox_id,
                    last_fetch_at=fetch.last_success_at,
                    last_send_at=send.last_success_at,
                    last_error=last.last_error if last else None,
                    last_error_at=last.last_error_at if last else None,
                    failing_since=min(failing) if failing else None,
                    backlog=fetch.backlog or 0,
                )
            )
        return rows

    # ── lifecycle ───────────────────────────────────────────────────────────────────────────
    async def run(self, inbox: InboxInfo) -> None:
        """Read this inbox's mailbox until cancelled (returns at once when it has no IMAP source).

        The core calls this under a cluster-wide lease (`ChannelRunners`), so each mailbox has exactly one
        reader across all processes; `health()` reports the readers of this process.
        """
        try:
            mailbox = MailboxSettings.from_inbox(inbox.settings)
        except SettingsError as error:
            # Shown on the health page as failing with the reason; the core retries after a backoff.
            self.misconfigured.setdefault(inbox.id, Health()).failed(error)
            raise
        self.misconfigured.pop(inbox.id, None)
        if not mailbox.imap_enabled:
            return
        reader = self.reader(inbox, mailbox)
        self.readers[inbox.id] = reader
        try:
            await reader.run()
        finally:
            if self.readers.get(inbox.id) is reader:
                del self.readers[inbox.id]

    def reader(self, inbox: InboxInfo, mailbox: MailboxSettings) -> ImapReader:
        return ImapReader(self.host, inbox, mailbox, self.settings, self.ingest, self.quarantine)

    async def serve(self) -> None:
        """Run the inbound SMTP listener (if enabled) in this process until cancelled.

        Every process that configures the listener runs it (SMTP in needs no lease: each connection is its
        own delivery, and `(inbox, Message-ID)` stores a mail once); IMAP readers run through `run`.
        """
        try:
            if self.settings.smtp_listen_enabled:
                try:
                    await self.start_smtp()
                except OSError as error:  # e.g. the port is taken: IMAP and sending keep working
                    self.smtp_error = f"SMTP listener on {self.settings.smtp_listen_host}:{self.settings.smtp_listen_port} failed: {error}"
                    log.error("email: %s", self.smtp_error)
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def start_smtp(self) -> None:
        handler = InboundHandler(lambda: self.host.inboxes(self.name), self.ingest)
        loop = asyncio.get_running_loop()
        self.smtp_server = await loop.create_server(
            smtp_server_factory(handler, max_bytes=self.settings.max_message_bytes, hostname="switchboard"),
            self.settings.smtp_listen_host,
            self.settings.smtp_listen_port,
        )

    async def close(self) -> None:
        if self.smtp_server is not None:
            self.smtp_server.close()
            await self.smtp_server.wait_closed()
            self.smtp_server = None


def _base(address: str) -> str:
    """`local+tag@domain` → `local@domain`, lower-case (our plus-addresses are still ours)."""
    local, _, domain = address.lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def _real_id(value: object) -> bool:
    """A Message-ID worth citing: not one we made up for mail that had none (or for quarantined mail)."""
    return isinstance(value, str) and value.startswith("<") and not value.endswith("@switchboard.invalid>")


def inbound_from_mail(
    inbox_id: int, mail: ParsedMail, decision: Decision, *, external_id: str | None = None
) -> Inbound:
    """The normalised `Inbound` for a parsed mail and its threading decision (stored under `external_id`,
    by default its Message-ID)."""
    return Inbound(
        inbox_id=inbox_id,
        external_id=external_id or mail.message_id,
        thread_key=f"email:{mail.message_id}",
        sender=Identity(IdentityKind.EMAIL, mail.from_address, name=mail.from_name, email=mail.from_address),
        text=mail.visible_text or mail.text,
        html=mail.html,
        subject=mail.subject or None,
        attachments=[InboundAttachment(item.filename, item.content_type, item.data) for item in mail.attachments],
        sent_at=mail.date,
        metadata={
            **({"automatic": mail.automatic} if mail.automatic else {}),
            "email": {
                "message_id": mail.message_id,
                "subject": mail.subject,
                "in_reply_to": list(mail.in_reply_to),
                "references": list(mail.references),
                "to": list(mail.to),
                "cc": list(mail.cc),
                "reply_to": mail.reply_to,
                "quoted": mail.quoted_text[:MAX_QUOTED],
                "automatic": mail.automatic,
                "digest": mail.digest,
                "defects": list(mail.defects),
                "inline": {str(i): item.content_id for i, item in enumerate(mail.attachments) if item.content_id},
            },
        },
        conversation_id=decision.conversation_id,
        thread_reason=decision.reason,
    )
