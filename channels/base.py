"""The one port between the core (`inbox/`) and the channel adapters.

Adapters import this module, the standard library and their own channel library, never `inbox`.
The core hands adapters a `Host` (what it offers a channel) and calls them through `Channel`
(what a channel offers the core). Everything crossing the seam is a frozen record defined here.
A channel may also implement the optional `TypingAware` (show "agent is typing"), `HealthReporting`
(last receive/send/error per inbox, exported to `/metrics`) and `Reingesting` (retry a quarantined
message); the core checks with `isinstance`. The other way round, a host may implement the optional
`StatusRecording` (delivery receipts: sent/delivered/read/failed of our outgoing messages); a channel that
gets receipts checks with `isinstance` and falls back to `Host.mark_failed` when the host lacks it; and the
optional `ContactSignalling` (an ephemeral frame about a person who may have no conversation yet: a phone
ringing), which a channel falls back from to `Host.signal`; and the optional `MessageDigests` (the content
digests stored with messages, so email keeps two different mails that carry one Message-ID).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Protocol, runtime_checkable

from starlette.routing import BaseRoute


class IdentityKind(StrEnum):
    """How a person is known on a channel."""

    EMAIL = "email"
    TELEGRAM = "telegram"
    VK = "vk"  # a VK user id, as a string
    WEBCHAT = "webchat"
    PHONE = "phone"
    EXTERNAL = "external"


_EMBEDDINGS = frozenset("\u202a\u202b\u202d\u202e")  # LRE RLE LRO RLO, closed by PDF (U+202C)
_ISOLATES = frozenset("\u2066\u2067\u2068")  # LRI RLI FSI, closed by PDI (U+2069)
_PDF, _PDI = "\u202c", "\u2069"


def clean_name(name: str) -> str:
    """A person's name as every channel hands it to the core: one line, no control characters, bidi contained.

    C0 and C1 controls and DEL are dropped (line breaks and tabs become a space, so "Ann\\r\\nBcc: x" cannot
    reach a header or split a line); whitespace runs collapse. Bidi controls are kept (the UI shows them
    visibly and isolates every name with `<bdi>`), but any embedding, override or isolate the name leaves
    open is closed at its end, so "Ann \\u202egpj.exe" can never reverse the text that follows the name.
    """
    kept: list[str] = []
    for ch in name:
        code = ord(ch)
        if code < 0x20 or 0x7F <= code <= 0x9F or ch in "\u2028\u2029":
            if ch in "\t\n\v\f\r\x85\u2028\u2029":
                kept.append(" ")
            continue
        kept.append(ch)
    text = " ".join("".join(kept).split())
    return _close_bidi(text)


def _close_bidi(text: str) -> str:
    """Drop stray PDF/PDI and close what is left open, innermost first (UAX #9 pairing rules, simplified)."""
    if not any(ch in _EMBEDDINGS or ch in _ISOLATES or ch in (_PDF, _PDI) for ch in text):
        return text
    out: list[str] = []
    open_: list[str] = []
    for ch in text:
        if ch in _EMBEDDINGS or ch in _ISOLATES:
            open_.append(ch)
        elif ch == _PDF:
            if not open_ or open_[-1] not in _EMBEDDINGS:
                continue  # nothing to close here: a stray PDF would end an embedding outside the name
            open_.pop()
        elif ch == _PDI:
            if not any(item in _ISOLATES for item in open_):
                continue
            while open_.pop() not in _ISOLATES:  # a PDI also closes the embeddings opened inside its isolate
                out.append(_PDF)
        out.append(ch)
    out.extend(_PDI if item in _ISOLATES else _PDF for item in reversed(open_))
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Identity:
    """A person as one channel knows them: `(kind, value)` is unique across the whole store.

    `name` is passed through `clean_name` on construction, so no channel can hand the core a name with
    control characters or an unterminated bidi override.
    """

    kind: IdentityKind
    value: str
    name: str = ""
    email: str | None = None
    verified: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", clean_name(self.name))


@dataclass(frozen=True, slots=True)
class InboundAttachment:
    """A file that came with an inbound message; the core stores it once under a random name."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Inbound:
    """One customer message, normalised."""

    inbox_id: int
    external_id: str  # the channel's own id: delivering twice stores once
    thread_key: str  # email: root Message-ID · telegram: chat id · webchat: visitor · api: thread id
    sender: Identity
    text: str
    html: str | None = None
    subject: str | None = None
    attachments: Sequence[InboundAttachment] = ()
    sent_at: datetime | None = None
    # Channel details, stored with the message. One key the core reads: "automatic" (a short reason, e.g.
    # "Auto-Submitted: auto-replied") marks machine-generated mail: it is badged in the thread and neither
    # reopens its conversation nor raises the unread count.
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # A channel that threads by itself (email) names the conversation; the core uses it when that
    # conversation exists in this inbox and falls back to `thread_key` otherwise.
    conversation_id: int | None = None
    thread_reason: str | None = None  # why it landed where it did, stored and shown ("threaded by References")


@dataclass(frozen=True, slots=True)
class ThreadInfo:
    """A conversation as a threading channel sees it: its id and who takes part in it."""

    conversation_id: int
    participants: frozenset[str]  # lower-cased addresses: contact, earlier senders and recipients, agents


@dataclass(frozen=True, slots=True)
class Delivered:
    """What `Host.deliver` answers: where the message landed and whether it was new."""

    message_id: int
    conversation_id: int
    contact_id: int
    created: bool  # False when (inbox, external_id) was already stored
    # The new message as its thread shows it (None for a duplicate): a live channel can answer the sender
    # from it instead of reading the message back.
    message: ThreadMessage | None = None


@dataclass(frozen=True, slots=True)
class OutboundAttachment:
    """A file an agent attached to a reply; `path` is readable by the adapter."""

    filename: str
    content_type: str
    size: int
    path: str


@dataclass(frozen=True, slots=True)
class InboxInfo:
    """What an adapter needs to know about one inbox: identity, per-inbox settings and secret."""

    id: int
    name: str
    channel: str
    settings: Mapping[str, Any]
    secret: str
    public_key: str


@dataclass(frozen=True, slots=True)
class Outbound:
    """One agent reply to send out through the conversation's channel."""

    inbox: InboxInfo
    message_id: int
    conversation_id: int
    delivery_id: str  # stays the same across retries of one message, so receivers can deduplicate
    thread_key: str
    recipient: Identity | None
    text: str
    agent_name: str
    subject: str | None = None
    attachments: Sequence[OutboundAttachment] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Receipt:
    """Proof that a channel accepted an outbound message."""

    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class Edit:
    """A customer changed a message they had sent.

    The stored message with the same `(inbox, inbound.external_id)` takes the new text and shows it was
    edited; `Host.edit` answers None when that message was never stored (the adapter may then deliver
    `inbound` as a new message, so nothing is lost).
    """

    inbound: Inbound
    edited_at: datetime | None = None


class DeliveryError(Exception):
    """The only error that crosses the channel boundary.

    `retry_after=None` means the failure is permanent (the message becomes `failed` with `reason`);
    a number means "transient, try again no sooner than this many seconds".
    """

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class Overloaded(Exception):
    """The core takes no more deliveries right now: nothing was stored; try again in `retry_after` seconds.

    Raised by `Host.deliver` before anything is written. Each adapter answers with its protocol's "try again
    later" signal (webchat: an error frame `slow_down` with `retry_after`; HTTP: 503 + `Retry-After`; SMTP:
    451 4.3.2) and never advances a cursor past the refused message, so it comes again and nothing is lost.
    """

    def __init__(self, retry_after: float, reason: str = "the server is busy; try again shortly") -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    """One customer-visible message of a thread (incoming or outgoing; never a note or an activity line)."""

    id: int
    conversation_id: int
    kind: str  # "incoming" | "outgoing"
    text: str
    sender_name: str
    external_id: str | None
    created_at: datetime
    attachments: Sequence[OutboundAttachment] = ()


class Host(Protocol):
    """What the core offers a channel."""

    async def deliver(self, inbound: Inbound) -> Delivered:
        """Store one customer message once; raises `Overloaded` (storing nothing) when the core is saturated."""
        ...

    async def inbox(self, inbox_id: int) -> InboxInfo | None: ...

    async def inboxes(self, channel: str) -> Sequence[InboxInfo]: ...

    # ── for live channels (webchat) ──
    async def thread(self, inbox_id: int, thread_key: str, *, after: int | None, limit: int) -> Sequence[ThreadMessage]:
        """Customer-visible messages of every conversation of `thread_key`, oldest first.

        `after=None`: the newest `limit`; otherwise the first `limit` with an id greater than `after`.
        """
        ...

    async def attachment(self, inbox_id: int, message_id: int, index: int) -> OutboundAttachment | None:
        """The `index`-th file of a customer-visible message of the inbox, or None."""
        ...

    async def update_contact(self, sender: Identity) -> bool:
        """Copy `sender.name`/`sender.email` (when set) onto the contact of that identity; False if none yet."""
        ...

    async def signal(self, inbox_id: int, thread_key: str, frame: Mapping[str, Any]) -> None:
        """Publish an ephemeral frame (customer typing, seen) to the agents of the thread's conversation.

        The core adds `conversation_id`; nothing is stored. Does nothing when the thread has no conversation.
        """
        ...

    async def agents_online(self, inbox_id: int) -> bool:
        """Whether an agent who may answer this inbox is connected right now."""
        ...

    async def edit(self, edit: Edit) -> Delivered | None:
        """Update a stored inbound message (publishes `message.updated`); None when it is not stored."""
        ...

    async def set_contact_attributes(self, identity: Identity, attributes: Mapping[str, Any]) -> None:
        """Merge `attributes` into the contact owning `identity`; a None value removes the key.

        Publishes `contact.updated` only when something changed; an unknown identity is ignored.
        """
        ...

    async def find_conversation(
        self, inbox_id: int, *, conversation_id: int | None = None, external_id: str | None = None
    ) -> ThreadInfo | None:
        """The conversation with this id, or the one holding the message with this channel id, in this inbox."""
        ...

    async def known_external_ids(self, inbox_id: int, external_ids: Sequence[str]) -> set[str]:
        """Which of these channel ids are already stored in this inbox (to skip fetching them again)."""
        ...

    async def mark_failed(self, inbox_id: int, external_id: str, reason: str) -> bool:
        """Mark our outgoing message with this channel id failed (a bounce came back); False if unknown."""
        ...

    async def load_cursor(self, key: str) -> str | None:
        """A channel's durable position (IMAP UIDVALIDITY+UID, update offsets); None if never saved."""
        ...

    async def save_cursor(self, key: str, value: str) -> None: ...

    async def quarantine(self, inbox_id: int, raw: bytes, reason: str, *, sender: str = "", subject: str = "") -> int:
        """Keep a message the channel cannot process (poison mail) for admins only, once per distinct bytes.

        It never reaches a conversation; admins download, retry (`Reingesting`) or discard it. Answers its id.
        """
        ...


class Channel(Protocol):
    """What a channel offers the core."""

    name: ClassVar[str]
    routes: Sequence[BaseRoute]

    async def run(self, inbox: InboxInfo) -> None:
        """Receive until cancelled (push channels may simply return)."""
        ...

    async def send(self, message: Outbound) -> Receipt:
        """Send one reply; raise `DeliveryError` on failure."""
        ...


@runtime_checkable
class TypingAware(Protocol):
    """Optional: a channel that can show the customer that an agent is typing (Telegram's chat action)."""

    async def show_typing(self, inbox: InboxInfo, thread_key: str) -> None: ...


@runtime_checkable
class Reingesting(Protocol):
    """Optional: a channel that can take a quarantined original again (an admin's "retry" after a fix).

    Raises `DeliveryError` with the reason when the message still cannot be processed.
    """

    async def reingest(self, inbox: InboxInfo, raw: bytes) -> Delivered | None: ...


@dataclass(frozen=True, slots=True)
class ChannelHealth:
    """Optional: what a polling/pushing channel reports about one inbox, for `/metrics`."""

    inbox_id: int
    last_fetch_at: float | None = None  # unix time of the last successful receive
    last_send_at: float | None = None  # unix time of the last successful send
    last_error_at: float | None = None
    last_error: str | None = None
    failing_since: float | None = None  # start of the current run of failures; None while healthy
    backlog: int = 0  # items known to be waiting (e.g. mails not fetched yet)


@runtime_checkable
class HealthReporting(Protocol):
    """Optional: a channel that keeps `ChannelHealth` per inbox."""

    def health(self) -> Sequence[ChannelHealth]: ...


class DeliveryStatus(StrEnum):
    """How far one of our outgoing messages got, as the channel reports it (WhatsApp's receipts)."""

    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"

    def supersedes(self, current: str) -> bool:
        """Whether this receipt may replace a message's `current` status; receipts arrive out of order.

        One order, queued < sent < failed < delivered < read, and a receipt only moves a message forwards: a
        late "delivered" after "read" is ignored, "failed" replaces queued/sent but not delivered/read (those
        did arrive), and a later "delivered"/"read" replaces "failed" (it arrived after all). Any other
        `current` (an incoming message's "received") is never replaced.
        """
        return _RECEIPT_ORDER[self] > _RECEIPT_ORDER.get(current, len(_RECEIPT_ORDER))


_RECEIPT_ORDER = {"queued": 0, "sent": 1, "failed": 2, "delivered": 3, "read": 4}


@runtime_checkable
class StatusRecording(Protocol):
    """Optional on the host: record a delivery receipt of our outgoing message with this channel id.

    The core finds the outgoing message of `inbox_id` whose `external_id` is the channel's id (the one its
    `Receipt` carried), applies `status` when `status.supersedes(message.status)` (storing `error` as the
    failure reason when it is FAILED) and publishes `message.updated`; a receipt that does not supersede
    changes nothing. Answers False only when no outgoing message has that id (yet): the outbox may not have
    stored the receipt's id when the first receipt arrives. `at` is when the channel saw the change.
    """

    async def record_status(
        self,
        inbox_id: int,
        external_id: str,
        status: DeliveryStatus,
        *,
        at: datetime | None = None,
        error: str | None = None,
    ) -> bool: ...


@runtime_checkable
class ContactSignalling(Protocol):
    """Optional on the host: publish an ephemeral frame about a person to the agents of an inbox (a phone ringing).

    Unlike `Host.signal` it reaches the agents even when the person has no conversation in the inbox yet. The core
    adds `contact` (`{"id", "name", "open_conversations"}`) when `identity` belongs to a known contact, and
    `conversation_id` when the inbox has a conversation for `identity`; nothing is stored.
    """

    async def signal_contact(self, inbox_id: int, identity: Identity, frame: Mapping[str, Any]) -> None: ...


@runtime_checkable
class MessageDigests(Protocol):
    """Optional on the host: the content digests stored with messages, for channels whose ids are not unique.

    Email's Message-ID is chosen by the sender and two different mails may carry the same one. For each of
    `external_ids` stored in `inbox_id`, the digest the channel stored in the message's metadata
    (`meta["email"]["digest"]`), or None when it was stored without one; ids not stored are absent. A channel
    without it dedupes on the id alone.
    """

    async def message_digests(self, inbox_id: int, external_ids: Sequence[str]) -> dict[str, str | None]: ...


class FailureRun:
    """Logs a run of failures of one kind (the database down, a relay refusing) as two lines, not one per failure.

    The first failure logs "<what> failing: <error>"; the first success after it logs "<what> recovered after N
    failures in S s". An outage of a few seconds under load is two log lines, not a traceback per message.
    """

    def __init__(self, logger: logging.Logger, what: str, *, trace: bool = False) -> None:
        self.logger = logger
        self.what = what
        self.trace = trace  # the first failure of a run with its traceback (errors that may be bugs)
        self.failures = 0
        self.since: float | None = None

    def failed(self, error: BaseException) -> None:
        if self.failures == 0:
            self.since = time.monotonic()
            detail = str(error).splitlines()[0][:300] if str(error) else "no details"
            self.logger.error(
                "%s failing: %s: %s", self.what, type(error).__name__, detail, exc_info=error if self.trace else None
            )
        self.failures += 1

    def succeeded(self) -> None:
        if self.failures:
            seconds = time.monotonic() - (self.since or time.monotonic())
            self.logger.warning("%s recovered after %d failures in %.1f s", self.what, self.failures, seconds)
        self.failures = 0
        self.since = None
