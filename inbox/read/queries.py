"""Read-side queries of the HTTP API: keyset pages of conversations, messages and contacts, and details.

A page costs a constant number of statements whatever its size: one for the rows (contacts joined in),
one per batched lookup (labels, attachments, identities) — the conversation list's labels come in its one
statement (`inbox.read.listing`). Pages never use OFFSET; cursors are opaque
URL-safe base64 of the last row's sort key. This module only reads; writes go through `inbox.service.core`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, or_, tuple_, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select

from inbox.clock import parse_iso
from inbox.errors import Invalid
from inbox.read import listing, views
from inbox.store.models import Attachment, Contact, Conversation, ConversationLabel, Identity, Label, Message, key

MAX_ID = 2**31 - 1  # ids are 32-bit on PostgreSQL: a larger one names nothing and must not reach the driver
CONTACT_CONVERSATIONS = 100  # a contact's detail lists at most this many of its latest conversations


# ── cursors ───────────────────────────────────────────────────────────────────────────────────
def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(raw: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise Invalid("cursor: not a cursor this API returned (pass next_cursor back unchanged)") from exc


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def activity_cursor(raw: str) -> tuple[datetime, int]:
    """Decode a conversation-list cursor: `[last_activity_at, id]`."""
    value = _decode(raw)
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and _is_id(value[1]):
        try:
            return parse_iso(value[0]), value[1]
        except ValueError:
            pass
    raise Invalid("cursor: not a cursor this API returned (pass next_cursor back unchanged)")


def id_cursor(raw: str) -> int:
    """Decode a cursor over ids: `[id]`."""
    value = _decode(raw)
    if isinstance(value, list) and len(value) == 1 and _is_id(value[0]):
        return int(value[0])
    raise Invalid("cursor: not a cursor this API returned (pass next_cursor back unchanged)")


# ── conversations ─────────────────────────────────────────────────────────────────────────────
@dataclass(frozen=True, slots=True)
class ConversationFilter:
    """What the list shows; `visible` None means every inbox (admins)."""

    visible: frozenset[int] | None
    status: str | None = None
    inbox_id: int | None = None
    assignee_id: int | None = None
    unassigned: bool = False
    team_id: int | None = None
    label: str | None = None
    q: str | None = None


def like(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, with its wildcards escaped (escape char `\\`)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conditions(where: ConversationFilter) -> list[ColumnElement[bool]]:
    """Every condition but `visible` (see `_page_ids`)."""
    conditions: list[ColumnElement[bool]] = []
    if where.status is not None:
        conditions.append(col(Conversation.status) == where.status)
    if where.inbox_id is not None:
        conditions.append(col(Conversation.inbox_id) == where.inbox_id)
    if where.unassigned:
        conditions.append(col(Conversation.assignee_id).is_(None))
    elif where.assignee_id is not None:
        conditions.append(col(Conversation.assignee_id) == where.assignee_id)
    if where.team_id is not None:
        conditions.append(col(Conversation.team_id) == where.team_id)
    if where.label is not None:
        conditions.append(
            exists(
                select(ConversationLabel.conversation_id)
                .join(Label, col(Label.id) == ConversationLabel.label_id)
                .where(col(ConversationLabel.conversation_id) == Conversation.id, col(Label.name) == where.label)
            )
        )
    if where.q:
        pattern = like(where.q)
        conditions.append(
            or_(
                col(Conversation.subject).ilike(pattern, escape="\\"),
                col(Conversation.preview).ilike(pattern, escape="\\"),
                col(Contact.name).ilike(pattern, escape="\\"),
                col(Contact.email).ilike(pattern, escape="\\"),
            )
        )
    return conditions


NEWEST_FIRST = (col(Conversation.last_activity_at).desc(), col(Conversation.id).desc())


def _page_ids(where: ConversationFilter, conditions: list[ColumnElement[bool]], limit: int) -> Any:
    """The ids of one page for an agent who sees several inboxes, as one statement.

    `inbox_id IN (…) ORDER BY last_activity_at` cannot be read in order from any index: both databases
    sorted every visible conversation (hundreds of thousands at 1M). Instead each visible inbox gives its
    first `limit` rows in order from (inbox_id, last_activity_at, id), and the union is sorted: at most
    `limit` × inboxes rows, whatever the depth.
    """
    assert where.visible is not None
    branches = []
    for inbox_id in sorted(where.visible):
        branch: Any = select(col(Conversation.id).label("id"), col(Conversation.last_activity_at).label("at"))
        if where.q:
            branch = branch.join(Contact, col(Contact.id) == Conversation.contact_id)
        inner = branch.where(col(Conversation.inbox_id) == inbox_id, *conditions).order_by(*NEWEST_FIRST)
        sub = inner.limit(limit).subquery()
        branches.append(select(sub.c.id, sub.c.at))
    merged = union_all(*branches).subquery()
    return select(merged.c.id).order_by(merged.c.at.desc(), merged.c.id.desc()).limit(limit)


async def conversation_page(
    session: AsyncSession, where: ConversationFilter, after: tuple[datetime, int] | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One page, newest activity first (ties by id), and the cursor of the next page if there is one."""
    conditions = _conditions(where)
    if after is not None:
        at, last_id = after
        # A row-value comparison, so both databases seek the index to the cursor; the equivalent
        # `a < x OR (a = x AND id < y)` made SQLite scan the index from the top (cost grew with depth).
        conditions.append(tuple_(col(Conversation.last_activity_at), col(Conversation.id)) < tuple_(at, last_id))
    if where.visible is not None and where.inbox_id is None:
        if not where.visible:
            return [], None
        page: list[ColumnElement[bool]] = [col(Conversation.id).in_(_page_ids(where, conditions, limit + 1))]
    else:
        if where.visible is not None:  # one inbox asked for: the caller checked it is visible
            conditions.append(col(Conversation.inbox_id).in_(sorted(where.visible)))
        page = conditions
    dialect = session.get_bind().dialect
    statement = listing.page_statement(page, NEWEST_FIRST, limit + 1, dialect)
    # Core execution on the session's connection: plain rows, no ORM result processing.
    rows = list((await (await session.connection()).execute(statement)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    stamps = listing.Stamps(dialect)
    items = [listing.conversation(row, stamps) for row in rows]
    next_cursor = None
    if more:
        last = rows[-1]
        next_cursor = encode_cursor([stamps.datetime(last.last_activity_at).isoformat(), last.id])
    return items, next_cursor


async def conversation_views(
    session: AsyncSession, rows: Sequence[tuple[Conversation, Contact | None]]
) -> list[dict[str, Any]]:
    """JSON of conversations with their contacts, labels batch-loaded in one statement."""
    ids = [key(conversation) for conversation, _ in rows]
    labels: dict[int, list[str]] = {}
    if ids:
        pairs = await session.execute(
            select(ConversationLabel.conversation_id, Label.name)
            .join(Label, col(Label.id) == ConversationLabel.label_id)
            .where(col(ConversationLabel.conversation_id).in_(ids))
        )
        labels = dict(views.group((conversation_id, name) for conversation_id, name in pairs.all()))
    return [views.conversation(row, contact, labels.get(key(row), [])) for row, contact in rows]


async def conversation_detail(session: AsyncSession, conversation: Conversation) -> dict[str, Any]:
    contact = await session.get(Contact, conversation.contact_id)
    return (await conversation_views(session, [(conversation, contact)]))[0]


# ── messages ──────────────────────────────────────────────────────────────────────────────────
async def message_page(
    session: AsyncSession, conversation_id: int, before: int | None, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """The newest `limit` messages older than `before`, returned oldest first, with attachments.

    Answers the items and, when older messages remain, the id to pass as the next `before`.
    """
    conditions = [col(Message.conversation_id) == conversation_id]
    if before is not None:
        conditions.append(col(Message.id) < before)
    statement = select(Message).where(*conditions).order_by(col(Message.id).desc()).limit(limit + 1)
    rows = list((await session.execute(statement)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    rows.reverse()
    attachments = await attachments_of(session, [key(row) for row in rows])
    items = [views.message(row, attachments.get(key(row), [])) for row in rows]
    return items, (key(rows[0]) if more and rows else None)


async def attachments_of(session: AsyncSession, message_ids: Sequence[int]) -> dict[int, list[Attachment]]:
    if not message_ids:
        return {}
    rows = (
        await session.execute(
            select(Attachment).where(col(Attachment.message_id).in_(message_ids)).order_by(col(Attachment.id))
        )
    ).scalars()
    return dict(views.group((row.message_id, row) for row in rows if row.message_id is not None))


# ── contacts ──────────────────────────────────────────────────────────────────────────────────
def _contact_visible(visible: frozenset[int] | None) -> list[ColumnElement[bool]]:
    if visible is None:
        return []
    return [
        exists(
            select(Conversation.id).where(
                col(Conversation.contact_id) == Contact.id, col(Conversation.inbox_id).in_(sorted(visible))
            )
        )
    ]


async def contact_page(
    session: AsyncSession, visible: frozenset[int] | None, q: str | None, after: int | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Contacts (not merged away) newest first; agents see those with a conversation in their inboxes."""
    conditions = [col(Contact.merged_into_id).is_(None), *_contact_visible(visible)]
    if q:
        pattern = like(q)
        conditions.append(
            or_(
                col(Contact.name).ilike(pattern, escape="\\"),
                col(Contact.email).ilike(pattern, escape="\\"),
                col(Contact.phone).ilike(pattern, escape="\\"),
                exists(
                    select(Identity.id).where(
                        col(Identity.contact_id) == Contact.id, col(Identity.value).ilike(pattern, escape="\\")
                    )
                ),
            )
        )
    if after is not None:
        conditions.append(col(Contact.id) < after)
    statement = select(Contact).where(*conditions).order_by(col(Contact.id).desc()).limit(limit + 1)
    rows = list((await session.execute(statement)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    identities = await identities_of(session, [key(row) for row in rows])
    items = [views.contact(row, identities.get(key(row), [])) for row in rows]
    return items, (encode_cursor([key(rows[-1])]) if more else None)


async def identities_of(session: AsyncSession, contact_ids: Sequence[int]) -> dict[int, list[Identity]]:
    if not contact_ids:
        return {}
    rows = (
        await session.execute(
            select(Identity).where(col(Identity.contact_id).in_(contact_ids)).order_by(col(Identity.id))
        )
    ).scalars()
    return dict(views.group((row.contact_id, row) for row in rows))


async def contact_visible(session: AsyncSession, contact_id: int, visible: frozenset[int] | None) -> Contact | None:
    """The contact if it exists and the caller may see it (admins: always; agents: through a conversation)."""
    statement = select(Contact).where(col(Contact.id) == contact_id, *_contact_visible(visible))
    return (await session.execute(statement)).scalar_one_or_none()


async def contact_detail(session: AsyncSession, contact: Contact, visible: frozenset[int] | None) -> dict[str, Any]:
    """The contact with identities and its latest conversations on every inbox the caller may see."""
    contact_id = key(contact)
    identities = await identities_of(session, [contact_id])
    conditions = [col(Conversation.contact_id) == contact_id]
    if visible is not None:
        conditions.append(col(Conversation.inbox_id).in_(sorted(visible)))
    conversations = (
        await session.execute(
            select(Conversation)
            .where(*conditions)
            .order_by(col(Conversation.last_activity_at).desc(), col(Conversation.id).desc())
            .limit(CONTACT_CONVERSATIONS)
        )
    ).scalars()
    items = await conversation_views(session, [(row, contact) for row in conversations])
    return {**views.contact(contact, identities.get(contact_id, [])), "conversations": items}
