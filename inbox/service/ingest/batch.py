"""The set-based write of one batch of inbound messages (see `inbox.service.ingest.batcher` for the batcher).

One transaction; a constant number of statements per batch: one each for duplicates, inboxes, identities →
contacts, the newest conversation of each thread, their labels and contacts; one multi-row INSERT each for
the contacts, identities and conversations the batch opens; one for the messages; one executemany UPDATE
of the conversations' activity; one INSERT of all events. A message with
attachments, a channel-threaded email, a verified email address (it may join an existing contact) or a
merged contact takes the per-message code (`InboxService.deliver_in`) inside the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import BindParameter, String, Table, bindparam, func, insert, type_coerce
from sqlalchemy import select as core_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import col, select

from channels.base import Delivered, Inbound
from inbox.clock import utcnow
from inbox.errors import NotFound
from inbox.read import views
from inbox.read.listing import label_names
from inbox.realtime import events
from inbox.realtime.events import EventRecord, EventType
from inbox.service.rows import Written, incoming_message, opened_conversation, touch_conversation
from inbox.store.engine import insert_ids
from inbox.store.models import Contact, Conversation, ConversationLabel, Identity, Inbox, Label, Message, key

if TYPE_CHECKING:
    from inbox.service import InboxService

TABLES = Message.metadata.tables
MESSAGE_TABLE: Table = TABLES["message"]
CONTACT_TABLE: Table = TABLES["contact"]
IDENTITY_TABLE: Table = TABLES["identity"]
CONVERSATION_TABLE: Table = TABLES["conversation"]

Seen = tuple[int, str | None]  # (inbox_id, external_id)
Sender = tuple[str, str]  # (identity kind, value)
Thread = tuple[int, str]  # (inbox_id, thread_key)


class Job(Protocol):
    @property
    def inbound(self) -> Inbound: ...
    @property
    def stored(self) -> Sequence[tuple[Any, Any]]: ...


@dataclass
class _Batch:
    """What the batch's lookups found, kept current as its messages are written."""

    stored: dict[Seen, Delivered | BaseException]
    inboxes: set[int]
    by_identity: dict[Sender, Contact]
    by_thread: dict[Thread, Conversation]
    contacts: dict[int | None, Contact]
    labels: dict[int | None, list[str]]
    new_contacts: set[int | None] = field(default_factory=set)  # opened here; announced by their first message
    new_conversations: set[int | None] = field(default_factory=set)


def _sender(item: Inbound) -> Sender:
    return str(item.sender.kind), item.sender.value


def _thread(item: Inbound) -> Thread:
    return item.inbox_id, item.thread_key


def _fast(job: Job, contact: Contact | None) -> bool:
    """Whether this message can be written set-based (the rest take the per-message code)."""
    item = job.inbound
    if job.stored or item.conversation_id is not None:
        return False
    if contact is None:
        return not (item.sender.email and item.sender.verified)  # a verified email may join an existing contact
    return contact.merged_into_id is None


async def write_batch(
    service: InboxService, batch: Sequence[Job]
) -> tuple[list[Delivered | BaseException], list[EventRecord]]:
    """Write a batch in one transaction; answers each job's result (in order) and the committed events."""
    now = utcnow()
    results: list[Delivered | BaseException | None] = [None] * len(batch)
    async with service.store.transaction() as tx:
        found = await _look_up(tx, [job.inbound for job in batch])
        await _open(tx, batch, found, now)
        written: list[tuple[int, Written]] = []
        unsaved: list[Message] = []  # fast messages not yet inserted
        first: dict[Seen, int] = {}
        for index, job in enumerate(batch):
            item = job.inbound
            seen = (item.inbox_id, item.external_id)
            if seen in found.stored or seen in first:
                continue  # answered below, from the stored row or the first copy in this batch
            first[seen] = index
            if item.inbox_id not in found.inboxes:
                found.stored[seen] = results[index] = NotFound(f"inbox {item.inbox_id} not found")
                continue
            contact = found.by_identity.get(_sender(item))
            conversation = found.by_thread.get(_thread(item))
            if contact is not None and conversation is not None and _fast(job, contact):
                outcome = _follow_up(item, contact, conversation, found, now)
                unsaved.append(outcome.message)
                written.append((index, outcome))
                continue
            # The per-message code, after the fast messages before it (message ids follow arrival).
            await _insert_messages(tx, unsaved)
            slow = await service.deliver_in(tx, item, job.stored, now)
            if isinstance(slow, Delivered):
                found.stored[seen] = results[index] = slow
                continue
            found.by_identity[_sender(item)] = slow.contact
            found.contacts[slow.contact.id] = slow.contact
            landed = slow.conversation
            newest = found.by_thread.get((landed.inbox_id, landed.thread_key))
            if newest is None or (newest.id or 0) < (landed.id or 0):
                found.by_thread[(landed.inbox_id, landed.thread_key)] = landed
                found.labels.setdefault(landed.id, [])
            written.append((index, slow))
        await _insert_messages(tx, unsaved)
        await tx.flush()  # the conversations' activity: one executemany UPDATE
        pending = [
            (type_, data, outcome.conversation.inbox_id, outcome.conversation.id)
            for index, outcome in written
            for type_, data in outcome.pending()
        ]
        records = await events.append_many(await tx.connection(), pending)  # after the flush: Core is enough
    for index, outcome in written:
        item = batch[index].inbound
        found.stored[(item.inbox_id, item.external_id)] = results[index] = outcome.delivered(service.blobs)
    answers: list[Delivered | BaseException] = []
    for index, job in enumerate(batch):
        result = results[index]
        if result is None:
            earlier = found.stored[(job.inbound.inbox_id, job.inbound.external_id)]
            result = _again(earlier) if isinstance(earlier, Delivered) else earlier
        answers.append(result)
    return answers, records


# The look-up statements, built once (building and keying a statement per batch cost more than running it
# for small batches); the sets of values go in as expanding parameters.
_INBOX_IDS: BindParameter[int] = bindparam("inbox_ids", expanding=True)
_STORED = (
    core_select(
        col(Message.id),
        col(Message.inbox_id),
        col(Message.external_id),
        col(Message.conversation_id),
        col(Conversation.contact_id),
    )
    .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
    .where(
        col(Message.inbox_id).in_(_INBOX_IDS),
        col(Message.external_id).in_(bindparam("external_ids", expanding=True)),
    )
)
_INBOXES = select(Inbox.id).where(col(Inbox.id).in_(_INBOX_IDS))
_BY_IDENTITY = (
    select(Identity.kind, Identity.value, Contact)
    .join(Contact, col(Contact.id) == col(Identity.contact_id))
    .where(
        col(Identity.kind).in_(bindparam("kinds", expanding=True)),
        col(Identity.value).in_(bindparam("values", expanding=True)),
    )
)


def _newest(sqlite: bool) -> Any:
    """The newest conversation of each thread, with its label names as JSON text (a correlated subquery,
    evaluated for the rows found only): one statement instead of two."""
    names = func.json_group_array(Label.name) if sqlite else func.json_agg(Label.name)
    labels = (
        core_select(type_coerce(names, String))
        .select_from(ConversationLabel)
        .join(Label, col(Label.id) == col(ConversationLabel.label_id))
        .where(col(ConversationLabel.conversation_id) == col(Conversation.id))
        .scalar_subquery()
    )
    newest = (
        select(func.max(Conversation.id))
        .where(
            col(Conversation.inbox_id).in_(_INBOX_IDS),
            col(Conversation.thread_key).in_(bindparam("thread_keys", expanding=True)),
        )
        .group_by(col(Conversation.inbox_id), col(Conversation.thread_key))
    )
    return select(Conversation, labels).where(col(Conversation.id).in_(newest))


_NEWEST = {True: _newest(sqlite=True), False: _newest(sqlite=False)}
_CONTACTS = select(Contact).where(col(Contact.id).in_(bindparam("contact_ids", expanding=True)))


async def _look_up(tx: AsyncSession, inbounds: list[Inbound]) -> _Batch:
    inbox_ids = list({item.inbox_id for item in inbounds})
    core = await tx.connection()  # plain rows need none of the ORM's per-statement work
    # Messages already stored (a channel's retry), with their conversation's contact.
    rows = await core.execute(
        _STORED, {"inbox_ids": inbox_ids, "external_ids": list({item.external_id for item in inbounds})}
    )
    stored: dict[Seen, Delivered | BaseException] = {
        (inbox_id, external_id): Delivered(int(message_id or 0), conversation_id, contact_id, False)
        for message_id, inbox_id, external_id, conversation_id, contact_id in rows
    }
    inboxes = set((await core.execute(_INBOXES, {"inbox_ids": inbox_ids})).scalars())
    # Contacts by the senders' identities (ORM rows: later statements of this session reuse them).
    senders = {_sender(item) for item in inbounds}
    identities = await tx.execute(
        _BY_IDENTITY, {"kinds": list({kind for kind, _ in senders}), "values": list({value for _, value in senders})}
    )
    by_identity: dict[Sender, Contact] = {(kind, value): contact for kind, value, contact in identities}
    contacts = {row.id: row for row in by_identity.values()}
    # The newest conversation of each thread, its labels and its contact.
    threads = list({item.thread_key for item in inbounds})
    found: list[Conversation] = []
    labels: dict[int | None, list[str]] = {}
    newest = _NEWEST[core.dialect.name == "sqlite"]
    for row, names in await tx.execute(newest, {"inbox_ids": inbox_ids, "thread_keys": threads}):
        found.append(row)
        labels[row.id] = label_names(names)
    missing = {row.contact_id for row in found} - set(contacts)
    if missing:
        for row in (await tx.execute(_CONTACTS, {"contact_ids": list(missing)})).scalars():
            contacts[row.id] = row
    by_thread = {(row.inbox_id, row.thread_key): row for row in found}
    return _Batch(stored, inboxes, by_identity, by_thread, contacts, labels)


async def _open(tx: AsyncSession, batch: Sequence[Job], found: _Batch, now: datetime) -> None:
    """Insert, set-based, the contacts (with identities) and conversations this batch's messages open.

    Senders and threads that an earlier message of the batch sends down the per-message path are left to
    it, so what a customer's messages create and announce follows their order.
    """
    blocked: set[Sender | Thread] = set()
    new_senders: dict[Sender, Inbound] = {}
    new_threads: dict[Thread, Inbound] = {}
    seen: set[Seen] = set()
    for job in batch:
        item = job.inbound
        if (item.inbox_id, item.external_id) in found.stored or item.inbox_id not in found.inboxes:
            continue
        if (item.inbox_id, item.external_id) in seen:
            continue
        seen.add((item.inbox_id, item.external_id))
        sender, thread = _sender(item), _thread(item)
        contact = found.by_identity.get(sender)
        if not _fast(job, contact) or sender in blocked or thread in blocked:
            blocked.update((sender, thread))
            continue
        if contact is None:
            new_senders.setdefault(sender, item)
        if thread not in found.by_thread:
            new_threads.setdefault(thread, item)
    if new_senders:
        rows = [
            Contact(name=item.sender.name, email=item.sender.email.lower() if item.sender.email else None)
            for item in new_senders.values()
        ]
        for row, contact_id in zip(rows, await _insert(tx, CONTACT_TABLE, rows), strict=True):
            row.id = contact_id
            _attach(tx, row)
            found.contacts[contact_id] = row
            found.new_contacts.add(contact_id)
        for sender, row in zip(new_senders, rows, strict=True):
            found.by_identity[sender] = row
        identities = [
            Identity(
                contact_id=key(found.by_identity[sender]),
                kind=sender[0],
                value=sender[1],
                name=item.sender.name,
                verified=item.sender.verified,
            )
            for sender, item in new_senders.items()
        ]
        await tx.execute(insert(IDENTITY_TABLE), [_values(IDENTITY_TABLE, row) for row in identities])
    if new_threads:
        # Inserted as their first message leaves them (that message does not touch them again).
        opened = [
            opened_conversation(item, key(found.by_identity[_sender(item)]), now) for item in new_threads.values()
        ]
        returned = await tx.execute(
            insert(CONVERSATION_TABLE).returning(
                CONVERSATION_TABLE.c.id, CONVERSATION_TABLE.c.inbox_id, CONVERSATION_TABLE.c.thread_key
            ),
            [_values(CONVERSATION_TABLE, row) for row in opened],
        )
        ids = {(inbox_id, thread_key): conversation_id for conversation_id, inbox_id, thread_key in returned}
        for conversation in opened:
            conversation.id = ids[(conversation.inbox_id, conversation.thread_key)]
            _attach(tx, conversation)
            found.by_thread[(conversation.inbox_id, conversation.thread_key)] = conversation
            found.labels[conversation.id] = []
            found.new_conversations.add(conversation.id)


def _values(table: Table, row: Any) -> dict[str, Any]:
    return {column.name: getattr(row, column.name) for column in table.columns if column.name != "id"}


async def _insert(tx: AsyncSession, table: Table, rows: Sequence[Any]) -> list[int]:
    """One multi-row INSERT; the new ids in the order of `rows` (`inbox.store.engine.insert_ids`)."""
    return await insert_ids(await tx.connection(), table, [_values(table, row) for row in rows])


def _attach(tx: AsyncSession, row: Any) -> None:
    """Make a row inserted with Core a persistent member of the session (later changes become UPDATEs)."""
    make_transient_to_detached(row)
    tx.add(row)


async def _insert_messages(tx: AsyncSession, messages: list[Message]) -> None:
    """INSERT the fast path's messages with one multi-row statement; their ids come back by external id."""
    if not messages:
        return
    await tx.flush()  # what the ORM holds goes first (a slow-path message before these), then plain Core
    core = await tx.connection()
    returned = await core.execute(
        insert(MESSAGE_TABLE).returning(MESSAGE_TABLE.c.id, MESSAGE_TABLE.c.inbox_id, MESSAGE_TABLE.c.external_id),
        [_values(MESSAGE_TABLE, message) for message in messages],
    )
    ids = {(inbox_id, external_id): message_id for message_id, inbox_id, external_id in returned}
    for message in messages:
        message.id = ids[(message.inbox_id, message.external_id)]
    messages.clear()


def _follow_up(item: Inbound, contact: Contact, conversation: Conversation, found: _Batch, now: datetime) -> Written:
    """A message whose contact and conversation are known (or were opened by `_open`): no statement of its
    own (its row is inserted with the others', the conversation's activity goes out in the batch's flush)."""
    before: list[tuple[EventType, dict[str, Any]]] = []
    if contact.id in found.new_contacts:
        found.new_contacts.discard(contact.id)
        before.append((EventType.CONTACT_CREATED, views.contact(contact)))
    elif item.sender.name and not contact.name:
        contact.name = item.sender.name
    opened = conversation.id in found.new_conversations
    reopened = False
    if opened:
        found.new_conversations.discard(conversation.id)
    else:
        reopened = touch_conversation(conversation, item, now)
    message = incoming_message(item, contact, conversation, now)
    view = views.conversation(
        conversation, found.contacts.get(conversation.contact_id), found.labels.get(conversation.id, [])
    )
    if opened:
        before.append((EventType.CONVERSATION_CREATED, view))
    elif reopened:
        before.append((EventType.CONVERSATION_UPDATED, {**view, "changes": ["status"]}))
    return Written(message, contact, conversation, view, before, [])


def _again(delivered: Delivered) -> Delivered:
    """The answer to a second copy of a message: where the first landed, not new."""
    return Delivered(delivered.message_id, delivered.conversation_id, delivered.contact_id, False)
