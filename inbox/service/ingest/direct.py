"""Inbound batches in the common case, written on the driver connection (`inbox.store.driver_sql`) instead of
through SQLAlchemy's sessions: at a few hundred messages/s group-commit batches hold one or two messages and
SQLAlchemy's per-statement work was most of their CPU (a lone delivery on SQLite: 2.9 → 0.84 ms).

It takes plain messages (no attachments, no channel threading, none stored before, no duplicate in the
batch) from known senders into their existing conversations, and from new senders, whose contact,
identity and conversation it opens. Anything else — a resend, a merged contact, a contact that learns its
name, a verified email address (it may join an existing contact), a new sender twice in one batch — is
found by the look-up, before anything is written, and `inbox.service.ingest.batch` writes that batch instead. The
rows and events are the general path's (tested on both databases).

Statements: SQLite, in a BEGIN IMMEDIATE transaction: the look-up, then multi-row INSERTs and one
executemany UPDATE. PostgreSQL, where each statement is a round trip: the look-up (which also takes the new
rows' ids), then the whole batch in one statement (`_at_once`).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Dialect

from channels.base import Delivered, Inbound
from inbox.clock import iso, utcnow
from inbox.read import views
from inbox.read.listing import label_names
from inbox.realtime.events import EventRecord, EventType
from inbox.service.ingest.sql import (
    CONTACT_NAMES,
    CONTACT_TABLE,
    CONVERSATION_NAMES,
    CONVERSATION_TABLE,
    IDENTITY_TABLE,
    ITEM_FIELDS,
    MESSAGE_TABLE,
    TOUCHED,
    prepared,
    prepared_at_once,
)
from inbox.service.rows import Written, incoming_message, opened_conversation, touch_conversation
from inbox.store.driver_sql import Driver, driver_of
from inbox.store.engine import OutOfOrder, consecutive
from inbox.store.models import Contact, Conversation, Identity, key

if TYPE_CHECKING:
    from inbox.service import InboxService
    from inbox.service.ingest.batch import Job

log = logging.getLogger(__name__)
MAX_DIRECT = 16  # larger batches already spread SQLAlchemy's per-statement cost thin


def _plain(job: Job) -> bool:
    item = job.inbound
    return not job.stored and not item.attachments and item.conversation_id is None


async def write_direct(
    service: InboxService, batch: Sequence[Job]
) -> tuple[list[Delivered | BaseException], list[EventRecord]] | None:
    """Write a batch in one transaction; None (nothing written) when it is not the common case."""
    items = [job.inbound for job in batch]
    if (
        len(batch) > MAX_DIRECT
        or not all(_plain(job) for job in batch)
        or len({(item.inbox_id, item.external_id) for item in items}) != len(items)
    ):
        return None
    async with service.store.direct_engine.connect() as connection:
        driver = await driver_of(connection)
        if driver is None:
            return None
        if driver.locks_first:
            await driver.begin()  # SQLite: the one writer's lock, before reading what it will write
        try:
            try:
                written = await _write(_Statements(driver, connection.dialect), items)
            except OutOfOrder:
                log.exception("direct write refused a batch of %d (the general path takes it)", len(items))
                written = None
            if written is None:
                await driver.rollback()
                return None
            await driver.commit()
        except BaseException:
            if driver.broken():  # SQLAlchemy never saw the error: keep the dead connection out of its pool
                await connection.invalidate()
            else:
                await driver.rollback()
            raise
    outcomes, records = written
    return [outcome.delivered(service.blobs) for outcome in outcomes], records


@dataclass(frozen=True, slots=True)
class _Statements:
    """The batch's transaction: statements by name and by the counts of values they take."""

    driver: Driver
    dialect: Dialect

    async def rows(self, name: str, values: dict[str, Any], first: int = 0, second: int = 0) -> list[list[Any]]:
        return await self.driver.rows(prepared(self.dialect, name, first, second), values)

    async def many(self, name: str, values: list[dict[str, Any]]) -> None:
        await self.driver.many(prepared(self.dialect, name), values)

    async def insert(self, table: Any, rows: Sequence[Any]) -> list[int]:
        """One multi-row INSERT; the new ids in the order of `rows` (one statement numbers its rows in order)."""
        values: dict[str, Any] = {}
        for index, row in enumerate(rows):
            values.update(
                {f"{column.name}_{index}": getattr(row, column.name) for column in table.columns if column.name != "id"}
            )
        return consecutive([row[0] for row in await self.rows(table.name, values, len(rows))], len(rows))


def _sender_of(item: Inbound) -> tuple[str, str]:
    return str(item.sender.kind), item.sender.value


async def _write(run: _Statements, items: list[Inbound]) -> tuple[list[Written], list[EventRecord]] | None:
    found = await _look_up_items(run, items)
    if found is None:
        return None  # a resend (or an id shared with another inbox): the general path sorts it out
    contacts, conversations, labels, taken = found
    now = utcnow()
    # Senders and threads seen for the first time get their contact and conversation here: each at most
    # once per batch (a second message from a new sender in the same batch goes the general way).
    new_contacts: dict[tuple[str, str], Contact] = {}
    new_conversations: dict[tuple[int, str], Conversation] = {}
    for index, item in enumerate(items):
        sender, thread = _sender_of(item), (item.inbox_id, item.thread_key)
        contact, conversation = contacts.get(sender), conversations.get(thread)
        if contact is None:
            if sender in new_contacts or conversation is not None or (item.sender.email and item.sender.verified):
                return None  # a verified address may belong to an existing contact: the general path merges
            email = item.sender.email.lower() if item.sender.email else None
            contact_id = taken[index][0] if taken else None  # PostgreSQL: taken by the look-up
            new_contacts[sender] = Contact(
                id=contact_id, name=item.sender.name, email=email, created_at=now, updated_at=now
            )
        elif contact.merged_into_id is not None or (item.sender.name and not contact.name):
            return None  # a merged contact, or one that learns its name: updates of their own
        if conversation is None:
            if thread in new_conversations:
                return None
            # A new contact's id is set once it is inserted (on PostgreSQL it was taken already).
            opener = contact or new_contacts[sender]
            new_conversations[thread] = opened_conversation(item, opener.id or 0, now)
            new_conversations[thread].id = taken[index][1] if taken else None
        elif contact is None or conversation.contact_id != contact.id:
            return None
    new = _NewRows(items, new_contacts, new_conversations, now)
    if not taken:  # SQLite, in the transaction its look-up began
        await _insert_new(run, new)
    outcomes: list[Written] = []
    for item in items:
        sender, thread = _sender_of(item), (item.inbox_id, item.thread_key)
        before: list[tuple[EventType, dict[str, Any]]] = []
        contact = contacts.get(sender)
        if contact is None:
            contact = new_contacts[sender]
            before.append((EventType.CONTACT_CREATED, views.contact(contact)))
        conversation = conversations.get(thread)
        if conversation is None:
            conversation = new_conversations[thread]  # inserted with this message's activity already set
            view = views.conversation(conversation, contact, [])
            before.append((EventType.CONVERSATION_CREATED, view))
        else:
            reopened = touch_conversation(conversation, item, now)
            view = views.conversation(conversation, contact, labels[conversation.id])
            if reopened:
                before.append((EventType.CONVERSATION_UPDATED, {**view, "changes": ["status"]}))
        message = incoming_message(item, contact, conversation, now)
        outcomes.append(Written(message, contact, conversation, view, before, []))
    messages = [outcome.message for outcome in outcomes]
    if taken:
        for message, (_, _, message_id) in zip(messages, taken, strict=True):
            message.id = message_id
        return outcomes, await _write_at_once(run, outcomes, list(conversations.values()), new, now)
    for message, message_id in zip(messages, await run.insert(MESSAGE_TABLE, messages), strict=True):
        message.id = message_id
    if conversations:
        await run.many(
            "touch",
            [
                {"conversation_id": row.id, **{f"new_{name}": getattr(row, name) for name in TOUCHED}}
                for row in conversations.values()
            ],
        )
    pending = [
        (type_, data, outcome.conversation.inbox_id, outcome.conversation.id)
        for outcome in outcomes
        for type_, data in outcome.pending()
    ]
    return outcomes, await _append_events(run, pending, now)


Taken = list[tuple[int | None, int | None, int]]  # PostgreSQL, per message: new contact, new conversation, message
LookedUp = tuple[
    dict[tuple[str, str], Contact], dict[tuple[int, str], Conversation], dict[int | None, list[str]], Taken | None
]


async def _look_up_items(run: _Statements, items: list[Inbound]) -> LookedUp | None:
    """The senders' contacts and the threads' conversations (one object each, however many messages share
    it), and on PostgreSQL the ids taken for what the batch inserts; None when a message is stored already."""
    values: dict[str, Any] = {}
    senders = Counter(_sender_of(item) for item in items)
    threads = Counter((item.inbox_id, item.thread_key) for item in items)
    for index, item in enumerate(items):
        kind, value = _sender_of(item)
        # Never where `_write` hands the batch over whatever it finds: a verified address, a repeated sender.
        opens = not (item.sender.email and item.sender.verified)
        opens = opens and senders[(kind, value)] == 1 and threads[(item.inbox_id, item.thread_key)] == 1
        fields = (index, item.inbox_id, item.external_id, kind, value, item.thread_key, int(opens))
        values.update({f"{name}_{index}": field for (name, _), field in zip(ITEM_FIELDS, fields, strict=True)})
    contacts: dict[tuple[str, str], Contact] = {}
    conversations: dict[tuple[int, str], Conversation] = {}
    labels: dict[int | None, list[str]] = {}
    known: dict[int, Contact] = {}
    width = len(CONTACT_NAMES)
    sqlite = run.dialect.name == "sqlite"
    rows = await run.rows("look_up", values, len(items))
    if len(rows) != len(items):
        raise Mismatch(f"the look-up answered {len(rows)} rows for {len(items)} messages")
    taken: Taken | None = None if sqlite else [(row[-3], row[-2], int(row[-1])) for row in rows]
    for index, item in enumerate(items):
        place, identity_kind, identity_value, stored, *columns = rows[index]
        if stored:
            return None
        if not sqlite:
            columns = columns[:-3]
        contact_columns, conversation_columns, names = columns[:width], columns[width:-1], columns[-1]
        _check_pairing(index, item, place, identity_kind, identity_value, contact_columns, conversation_columns)
        if contact_columns[0] is not None:
            contact = known.get(contact_columns[0])
            if contact is None:
                contact = known[contact_columns[0]] = Contact(**dict(zip(CONTACT_NAMES, contact_columns, strict=True)))
            contacts[_sender_of(item)] = contact
        thread = (item.inbox_id, item.thread_key)
        if conversation_columns[0] is not None and thread not in conversations:
            row = Conversation(**dict(zip(CONVERSATION_NAMES, conversation_columns, strict=True)))
            conversations[thread] = row
            labels[row.id] = label_names(names)
    return contacts, conversations, labels, taken


class Mismatch(OutOfOrder):
    """A look-up row does not belong to the message it was paired with: a bug that must never become a
    misfiled message. The batch is rolled back and handed to the general path."""


_INBOX_AT, _THREAD_AT = CONVERSATION_NAMES.index("inbox_id"), CONVERSATION_NAMES.index("thread_key")


def _check_pairing(
    index: int,
    item: Inbound,
    place: int,
    identity_kind: Any,
    identity_value: Any,
    contact_columns: Sequence[Any],
    conversation_columns: Sequence[Any],
) -> None:
    """Raise `Mismatch` unless the look-up row is this message's: its place, its sender's identity, its thread."""
    if place != index:
        raise Mismatch(f"look-up row {place} paired with message {index}")
    if contact_columns[0] is not None and (str(identity_kind), identity_value) != _sender_of(item):
        raise Mismatch(f"message {index}: the contact found is another sender's")
    if conversation_columns[0] is not None and (
        conversation_columns[_INBOX_AT] != item.inbox_id or conversation_columns[_THREAD_AT] != item.thread_key
    ):
        raise Mismatch(f"message {index}: the conversation found is another thread's")


async def _insert_new(run: _Statements, new: _NewRows) -> None:
    """SQLite: INSERT the batch's new contacts (with their identities), then its new conversations."""
    if new.contacts:
        rows = list(new.contacts.values())
        for contact, contact_id in zip(rows, await run.insert(CONTACT_TABLE, rows), strict=True):
            contact.id = contact_id
        await run.insert(IDENTITY_TABLE, new.identities())
    if new.conversations:
        by_thread = {(item.inbox_id, item.thread_key): item for item in new.items}
        for thread, conversation in new.conversations.items():
            opener = new.contacts.get(_sender_of(by_thread[thread]))
            if opener is not None:
                conversation.contact_id = key(opener)
        opened = list(new.conversations.values())
        for conversation, conversation_id in zip(opened, await run.insert(CONVERSATION_TABLE, opened), strict=True):
            conversation.id = conversation_id


@dataclass(frozen=True, slots=True)
class _NewRows:
    """The contacts (with identities) and conversations a batch opens, with the ids the look-up took."""

    items: list[Inbound]
    contacts: dict[tuple[str, str], Contact]
    conversations: dict[tuple[int, str], Conversation]
    now: datetime

    def identities(self) -> list[Identity]:
        by_sender = {_sender_of(item): item for item in self.items}
        return [
            Identity(
                contact_id=key(contact),
                kind=sender[0],
                value=sender[1],
                name=by_sender[sender].sender.name,
                verified=by_sender[sender].sender.verified,
                created_at=self.now,
            )
            for sender, contact in self.contacts.items()
        ]


async def _write_at_once(
    run: _Statements, outcomes: list[Written], touched: list[Conversation], new: _NewRows, now: datetime
) -> list[EventRecord]:
    """PostgreSQL: the whole batch in one statement (`_at_once`)."""
    pending = [
        (type_, data, outcome.conversation.inbox_id, outcome.conversation.id)
        for outcome in outcomes
        for type_, data in outcome.pending()
    ]
    shape = (len(outcomes), len(touched), len(pending), len(new.contacts), len(new.conversations))
    statement = prepared_at_once(run.dialect, shape)
    values = _event_values(pending, now)
    for prefix, table, rows in (
        ("c_", CONTACT_TABLE, list(new.contacts.values())),
        ("i_", IDENTITY_TABLE, new.identities()),
        ("v_", CONVERSATION_TABLE, list(new.conversations.values())),
        ("m_", MESSAGE_TABLE, [outcome.message for outcome in outcomes]),
    ):
        for index, row in enumerate(rows):
            values.update({f"{prefix}{column.name}_{index}": getattr(row, column.name) for column in table.columns})
    for index, row in enumerate(touched):
        values.update({f"u_{name}_{index}": getattr(row, name) for name in TOUCHED})
        values[f"u_id_{index}"] = row.id
    return _records(await run.driver.rows(statement, values), pending, now)


Pending = Sequence[tuple[EventType, dict[str, Any], int | None, int | None]]


def _event_values(items: Pending, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for index, (type_, data, inbox_id, conversation_id) in enumerate(items):
        values.update(
            {
                f"type_{index}": str(type_),
                f"inbox_id_{index}": inbox_id,
                f"conversation_id_{index}": conversation_id,
                f"payload_{index}": data,
                f"created_at_{index}": now,
            }
        )
    return values


def _records(rows: list[list[Any]], items: Pending, now: datetime) -> list[EventRecord]:
    """The committed events, each item paired with its row by key: the INSERT answers (id, type, conversation)
    for each row; among rows of the same type and conversation the smaller id is the earlier item's (one
    INSERT numbers its rows in the order given). Never by position alone."""
    ids: dict[tuple[str, int | None], deque[int]] = defaultdict(deque)
    for event_id, type_, conversation_id in sorted(rows, key=lambda row: int(row[0])):
        ids[(str(type_), conversation_id)].append(int(event_id))
    created_at = iso(now)
    records: list[EventRecord] = []
    for type_, data, inbox_id, conversation_id in items:
        same = ids.get((str(type_), conversation_id))
        if not same:
            raise OutOfOrder(f"no event row answered for {type_} of conversation {conversation_id}")
        records.append(EventRecord(same.popleft(), str(type_), inbox_id, conversation_id, data, created_at))
    return records


async def _append_events(run: _Statements, items: Pending, now: datetime) -> list[EventRecord]:
    """`inbox.realtime.events.append_many` on the driver connection."""
    rows = await run.rows("event", _event_values(items, now), len(items))
    consecutive([row[0] for row in rows], len(items))
    return _records(rows, items, now)
