"""The statements of the direct inbound write (`inbox.service.ingest.direct`), built with SQLAlchemy Core from the
models and compiled once per dialect and shape (counts of values): the look-up, the multi-row INSERTs, the
conversations' activity UPDATE, and PostgreSQL's whole-batch statement."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    and_,
    bindparam,
    case,
    column,
    func,
    insert,
    literal_column,
    type_coerce,
    update,
    values,
)
from sqlalchemy import select as core_select
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import ClauseElement

from inbox.realtime.events import EVENT_TABLE
from inbox.store.driver_sql import Prepared, prepare
from inbox.store.models import Message

TABLES = Message.metadata.tables
MESSAGE_TABLE = TABLES["message"]
CONVERSATION_TABLE = TABLES["conversation"]
CONTACT_TABLE = TABLES["contact"]
IDENTITY_TABLE = TABLES["identity"]
# What an incoming message changes on its conversation (`inbox.service.rows.touch_conversation`).
TOUCHED = (
    "status",
    "snoozed_until",
    "resolved_at",
    "last_activity_at",
    "last_incoming_at",
    "updated_at",
    "unread_count",
    "preview",
)
PREPARED: dict[tuple[str, str, int, int], Prepared] = {}


CONTACT_COLUMNS = tuple(CONTACT_TABLE.columns)
CONVERSATION_COLUMNS = tuple(CONVERSATION_TABLE.columns)
CONTACT_NAMES = tuple(column.name for column in CONTACT_COLUMNS)
CONVERSATION_NAMES = tuple(column.name for column in CONVERSATION_COLUMNS)
ITEM_FIELDS = (
    ("idx", Integer),  # the message's place in the batch: rows are paired with messages by it, never by position
    ("inbox_id", Integer),
    ("external_id", String),
    ("kind", String),
    ("value", String),
    ("thread", String),
    ("opens", Integer),  # 1: it may open a contact and conversation here (PostgreSQL takes their ids for it)
)


def _look_up(sqlite: bool, count: int) -> tuple[ClauseElement, list[Any]]:
    """Everything the batch needs to know, in one statement (one round trip on PostgreSQL): for each message,
    its place in the batch, the identity found for its sender (kind and value, to check the pairing), whether
    it is stored already, its sender's contact and its thread's newest conversation with the conversation's
    label names (NULL columns where there is none).

    Rows come ordered by the message's place, and carry it: SQL keeps no order without ORDER BY, and
    PostgreSQL does reorder them (a hash join over the VALUES list filed messages under other customers'
    conversations when they were paired by position)."""
    rows = [tuple(bindparam(f"{name}_{index}", type_=kind) for name, kind in ITEM_FIELDS) for index in range(count)]
    item = values(*(column(name, kind) for name, kind in ITEM_FIELDS), name="item").data(rows).cte("item")
    message, identity, contact, conversation = MESSAGE_TABLE.c, IDENTITY_TABLE.c, CONTACT_TABLE.c, CONVERSATION_TABLE.c
    stored = (
        core_select(func.count())
        .where(message.inbox_id == item.c.inbox_id, message.external_id == item.c.external_id)
        .correlate(item)
        .scalar_subquery()
    )
    latest = CONVERSATION_TABLE.alias("latest").c
    newest = (
        core_select(func.max(latest.id))
        .where(latest.inbox_id == item.c.inbox_id, latest.thread_key == item.c.thread)
        .correlate(item)
        .scalar_subquery()
    )
    label, tagged = TABLES["label"].c, TABLES["conversationlabel"].c
    names = func.json_group_array if sqlite else func.json_agg
    labels = (
        core_select(type_coerce(names(label.name), String))
        .join_from(TABLES["conversationlabel"], TABLES["label"], label.id == tagged.label_id)
        .where(tagged.conversation_id == conversation.id)
        .scalar_subquery()
    )
    # PostgreSQL: the ids of what the batch will insert, taken now (a new contact and conversation only where
    # there is none), so that the batch is then written in one statement.
    nothing: Any = literal_column("0")  # constants in the SQL itself: every parameter is named for `Prepared`
    taken = [] if sqlite else _ids_taken(and_(item.c.opens != nothing, stored == nothing))
    query = (
        core_select(
            item.c.idx, identity.kind, identity.value, stored, *CONTACT_COLUMNS, *CONVERSATION_COLUMNS, labels, *taken
        )
        .select_from(item)
        .outerjoin(IDENTITY_TABLE, and_(identity.kind == item.c.kind, identity.value == item.c.value))
        .outerjoin(CONTACT_TABLE, contact.id == identity.contact_id)
        .outerjoin(CONVERSATION_TABLE, conversation.id == newest)
        .order_by(item.c.idx)
    )
    types = [
        Integer(),
        identity.kind.type,
        identity.value.type,
        Integer(),
        *(column.type for column in CONTACT_COLUMNS),
        *(column.type for column in CONVERSATION_COLUMNS),
    ]
    return query, [*types, String(), *(Integer() for _ in taken)]


def _ids_taken(opens: Any) -> list[Any]:
    """A new contact's and conversation's ids only where one will be opened (so that a batch handed over to
    the general path leaves no gap in them), and the message's."""

    def next_id(table: Any) -> Any:
        return literal_column(f"nextval(pg_get_serial_sequence('{table.name}', 'id'))", Integer)

    return [
        case((and_(opens, IDENTITY_TABLE.c.id.is_(None)), next_id(CONTACT_TABLE)), else_=None),
        case((and_(opens, CONVERSATION_TABLE.c.id.is_(None)), next_id(CONVERSATION_TABLE)), else_=None),
        next_id(MESSAGE_TABLE),
    ]


Shape = tuple[int, int, int, int, int]  # messages, conversations touched, events, new contacts, new conversations


def at_once(shape: Shape) -> tuple[ClauseElement, list[Any]]:
    """PostgreSQL: a whole batch in ONE statement (one round trip, no transaction of its own: a statement is
    atomic). The new contacts, their identities, the new conversations and the messages (all with the ids the
    look-up took) and the conversations' activity go in data-modifying CTEs (foreign keys are checked at the
    end of the statement); then the events, whose INSERT takes their ids itself as every event INSERT does
    (`inbox.realtime.events` relies on that)."""
    messages, conversations, events, new_contacts, new_conversations = shape
    statement: Any = _insert_events(events)[0]
    for table, count, prefix, with_id in (
        (CONTACT_TABLE, new_contacts, "c_", True),
        (IDENTITY_TABLE, new_contacts, "i_", False),
        (CONVERSATION_TABLE, new_conversations, "v_", True),
        (MESSAGE_TABLE, messages, "m_", True),
    ):
        if count:
            inserted, _ = insert_rows(table, count, with_id=with_id, prefix=prefix)
            statement = statement.add_cte(inserted.cte(f"new_{table.name}"))  # type: ignore[attr-defined]
    conversation = CONVERSATION_TABLE.c
    for index in range(conversations):
        touched = (
            update(CONVERSATION_TABLE)
            .where(conversation.id == bindparam(f"u_id_{index}", type_=conversation.id.type))
            .values({name: bindparam(f"u_{name}_{index}", type_=conversation[name].type) for name in TOUCHED})
            .returning(conversation.id)
            .cte(f"touched_{index}")
        )
        statement = statement.add_cte(touched)
    return statement, _insert_events(0)[1]


def insert_rows(table: Any, count: int, *, with_id: bool = False, prefix: str = "") -> tuple[ClauseElement, list[Any]]:
    """A multi-row INSERT of every column (but the id, unless `with_id`), answering the ids; its parameters
    are named `<prefix><column>_<row>`."""
    columns = [column for column in table.columns if with_id or column.name != "id"]
    rows = [
        {column.name: bindparam(f"{prefix}{column.name}_{index}", type_=column.type) for column in columns}
        for index in range(count)
    ]
    return insert(table).values(rows).returning(table.c.id), [table.c.id.type]


def _insert_events(count: int) -> tuple[ClauseElement, list[Any]]:
    """The events' multi-row INSERT, answering each row's id with its type and conversation, by which the ids
    are checked against the batch's events (`inbox.service.ingest.direct._records`)."""
    statement, _ = insert_rows(EVENT_TABLE, count)
    event = EVENT_TABLE.c
    returning: Any = statement
    return returning.returning(event.type, event.conversation_id), [event.id.type, event.type.type, Integer()]


def _touch() -> tuple[ClauseElement, list[Any]]:
    conversation = CONVERSATION_TABLE.c
    values = {name: bindparam(f"new_{name}", type_=conversation[name].type) for name in TOUCHED}
    return update(CONVERSATION_TABLE).where(conversation.id == bindparam("conversation_id")).values(values), []


# name -> (SQLite?, first count, second count) -> (statement, its result types)
BUILDERS: dict[str, Callable[[bool, int, int], tuple[ClauseElement, list[Any]]]] = {
    "look_up": lambda sqlite, count, _: _look_up(sqlite, count),
    "message": lambda _sqlite, count, _: insert_rows(MESSAGE_TABLE, count),
    "contact": lambda _sqlite, count, _: insert_rows(CONTACT_TABLE, count),
    "identity": lambda _sqlite, count, _: insert_rows(IDENTITY_TABLE, count),
    "conversation": lambda _sqlite, count, _: insert_rows(CONVERSATION_TABLE, count),
    "event": lambda _sqlite, count, _: _insert_events(count),
    "touch": lambda _sqlite, _a, _b: _touch(),
}
AT_ONCE: dict[tuple[str, Shape], Prepared] = {}


def prepared_at_once(dialect: Dialect, shape: Shape) -> Prepared:
    """PostgreSQL's whole-batch statement (`at_once`) for this shape, compiled the first time."""
    found = AT_ONCE.get((dialect.name, shape))
    if found is None:
        statement, result_types = at_once(shape)
        found = AT_ONCE[(dialect.name, shape)] = prepare(statement, dialect, result_types)
    return found


def prepared(dialect: Dialect, name: str, first: int = 0, second: int = 0) -> Prepared:
    """The statement `name` for these counts of values, compiled the first time it is asked for."""
    key = (dialect.name, name, first, second)
    found = PREPARED.get(key)
    if found is None:
        statement, result_types = BUILDERS[name](dialect.name == "sqlite", first, second)
        found = PREPARED[key] = prepare(statement, dialect, result_types)
    return found
