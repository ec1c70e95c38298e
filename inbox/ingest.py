"""Group commit of inbound deliveries: the batcher behind `InboxService.deliver` and its set-based write.

Concurrent `deliver()` calls queue here; one writer task per service (so per process) takes whatever is
waiting (no delay when idle, at most `MAX_BATCH`), writes it in ONE transaction, commits, publishes the
events in id order and only then answers each caller. A batch of one takes the per-message path.

Inside a batch the lookups are set-based (one statement each for duplicates, inboxes, identities →
contacts, newest conversations per thread, their labels and contacts); a follow-up from a known contact
to an existing conversation needs no statement of its own — its message row and conversation update go
out with everyone else's in one flush, and all events in one INSERT. The rarer messages (a new contact or
conversation, attachments, a channel-threaded email, a merged contact) take the per-message code inside
the same transaction. Any error in the batch rolls all of it back (nothing was acknowledged) and every
message is then delivered on its own, so one bad message fails alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, func, insert
from sqlalchemy import select as core_select
from sqlmodel import col, select

from channels.base import Delivered, Inbound
from inbox import events, views
from inbox.clock import utcnow
from inbox.errors import NotFound
from inbox.events import EventRecord, EventType
from inbox.inbound import Written, incoming_message, touch_conversation
from inbox.models import Contact, Conversation, ConversationLabel, Identity, Inbox, Label, Message

if TYPE_CHECKING:
    from inbox.service import InboxService

MAX_BATCH = 128
MESSAGE_TABLE: Table = Message.metadata.tables["message"]
MESSAGE_COLUMNS = [column.name for column in MESSAGE_TABLE.columns if column.name != "id"]


@dataclass(slots=True)
class _Job:
    inbound: Inbound
    stored: Sequence[tuple[Any, Any]]
    future: asyncio.Future[Delivered] = field(repr=False)


class DeliveryBatcher:
    """Queues deliveries and writes them in batches from a single writer task."""

    def __init__(self, service: InboxService, *, max_batch: int = MAX_BATCH) -> None:
        self.service = service
        self.max_batch = max_batch
        self._queue: list[_Job] = []
        self._writing = 0
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # batches written (of any size), for tests and benchmarks

    @property
    def queued(self) -> int:
        """Deliveries waiting for the writer (not yet in a transaction)."""
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        """Deliveries accepted and not yet answered: queued plus the batch being written."""
        return len(self._queue) + self._writing

    async def submit(self, inbound: Inbound, stored: Sequence[tuple[Any, Any]]) -> Delivered:
        """Queue one delivery and wait until it is committed (or has failed)."""
        loop = asyncio.get_running_loop()
        job = _Job(inbound, stored, loop.create_future())
        self._queue.append(job)
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._run(), name="deliver-batcher")
        return await job.future

    async def _run(self) -> None:
        while self._queue:
            batch = [job for job in self._queue[: self.max_batch] if not job.future.done()]
            del self._queue[: self.max_batch]
            if not batch:
                continue  # every caller gave up before its turn: nothing to write
            self._writing = len(batch)
            try:
                await self._write(batch)
            except BaseException as error:  # a bug or cancellation: no caller may wait forever
                for job in batch:
                    _answer(job, error)
                if isinstance(error, asyncio.CancelledError):
                    for job in self._queue:
                        _answer(job, error)
                    self._queue.clear()
                    raise
            finally:
                self._writing = 0
                self.batches += 1

    async def _write(self, batch: list[_Job]) -> None:
        service = self.service
        if len(batch) == 1:
            await _one(service, batch[0])
            return
        try:
            results, records = await write_batch(service, batch)
        except Exception:
            # Rolled back, so nothing of it was stored or acknowledged: each message on its own now.
            for job in batch:
                await _one(service, job)
            return
        await service.publish(records)
        for job, result in zip(batch, results, strict=True):
            _answer(job, result)


async def _one(service: InboxService, job: _Job) -> None:
    try:
        result: Delivered | BaseException = await service.deliver_one(job.inbound, job.stored)
    except Exception as error:
        result = error
    _answer(job, result)


def _answer(job: _Job, result: Delivered | BaseException) -> None:
    if job.future.done():
        return
    if isinstance(result, BaseException):
        job.future.set_exception(result)
    else:
        job.future.set_result(result)


async def write_batch(
    service: InboxService, batch: Sequence[_Job]
) -> tuple[list[Delivered | BaseException], list[EventRecord]]:
    """Write a batch in one transaction; answers each job's result (in order) and the committed events."""
    now = utcnow()
    inbounds = [job.inbound for job in batch]
    inbox_ids = {item.inbox_id for item in inbounds}
    results: list[Delivered | BaseException | None] = [None] * len(batch)
    async with service.store.transaction() as tx:
        # Messages already stored (a channel's retry), with their conversation's contact.
        rows = await tx.execute(
            core_select(
                col(Message.id),
                col(Message.inbox_id),
                col(Message.external_id),
                col(Message.conversation_id),
                col(Conversation.contact_id),
            )
            .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
            .where(
                col(Message.inbox_id).in_(inbox_ids),
                col(Message.external_id).in_({item.external_id for item in inbounds}),
            )
        )
        stored: dict[tuple[int, str | None], Delivered | BaseException] = {
            (inbox_id, external_id): Delivered(int(message_id or 0), conversation_id, contact_id, False)
            for message_id, inbox_id, external_id, conversation_id, contact_id in rows
        }
        known_inboxes = set((await tx.execute(select(Inbox.id).where(col(Inbox.id).in_(inbox_ids)))).scalars())
        # Contacts by the senders' identities (ORM rows: later statements of this session reuse them).
        senders = {(str(item.sender.kind), item.sender.value) for item in inbounds}
        identities = await tx.execute(
            select(Identity.kind, Identity.value, Contact)
            .join(Contact, col(Contact.id) == col(Identity.contact_id))
            .where(
                col(Identity.kind).in_({kind for kind, _ in senders}),
                col(Identity.value).in_({value for _, value in senders}),
            )
        )
        by_identity: dict[tuple[str, str], Contact] = {(kind, value): contact for kind, value, contact in identities}
        contacts = {row.id: row for row in by_identity.values()}
        # The newest conversation of each thread, its labels and its contact.
        newest = (
            select(func.max(Conversation.id))
            .where(
                col(Conversation.inbox_id).in_(inbox_ids),
                col(Conversation.thread_key).in_({item.thread_key for item in inbounds}),
            )
            .group_by(col(Conversation.inbox_id), col(Conversation.thread_key))
        )
        found = list((await tx.execute(select(Conversation).where(col(Conversation.id).in_(newest)))).scalars())
        by_thread = {(row.inbox_id, row.thread_key): row for row in found}
        labels: dict[int | None, list[str]] = {row.id: [] for row in found}
        if found:
            for conversation_id, name in await tx.execute(
                select(ConversationLabel.conversation_id, Label.name)
                .join(Label, col(Label.id) == col(ConversationLabel.label_id))
                .where(col(ConversationLabel.conversation_id).in_(labels))
            ):
                labels[conversation_id].append(name)
        missing = {row.contact_id for row in found} - set(contacts)
        if missing:
            for row in (await tx.execute(select(Contact).where(col(Contact.id).in_(missing)))).scalars():
                contacts[row.id] = row

        written: list[tuple[int, Written]] = []
        unsaved: list[Message] = []  # fast messages not yet inserted
        first: dict[tuple[int, str | None], int] = {}
        for index, job in enumerate(batch):
            item = job.inbound
            seen = (item.inbox_id, item.external_id)
            if seen in stored or seen in first:
                continue  # answered below, from the stored row or the first copy in this batch
            first[seen] = index
            if item.inbox_id not in known_inboxes:
                stored[seen] = results[index] = NotFound(f"inbox {item.inbox_id} not found")
                continue
            sender = (str(item.sender.kind), item.sender.value)
            contact = by_identity.get(sender)
            conversation = by_thread.get((item.inbox_id, item.thread_key))
            if (
                contact is not None
                and contact.merged_into_id is None
                and conversation is not None
                and conversation.contact_id in contacts
                and not job.stored
                and item.conversation_id is None
            ):
                outcome = _follow_up(item, contact, conversation, contacts, labels, now)
                unsaved.append(outcome.message)
                written.append((index, outcome))
                continue
            # The per-message code, after the fast messages before it (message ids follow arrival).
            await _insert_messages(tx, unsaved)
            slow = await service.deliver_in(tx, item, job.stored, now)
            if isinstance(slow, Delivered):
                stored[seen] = results[index] = slow
                continue
            by_identity[sender] = slow.contact
            contacts[slow.contact.id] = slow.contact
            landed = slow.conversation
            newest_row = by_thread.get((landed.inbox_id, landed.thread_key))
            if newest_row is None or (newest_row.id or 0) < (landed.id or 0):
                by_thread[(landed.inbox_id, landed.thread_key)] = landed
                labels.setdefault(landed.id, [])
            written.append((index, slow))
        await _insert_messages(tx, unsaved)
        await tx.flush()  # the conversations' activity: one executemany UPDATE
        pending = [
            (type_, data, batch[index].inbound.inbox_id, outcome.conversation.id)
            for index, outcome in written
            for type_, data in outcome.pending()
        ]
        await service.store.lock_event_log(tx)
        records = [EventRecord.of(row) for row in await events.append_many(tx, pending)]
    for index, outcome in written:
        results[index] = outcome.delivered()
        item = batch[index].inbound
        stored[(item.inbox_id, item.external_id)] = outcome.delivered()
    answers: list[Delivered | BaseException] = []
    for index, job in enumerate(batch):
        result = results[index]
        if result is None:
            earlier = stored[(job.inbound.inbox_id, job.inbound.external_id)]
            result = _again(earlier) if isinstance(earlier, Delivered) else earlier
        answers.append(result)
    return answers, records


def _again(delivered: Delivered) -> Delivered:
    """The answer to a second copy of a message: where the first landed, not new."""
    return Delivered(delivered.message_id, delivered.conversation_id, delivered.contact_id, False)


async def _insert_messages(tx: Any, messages: list[Message]) -> None:
    """INSERT the fast path's messages with one multi-row statement; their ids come back by external id."""
    if not messages:
        return
    values = [{name: getattr(message, name) for name in MESSAGE_COLUMNS} for message in messages]
    returned = await tx.execute(
        insert(MESSAGE_TABLE).returning(MESSAGE_TABLE.c.id, MESSAGE_TABLE.c.inbox_id, MESSAGE_TABLE.c.external_id),
        values,
    )
    ids = {(inbox_id, external_id): message_id for message_id, inbox_id, external_id in returned}
    for message in messages:
        message.id = ids[(message.inbox_id, message.external_id)]
    messages.clear()


def _follow_up(
    item: Inbound,
    contact: Contact,
    conversation: Conversation,
    contacts: dict[int | None, Contact],
    labels: dict[int | None, list[str]],
    now: Any,
) -> Written:
    """A message from a known contact to an existing conversation: no statement of its own (its row is
    inserted with the others', the conversation's activity goes out in the batch's flush)."""
    if item.sender.name and not contact.name:
        contact.name = item.sender.name
    reopened = touch_conversation(conversation, item, now)
    message = incoming_message(item, contact, conversation, now)
    view = views.conversation(conversation, contacts.get(conversation.contact_id), labels.get(conversation.id, []))
    before: list[tuple[EventType, dict[str, Any]]] = []
    if reopened:
        before.append((EventType.CONVERSATION_UPDATED, {**view, "changes": ["status"]}))
    return Written(message, contact, conversation, view, before, [])
