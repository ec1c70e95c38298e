"""The one port between the core (`inbox/`) and the channel adapters.

Adapters import this module, the standard library and their own channel library, never `inbox`.
The core hands adapters a `Host` (what it offers a channel) and calls them through `Channel`
(what a channel offers the core). Everything crossing the seam is a frozen record defined here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from starlette.routing import BaseRoute


class IdentityKind(StrEnum):
    """How a person is known on a channel."""

    EMAIL = "email"
    TELEGRAM = "telegram"
    WEBCHAT = "webchat"
    PHONE = "phone"
    EXTERNAL = "external"


@dataclass(frozen=True, slots=True)
class Identity:
    """A person as one channel knows them: `(kind, value)` is unique across the whole store."""

    kind: IdentityKind
    value: str
    name: str = ""
    email: str | None = None
    verified: bool = False


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
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delivered:
    """What `Host.deliver` answers: where the message landed and whether it was new."""

    message_id: int
    conversation_id: int
    contact_id: int
    created: bool  # False when (inbox, external_id) was already stored


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


class DeliveryError(Exception):
    """The only error that crosses the channel boundary.

    `retry_after=None` means the failure is permanent (the message becomes `failed` with `reason`);
    a number means "transient, try again no sooner than this many seconds".
    """

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
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

    async def deliver(self, inbound: Inbound) -> Delivered: ...

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
