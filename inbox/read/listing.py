"""The conversation list's page statement and its JSON, built from plain Core rows (no ORM objects).

The inbox list is the hottest read of the API, so one page is one statement: the page's conversations with
their contacts, and each conversation's label names aggregated in the same statement (a correlated
subquery over the page only, at most `limit + 1` rows). Rows become the same JSON as
`inbox.read.views.conversation` — same keys, order and values (`tests/test_listing.py` holds them equal) —
without building ORM instances; on SQLite timestamps are formatted from the stored text when it is in
SQLAlchemy's canonical form. This module only reads; `inbox.read.queries` decides which rows a page holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, func, type_coerce
from sqlalchemy.engine import Dialect, Row
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select

from inbox.clock import iso
from inbox.store.models import Contact, Conversation, ConversationLabel, Label

TABLE: Any = Conversation.__table__  # type: ignore[attr-defined]  # SQLModel does not type it
STAMPS = ("snoozed_until", "created_at", "updated_at", "first_reply_at", "resolved_at", "last_activity_at")
# How SQLAlchemy stores a UTC datetime in SQLite (a zero offset appears when a driver adapted an aware value).
CANONICAL = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}(?:\+00:00)?", re.ASCII)
PLAIN = ("id", "inbox_id", "status", "assignee_id", "team_id", "priority", "subject", "preview", "unread_count")


def _columns(sqlite: bool) -> tuple[Any, ...]:
    """What a page row holds, built once per kind of database (statements are rebuilt per request, so the
    reusable parts are made here, not there)."""
    columns: list[Any] = [TABLE.c[name] for name in PLAIN]
    columns += [type_coerce(TABLE.c[name], String).label(name) if sqlite else TABLE.c[name] for name in STAMPS]
    columns += [
        col(Contact.id).label("contact_id"),
        col(Contact.name).label("contact_name"),
        col(Contact.email).label("contact_email"),
    ]
    # The conversation's label names as JSON text, correlated to the page's row. Both databases evaluate
    # it for the rows the page returns, after the ordered LIMIT (the page is read in index order; where
    # a sort is needed, PostgreSQL postpones subplans past it).
    names = func.json_group_array(Label.name) if sqlite else func.json_agg(Label.name)
    labels = (
        select(type_coerce(names, String))
        .select_from(ConversationLabel)
        .join(Label, col(Label.id) == ConversationLabel.label_id)
        .where(col(ConversationLabel.conversation_id) == TABLE.c.id)
        .scalar_subquery()
        .label("labels")
    )
    return (*columns, labels)


COLUMNS = {True: _columns(sqlite=True), False: _columns(sqlite=False)}


def page_statement(page: Sequence[ColumnElement[bool]], order: Sequence[Any], limit: int, dialect: Dialect) -> Any:
    """The first `limit` conversations matching `page` in `order`, with contact and label names.

    On SQLite the timestamps come back as the stored text (see `Stamps`)."""
    return (
        select(*COLUMNS[dialect.name == "sqlite"])
        .join_from(Conversation, Contact, col(Contact.id) == Conversation.contact_id)
        .where(*page)
        .order_by(*order)
        .limit(limit)
    )


class Stamps:
    """Timestamps of page rows as API strings (`inbox.clock.iso`), and as datetimes for cursors."""

    def __init__(self, dialect: Dialect) -> None:
        self.raw = dialect.name == "sqlite"
        # The column type's own result processing (text → aware UTC datetime), for the uncommon forms.
        column_type = TABLE.c.created_at.type.dialect_impl(dialect)
        self._parse: Callable[[Any], Any] | None = column_type.result_processor(dialect, None)

    def datetime(self, value: Any) -> datetime:
        if self.raw and isinstance(value, str) and self._parse is not None:
            value = self._parse(value)
        assert isinstance(value, datetime)
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

    def text(self, value: Any) -> str | None:
        if value is None:
            return None
        if self.raw and isinstance(value, str) and CANONICAL.fullmatch(value):
            # 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC, as SQLAlchemy stores it) → 'YYYY-MM-DDTHH:MM:SS.fffZ'
            return f"{value[:10]}T{value[11:23]}Z"
        return iso(self.datetime(value))


def label_names(value: Any) -> list[str]:
    """The aggregated label names of a row, sorted as `inbox.read.views.conversation` sorts them."""
    if value is None or value == "[]":  # no labels (PostgreSQL's json_agg over no rows is NULL)
        return []
    names = json.loads(value) if isinstance(value, str) else value
    return sorted(str(name) for name in names)


def conversation(row: Row[Any], stamps: Stamps) -> dict[str, Any]:
    """The JSON of one page row: exactly `inbox.read.views.conversation` of the same conversation."""
    stamp = stamps.text
    return {
        "id": row.id,
        "number": row.id,
        "inbox_id": row.inbox_id,
        "contact": {"id": row.contact_id, "name": row.contact_name, "email": row.contact_email},
        "status": row.status,
        "assignee_id": row.assignee_id,
        "team_id": row.team_id,
        "priority": row.priority,
        "subject": row.subject,
        "preview": row.preview,
        "unread_count": row.unread_count,
        "labels": label_names(row.labels),
        "snoozed_until": stamp(row.snoozed_until),
        "created_at": stamp(row.created_at),
        "updated_at": stamp(row.updated_at),
        "first_reply_at": stamp(row.first_reply_at),
        "resolved_at": stamp(row.resolved_at),
        "last_activity_at": stamp(row.last_activity_at),
    }
