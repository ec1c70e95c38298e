"""SQLModel tables: the only place tables are declared. No I/O and no business rules live here.

Timestamps are aware UTC (`clock.utcnow()`), the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from inbox.clock import utcnow


class Role(StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"  # every inbox of their teams, reassigns, reports; no settings (inbox.read.permissions)
    AGENT = "agent"


class Availability(StrEnum):
    ONLINE = "online"
    BUSY = "busy"
    OFFLINE = "offline"


class Status(StrEnum):
    OPEN = "open"
    PENDING = "pending"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"


class MessageKind(StrEnum):
    INCOMING = "incoming"
    OUTGOING = "outgoing"
    NOTE = "note"
    ACTIVITY = "activity"


class MessageStatus(StrEnum):
    RECEIVED = "received"
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


class Agent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(index=True, unique=True, max_length=320)
    name: str = Field(max_length=200)
    password_hash: str = ""
    role: str = Field(default=Role.AGENT, max_length=16)
    availability: str = Field(default=Availability.OFFLINE, max_length=16)
    session_version: int = 0
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class ApiToken(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id", index=True)
    token_hash: str = Field(unique=True, max_length=64)
    name: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None


class Team(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    description: str = ""


class TeamMember(SQLModel, table=True):
    team_id: int = Field(foreign_key="team.id", primary_key=True)
    agent_id: int = Field(foreign_key="agent.id", primary_key=True, index=True)


class Inbox(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    channel: str = Field(max_length=32)
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    public_key: str = Field(unique=True, max_length=64)
    secret: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow)


class InboxMember(SQLModel, table=True):
    inbox_id: int = Field(foreign_key="inbox.id", primary_key=True)
    agent_id: int = Field(foreign_key="agent.id", primary_key=True, index=True)


class Contact(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(default="", max_length=300)
    email: str | None = Field(default=None, max_length=320, index=True)
    phone: str | None = Field(default=None, max_length=64)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    merged_into_id: int | None = Field(default=None, foreign_key="contact.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Identity(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("kind", "value", name="uq_identity_kind_value"),)

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    kind: str = Field(max_length=16)
    value: str = Field(max_length=320)
    name: str = Field(default="", max_length=300)
    verified: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class Conversation(SQLModel, table=True):
    __table_args__ = (
        Index("ix_conversation_list", "status", "last_activity_at", "id"),
        Index("ix_conversation_inbox_list", "inbox_id", "status", "last_activity_at", "id"),
        Index("ix_conversation_assignee_list", "assignee_id", "status", "last_activity_at", "id"),
        Index("ix_conversation_activity", "last_activity_at", "id"),
        Index("ix_conversation_thread", "inbox_id", "thread_key", "id"),
        Index("ix_conversation_snoozed", "status", "snoozed_until"),
        Index("ix_conversation_assignee_activity", "assignee_id", "last_activity_at", "id"),
        Index("ix_conversation_inbox_activity", "inbox_id", "last_activity_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    inbox_id: int = Field(foreign_key="inbox.id")
    contact_id: int = Field(foreign_key="contact.id", index=True)
    thread_key: str = Field(max_length=512)
    status: str = Field(default=Status.OPEN, max_length=16)
    assignee_id: int | None = Field(default=None, foreign_key="agent.id")
    team_id: int | None = Field(default=None, foreign_key="team.id")
    priority: str | None = Field(default=None, max_length=16)
    subject: str | None = Field(default=None, max_length=998)
    preview: str = Field(default="", max_length=200)
    snoozed_until: datetime | None = None
    unread_count: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    first_reply_at: datetime | None = None
    resolved_at: datetime | None = None
    last_activity_at: datetime = Field(default_factory=utcnow)
    last_incoming_at: datetime | None = None


class Label(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=100)
    color: str = Field(default="#6b7280", max_length=16)
    description: str = ""


class ConversationLabel(SQLModel, table=True):
    conversation_id: int = Field(foreign_key="conversation.id", primary_key=True)
    label_id: int = Field(foreign_key="label.id", primary_key=True, index=True)


class Message(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("inbox_id", "external_id", name="uq_message_inbox_external"),
        Index("ix_message_conversation", "conversation_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id")
    inbox_id: int = Field(foreign_key="inbox.id")
    kind: str = Field(max_length=16)
    body: str = ""
    html: str | None = None
    sender_type: str = Field(default="contact", max_length=16)  # contact | agent | system
    sender_id: int | None = None
    sender_name: str = Field(default="", max_length=300)
    status: str = Field(default=MessageStatus.RECEIVED, max_length=16)
    error: str | None = None
    external_id: str | None = Field(default=None, max_length=512)
    client_id: str | None = Field(default=None, max_length=64, unique=True)
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Attachment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    message_id: int | None = Field(default=None, foreign_key="message.id", index=True)
    uploaded_by: int | None = Field(default=None, foreign_key="agent.id")
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=255)
    size: int
    sha256: str = Field(max_length=64)
    storage_name: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow)


class Event(SQLModel, table=True):
    # BIGINT on PostgreSQL; plain INTEGER on SQLite, where only INTEGER PRIMARY KEY autoincrements.
    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    )
    type: str = Field(max_length=64)
    inbox_id: int | None = Field(default=None, index=True)
    conversation_id: int | None = None
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, index=True)


class Outbox(SQLModel, table=True):
    __table_args__ = (Index("ix_outbox_due", "done", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", unique=True)
    delivery_id: str = Field(max_length=64)
    done: bool = False
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Cursor(SQLModel, table=True):
    """Small durable positions: IMAP UIDVALIDITY+UID per inbox, Telegram offsets, the event prune mark."""

    key: str = Field(primary_key=True, max_length=200)
    value: str = Field(default="", max_length=2000)
    updated_at: datetime = Field(default_factory=utcnow)


class Quarantined(SQLModel, table=True):
    """A message a channel could not process (poison mail): kept for admins with its raw original, never
    delivered to a conversation and never fetched again; `status` quarantined | discarded (a tombstone, so the
    same bytes arriving again stay discarded). No foreign key: an inbox with mail in quarantine cannot be
    deleted, its tombstones are deleted with it (`inbox.gateway.quarantine.before_inbox_deleted`)."""

    __table_args__ = (UniqueConstraint("inbox_id", "digest"),)

    id: int | None = Field(default=None, primary_key=True)
    inbox_id: int = Field(index=True)
    digest: str = Field(max_length=64)  # sha256 of the raw bytes: the same mail is quarantined once
    reason: str
    sender: str = Field(default="", max_length=320)
    subject: str = Field(default="", max_length=998)
    size: int = 0
    storage_name: str | None = Field(default=None, max_length=128)  # None once discarded
    status: str = Field(default="quarantined", max_length=16)
    attempts: int = 1
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Continuity(SQLModel, table=True):
    """Email continuity of one live-chat conversation: what the visitor has seen in the widget, the newest
    reply already emailed, and when the worker looks at the conversation next (None: nothing pending)."""

    conversation_id: int = Field(foreign_key="conversation.id", primary_key=True)
    seen_up_to: int = 0
    emailed_up_to: int = 0
    due_at: datetime | None = Field(default=None, index=True)
    updated_at: datetime = Field(default_factory=utcnow)


class CannedResponse(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    short_code: str = Field(unique=True, max_length=64)
    content: str


class CsatSurvey(SQLModel, table=True):
    """One satisfaction survey, sent when a conversation was resolved; at most one answer (changeable briefly).

    At most one survey follows each customer message: `(conversation_id, incoming_at)` is unique, so two
    resolutions racing (two agents, two processes) cannot both send one."""

    __table_args__ = (
        Index("ix_csatsurvey_created", "created_at", "inbox_id"),
        UniqueConstraint("conversation_id", "incoming_at", name="uq_csatsurvey_conversation_incoming"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    inbox_id: int = Field(foreign_key="inbox.id")
    agent_id: int | None = Field(default=None, foreign_key="agent.id")  # the assignee at resolution
    message_id: int | None = Field(default=None, foreign_key="message.id")  # the survey message sent out
    rating: int | None = None  # 1 (bad) … 5 (great); None until answered
    comment: str = ""
    created_at: datetime = Field(default_factory=utcnow)  # the resolution it asks about
    responded_at: datetime | None = None  # first answer; the rating may change for a while after it
    updated_at: datetime = Field(default_factory=utcnow)
    incoming_at: datetime | None = None  # the conversation's last customer message the survey follows


def key(row: Any) -> int:
    """The primary key of a flushed row (ids are optional only until the first flush)."""
    value = row.id
    assert isinstance(value, int), f"{type(row).__name__} has no id yet"
    return value


# ── self-service answers and proactive messages (see inbox.selfserve) ────────────────────────
class Article(SQLModel, table=True):
    """A knowledge-base article; `inbox_id=None` means every inbox. Only `published` ones reach visitors."""

    id: int | None = Field(default=None, primary_key=True)
    inbox_id: int | None = Field(default=None, foreign_key="inbox.id", ondelete="CASCADE", index=True)
    title: str = Field(max_length=300)
    body: str  # Markdown as the admin wrote it
    html: str = ""  # rendered and sanitised once, at write time
    locale: str = Field(default="", max_length=16)  # "" = any language
    published: bool = False
    views: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ProactiveRule(SQLModel, table=True):
    """A greeting the widget shows by itself when the visitor's page matches the conditions."""

    id: int | None = Field(default=None, primary_key=True)
    inbox_id: int = Field(foreign_key="inbox.id", ondelete="CASCADE", index=True)
    message: str = Field(max_length=2000)
    url_pattern: str = Field(default="", max_length=500)  # glob over the page URL; "" = every page
    min_seconds_on_page: int = 0
    returning_only: bool = False
    agents_online_only: bool = False
    max_per_visitor: int = 1  # how often one visitor may see it, ever
    enabled: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class SelfServeEvent(SQLModel, table=True):
    """One measured visitor action: article view, search, deflection, proactive shown/replied."""

    __table_args__ = (
        Index("ix_selfserveevent_kind_created", "kind", "created_at"),
        Index("ix_selfserveevent_created", "created_at"),  # retention: old rows are deleted by date
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    inbox_id: int = Field(foreign_key="inbox.id", ondelete="CASCADE")
    visitor: str = Field(default="", max_length=200, index=True)  # the widget thread key
    article_id: int | None = None
    rule_id: int | None = None
    query: str | None = Field(default=None, max_length=200)
    hits: int | None = None
    created_at: datetime = Field(default_factory=utcnow)


# ── the audit log (see inbox.store.audit, inbox.audit) ───────────────────────────────────────
class AuditEntry(SQLModel, table=True):
    """Who did what, when, from where: append-only (no code path updates or deletes a row).

    `before`/`after` hold the changed fields with secrets masked; `actor_id` is None for the system (CLI,
    retention timer) and for failed sign-ins, whose attempted email is in `actor_name`."""

    __table_args__ = (
        Index("ix_auditentry_actor", "actor_id", "id"),
        Index("ix_auditentry_action", "action", "id"),
        Index("ix_auditentry_created", "created_at", "id"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    )
    action: str = Field(max_length=64)
    actor_id: int | None = None  # no foreign key: the log outlives what it names
    actor_name: str = Field(default="", max_length=320)
    ip: str = Field(default="", max_length=64)
    target_type: str = Field(default="", max_length=32)
    target_id: str = Field(default="", max_length=64)
    before: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    after: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


# ── team workflow: business hours, routing capacity, SLA clocks (see inbox.workflow) ──────────
class BusinessHours(SQLModel, table=True):
    """A named calendar (`inbox.workflow.hours.Calendar.to_dict`); inboxes name it in `settings.business_hours_id`."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=100)
    calendar: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class AgentCapacity(SQLModel, table=True):
    """How many open conversations routing gives an agent at most (no row: the routing default)."""

    agent_id: int = Field(foreign_key="agent.id", primary_key=True, ondelete="CASCADE")
    capacity: int


class SlaPolicy(SQLModel, table=True):
    """Reply and resolution targets in business seconds for one inbox (`inbox_id` None: every inbox) and
    priority (`priority` None: any). The most specific policy applies: inbox+priority, inbox, priority, any."""

    __table_args__ = (UniqueConstraint("inbox_id", "priority", name="uq_slapolicy_inbox_priority"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    inbox_id: int | None = Field(default=None, foreign_key="inbox.id", ondelete="CASCADE")
    priority: str | None = Field(default=None, max_length=16)
    first_response_seconds: int | None = None
    next_response_seconds: int | None = None
    resolution_seconds: int | None = None
    warning_seconds: int = 900
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class SlaClock(SQLModel, table=True):
    """One running promise of a conversation (`target`: first_response | next_response | resolution).

    `elapsed` business seconds were used up to `running_since` (None: paused, pending or snoozed); `due_at` is
    when it breaches if it keeps running (None while paused or met). `warned_at`/`breached_at` are set once."""

    __table_args__ = (Index("ix_slaclock_due", "due_at"),)

    conversation_id: int = Field(foreign_key="conversation.id", primary_key=True, ondelete="CASCADE")
    target: str = Field(primary_key=True, max_length=16)
    inbox_id: int = Field(foreign_key="inbox.id", ondelete="CASCADE")
    policy_id: int | None = Field(default=None, foreign_key="slapolicy.id", ondelete="SET NULL")
    target_seconds: int
    warning_seconds: int = 0
    started_at: datetime
    elapsed: float = 0.0
    running_since: datetime | None = None
    due_at: datetime | None = None
    met_at: datetime | None = None
    warned_at: datetime | None = None
    breached_at: datetime | None = None


# ── organisations (companies) and their contacts (see inbox.reports.organizations) ────────────
class Organization(SQLModel, table=True):
    """A customer company. Contacts belong to it by hand (`OrganizationMember`) or, when they have no manual
    membership, because their email's domain is one of `domains` (lower-case, e.g. ["acme.test"])."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    domains: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    notes: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class OrganizationMember(SQLModel, table=True):
    """A contact added to an organisation by hand: it wins over a domain match (one organisation per contact)."""

    contact_id: int = Field(foreign_key="contact.id", primary_key=True)
    organization_id: int = Field(foreign_key="organization.id", ondelete="CASCADE", index=True)
    created_at: datetime = Field(default_factory=utcnow)


# ── acknowledgements and the customer portal (see inbox.portal) ──────────────────────────────
class Acknowledgement(SQLModel, table=True):
    """The one acknowledgement a new conversation got (the primary key makes it once per conversation).

    `address_hash` (SHA-256 of the lower-cased address) is what the per-address rate limit counts; the address
    itself is not kept here, so erasing a contact leaves nothing of it behind."""

    __table_args__ = (Index("ix_acknowledgement_address", "address_hash", "created_at"),)

    conversation_id: int = Field(foreign_key="conversation.id", primary_key=True, ondelete="CASCADE")
    message_id: int | None = Field(default=None, foreign_key="message.id", ondelete="SET NULL")
    address_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class PortalLink(SQLModel, table=True):
    """One sign-in link a customer asked for: `id` is the random nonce its signed token carries.

    Every request is a row, known address or not (the per-address rate limit counts them alike); `used_at`
    is set once, by a conditional update, so a link signs in at most once."""

    __table_args__ = (Index("ix_portallink_address", "address_hash", "created_at"),)

    id: str = Field(primary_key=True, max_length=64)
    address_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    used_at: datetime | None = None


# ── team workflow: automation rules, macros, outgoing event webhooks (see inbox.workflow.rules …) ──
class AutomationRule(SQLModel, table=True):
    """When `trigger` happens and every condition holds, run the actions (`inbox.workflow.rules`).

    `conditions` and `actions` are JSON lists in the shapes `inbox.workflow.rules` validates; `after_minutes`
    is the waiting time of the time-based triggers (None for the others)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=100)
    enabled: bool = True
    trigger: str = Field(max_length=32, index=True)
    after_minutes: int | None = None
    conditions: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    actions: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class RuleFiring(SQLModel, table=True):
    """A time-based rule fired once for one stretch of a conversation's waiting (`since`: when the wait began,
    the customer's last message or the conversation's creation)."""

    rule_id: int = Field(foreign_key="automationrule.id", primary_key=True, ondelete="CASCADE")
    conversation_id: int = Field(foreign_key="conversation.id", primary_key=True, ondelete="CASCADE")
    since: datetime = Field(primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)


class Macro(SQLModel, table=True):
    """A named list of actions (the rules' shapes) an agent runs on one conversation."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=100)
    actions: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Webhook(SQLModel, table=True):
    """An outgoing webhook: event types POSTed to `url`, signed with `secret` (`inbox.workflow.webhooks`)."""

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2000)
    event_types: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    secret: str = Field(max_length=128)
    enabled: bool = True
    description: str = Field(default="", max_length=300)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class WebhookDelivery(SQLModel, table=True):
    """One event to POST to one webhook; durable, retried with backoff (`status`: pending | delivered | failed).

    `delivery_id` is sent as `X-Switchboard-Delivery` and stays the same on every attempt."""

    __table_args__ = (
        Index("ix_webhookdelivery_due", "status", "next_attempt_at"),
        Index("ix_webhookdelivery_webhook", "webhook_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    webhook_id: int = Field(foreign_key="webhook.id", ondelete="CASCADE")
    delivery_id: str = Field(unique=True, max_length=64)
    event_type: str = Field(max_length=64)
    event_id: int | None = None
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    response_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = None
