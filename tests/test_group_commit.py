"""Group commit of `InboxService.deliver`: concurrent deliveries share one transaction, yet each message is
stored exactly once, each caller gets its own answer (or its own error), events are published in id order
without gaps, a batch that fails part-way loses nothing, and a batch costs a constant number of statements."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import event, func, select

from channels.base import Delivered, IdentityKind, Inbound, InboundAttachment
from channels.base import Identity as ChannelIdentity
from inbox.errors import NotFound
from inbox.realtime import events
from inbox.service import ConversationChanges, InboxService
from inbox.service.ingest import batch as ingest_batch
from inbox.store.engine import Store
from inbox.store.models import Attachment, Conversation, Event, Identity, Inbox, Message
from tests.conftest import Recorder
from tests.factories import inbound, make_agent, make_inbox, make_label


async def gather(service: InboxService, items: list[Inbound]) -> list[Delivered | BaseException]:
    return list(await asyncio.gather(*(service.deliver(item) for item in items), return_exceptions=True))


class Commits:
    """Counts COMMITs and statements on the write engine."""

    def __init__(self, store: Store) -> None:
        self.engine = store.write_engine.sync_engine
        self.commits = 0
        self.statements: list[str] = []

    def _commit(self, _conn: Any) -> None:
        self.commits += 1

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.statements.append(statement)

    def __enter__(self) -> Commits:
        event.listen(self.engine, "commit", self._commit)
        event.listen(self.engine, "before_cursor_execute", self._statement)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "commit", self._commit)
        event.remove(self.engine, "before_cursor_execute", self._statement)


async def stored_messages(store: Store) -> Counter[str | None]:
    async with store.session() as session:
        rows = await session.execute(select(Message.external_id).where(Message.kind == "incoming"))
        return Counter(rows.scalars())


def assert_gapless(recorder: Recorder, first_id: int) -> None:
    ids = [record.id for record in recorder.events]
    assert ids == list(range(first_id, first_id + len(ids))), ids


async def last_event_id(store: Store) -> int:
    async with store.session() as session:
        return int((await session.execute(select(func.max(Event.id)))).scalar() or 0)


async def test_concurrent_mix_is_stored_once_and_answered_each(
    store: Store, service: InboxService, recorder: Recorder
) -> None:
    inbox = await make_inbox(store)
    admin = await make_agent(store, role="admin")
    await make_label(store, "vip")
    # Existing customers: a labelled conversation, a resolved one (a follow-up reopens it), a plain one.
    labelled = await service.deliver(inbound(inbox, "old-a", sender="a"))
    resolved = await service.deliver(inbound(inbox, "old-b", sender="b"))
    plain = await service.deliver(inbound(inbox, "old-c", sender="c"))
    await service.update_conversation(labelled.conversation_id, ConversationChanges(labels=["vip"]), by=admin)
    await service.update_conversation(resolved.conversation_id, ConversationChanges(status="resolved"), by=admin)
    first_event = await last_event_id(store) + 1
    recorder.events.clear()
    missing = Inbox(id=10_000, name="gone", channel="api")
    items = [
        inbound(inbox, "a-1", sender="a", text="follow-up one"),
        inbound(inbox, "new-1", sender="new"),  # a new customer: contact + conversation
        inbound(inbox, "b-1", sender="b"),  # reopens the resolved conversation
        inbound(inbox, "a-2", sender="a", text="follow-up two"),
        inbound(inbox, "new-2", sender="new"),  # the new customer again, same batch
        inbound(inbox, "a-1", sender="a", text="follow-up one"),  # a duplicate inside the batch
        inbound(inbox, "old-c", sender="c"),  # a duplicate of an earlier batch
        inbound(missing, "lost-1", sender="d"),  # fails: no such inbox
        inbound(inbox, "c-1", sender="c"),
        dataclasses.replace(
            inbound(inbox, "file-1", sender="c"),
            attachments=[InboundAttachment("note.txt", "text/plain", b"hello")],
        ),
        # A new customer whose first message carries a file (per-message code), then a plain one.
        dataclasses.replace(
            inbound(inbox, "f-1", sender="f"), attachments=[InboundAttachment("f.txt", "text/plain", b"f")]
        ),
        inbound(inbox, "f-2", sender="f"),
    ]
    with Commits(store) as seen:
        results = await gather(service, items)
    assert seen.commits < len(items) - 2, seen.commits  # grouped, not one transaction per message

    error = results[7]
    assert isinstance(error, NotFound) and "inbox 10000 not found" in str(error)
    answers = [result for result in results if isinstance(result, Delivered)]
    assert len(answers) == len(items) - 1
    by_external = {item.external_id: result for item, result in zip(items, results, strict=True)}
    assert [result.created for result in answers] == [True] * 5 + [False, False] + [True] * 4
    assert results[5] == dataclasses.replace(by_external["a-1"], created=False)  # type: ignore[arg-type]
    assert results[6] == Delivered(plain.message_id, plain.conversation_id, plain.contact_id, False)
    a1, a2, new1, new2 = (by_external[name] for name in ("a-1", "a-2", "new-1", "new-2"))
    assert isinstance(a1, Delivered) and isinstance(a2, Delivered)
    assert isinstance(new1, Delivered) and isinstance(new2, Delivered)
    assert a1.conversation_id == a2.conversation_id == labelled.conversation_id
    assert new1.conversation_id == new2.conversation_id and new1.contact_id == new2.contact_id
    assert a1.message_id < a2.message_id and new1.message_id < new2.message_id

    counts = await stored_messages(store)
    assert set(counts.values()) == {1}, counts
    assert set(counts) == {"old-a", "old-b", "old-c", "a-1", "a-2", "new-1", "new-2", "b-1", "c-1", "file-1"} | {
        "f-1",
        "f-2",
    }
    async with store.session() as session:
        conversations = {row.id: row for row in (await session.execute(select(Conversation))).scalars()}
        files = list((await session.execute(select(Attachment))).scalars())
    assert conversations[labelled.conversation_id].unread_count == 3
    assert conversations[resolved.conversation_id].status == "open"
    assert conversations[plain.conversation_id].unread_count == 3
    assert conversations[new1.conversation_id].unread_count == 2
    assert sorted(row.message_id for row in files) == sorted(
        by_external[name].message_id  # type: ignore[union-attr]
        for name in ("file-1", "f-1")
    )
    f1, f2 = by_external["f-1"], by_external["f-2"]
    assert isinstance(f1, Delivered) and isinstance(f2, Delivered)
    assert f1.conversation_id == f2.conversation_id  # (f-1 queues after f-2: its file is saved first)

    # Published after commit, in id order, no gaps, each new message once; a conversation opens before
    # its messages; the labelled one's events carry its label; the reopen is announced.
    assert_gapless(recorder, first_event)
    assert await last_event_id(store) == recorder.events[-1].id
    created = [record for record in recorder.events if record.type == "message.created"]
    assert sorted(record.data["external_id"] for record in created) == sorted(
        ["a-1", "a-2", "new-1", "new-2", "b-1", "c-1", "file-1", "f-1", "f-2"]
    )
    order = [(record.type, record.conversation_id) for record in recorder.events]
    for customer in (new1, f1):
        opened = order.index(("conversation.created", customer.conversation_id))
        assert opened < order.index(("message.created", customer.conversation_id))
        [announced] = [
            r for r in recorder.events if r.type == "contact.created" and r.data["id"] == customer.contact_id
        ]
        assert announced.id < recorder.events[opened].id
    assert len([record for record in recorder.events if record.type == "contact.created"]) == 2
    assert ("conversation.updated", resolved.conversation_id) in order
    views = {record.data["external_id"]: record.data["conversation"] for record in created}
    assert views["a-1"]["labels"] == ["vip"] and views["a-1"]["unread_count"] == 2
    assert views["a-2"]["unread_count"] == 3 and views["a-2"]["preview"] == "follow-up two"
    assert views["b-1"]["status"] == "open"
    assert [
        item["filename"] for item in next(r for r in created if r.data["external_id"] == "file-1").data["attachments"]
    ] == ["note.txt"]


async def test_many_producers_across_batches(store: Store, service: InboxService, recorder: Recorder) -> None:
    inbox = await make_inbox(store)
    first_event = await last_event_id(store) + 1

    async def producer(number: int) -> list[Delivered]:
        answers = []
        for round_ in range(6):
            # Each producer re-sends its previous message once (a channel retry across batches).
            external = f"p{number}-{round_ - round_ % 2}"
            answers.append(await service.deliver(inbound(inbox, external, sender=f"s{number % 5}")))
        return answers

    with Commits(store) as seen:
        results = await asyncio.gather(*(producer(number) for number in range(20)))
    assert seen.commits <= 3 * 6 * 2, seen.commits  # a handful of batches per round, not 120 transactions
    for answers in results:
        assert [answer.created for answer in answers] == [True, False] * 3
        assert answers[0].message_id == answers[1].message_id
    counts = await stored_messages(store)
    assert len(counts) == 60 and set(counts.values()) == {1}
    assert_gapless(recorder, first_event)
    assert len([record for record in recorder.events if record.type == "message.created"]) == 60
    async with store.session() as session:
        unread = sorted((await session.execute(select(Conversation.unread_count))).scalars())
        identities = dict((await session.execute(select(Identity.value, Identity.contact_id))).all())
        owners = dict((await session.execute(select(Conversation.id, Conversation.contact_id))).all())
    assert unread == [12] * 5
    # The five customers were opened together (one multi-row INSERT each for contacts and identities):
    # every sender's identity, answers and conversation name the same, distinct contact.
    for number, answers in enumerate(results):
        contact_id = identities[f"{inbox.id}:s{number % 5}"]
        assert {answer.contact_id for answer in answers} == {contact_id}
        assert {owners[answer.conversation_id] for answer in answers} == {contact_id}
    assert len(set(identities.values())) == 5


async def test_a_batch_that_fails_part_way_loses_nothing(
    store: Store, service: InboxService, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.batcher.direct = False  # the general path's crash (SQLite's direct path: tests/test_ingest_direct.py)
    inbox = await make_inbox(store)
    await service.deliver(inbound(inbox, "seed", sender="known"))
    first_event = await last_event_id(store) + 1
    recorder.events.clear()
    calls = 0
    real = events.append_many

    async def crash_once(session: Any, items: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the database went away mid-batch")
        return await real(session, items)

    monkeypatch.setattr(ingest_batch.events, "append_many", crash_once)
    items = [inbound(inbox, f"m{number}", sender="known" if number % 2 else f"new{number}") for number in range(8)]
    results = await gather(service, items)
    assert calls >= 1
    assert all(isinstance(result, Delivered) and result.created for result in results), results
    counts = await stored_messages(store)
    assert set(counts.values()) == {1} and len(counts) == 9
    assert_gapless(recorder, first_event)
    assert sorted(record.data["external_id"] for record in recorder.events if record.type == "message.created") == [
        f"m{number}" for number in range(8)
    ]


async def test_the_fallback_fails_only_the_bad_message(
    store: Store, service: InboxService, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = await make_inbox(store)
    await service.deliver(inbound(inbox, "seed", sender="known"))
    real = service.deliver_in

    async def poisoned(tx: Any, item: Inbound, stored: Any, now: Any) -> Any:
        if item.text == "poison":
            raise ValueError("this message cannot be stored")
        return await real(tx, item, stored, now)

    monkeypatch.setattr(service, "deliver_in", poisoned)
    items = [inbound(inbox, f"m{number}", sender=f"new{number}") for number in range(5)]
    # With a file it takes the per-message code inside the batch, which fails; then everyone alone.
    bad = inbound(inbox, "bad", sender="someone", text="poison")
    items.insert(2, dataclasses.replace(bad, attachments=[InboundAttachment("a.txt", "text/plain", b"x")]))
    results = await gather(service, items)
    assert isinstance(results[2], ValueError)
    assert all(isinstance(result, Delivered) and result.created for i, result in enumerate(results) if i != 2), results
    counts = await stored_messages(store)
    assert "bad" not in counts and len(counts) == 6 and set(counts.values()) == {1}


async def test_a_batch_costs_a_constant_number_of_statements(store: Store, service: InboxService) -> None:
    service.batcher.direct = False  # the general path (SQLite's direct path: tests/test_ingest_direct.py)
    inbox = await make_inbox(store)
    senders = [f"s{number}" for number in range(12)]
    counts: dict[str, list[int]] = {"new customers": [], "follow-ups": []}
    for phase, prefix in (("new customers", "first"), ("follow-ups", "again")):
        for size in (4, 12):
            chosen = senders[:size] if phase == "follow-ups" else [f"{size}-{name}" for name in senders[:size]]
            with Commits(store) as seen:
                results = await gather(
                    service, [inbound(inbox, f"{prefix}-{size}-{name}", sender=name) for name in chosen]
                )
            assert all(isinstance(result, Delivered) and result.created for result in results)
            assert seen.commits == 1
            counts[phase].append(len(seen.statements))
        if phase == "new customers":
            await gather(service, [inbound(inbox, f"seed-{name}", sender=name) for name in senders])
    # Both: BEGIN IMMEDIATE (SQLite only; PostgreSQL takes no event-log lock), duplicates, inboxes, contacts
    # by identity, newest conversations, INSERT messages, INSERT events. New customers: + INSERT contacts,
    # identities, conversations. Follow-ups: UPDATE conversations (labels come with the conversations).
    begin = 1 if store.is_sqlite else 0
    assert counts == {"new customers": [9 + begin] * 2, "follow-ups": [7 + begin] * 2}, counts


async def test_merged_contacts_and_verified_emails_in_a_batch(store: Store, service: InboxService) -> None:
    inbox = await make_inbox(store)
    a = await service.deliver(inbound(inbox, "a-1", sender="a"))
    b = await service.deliver(inbound(inbox, "b-1", sender="b"))
    await service.merge_contacts(b.contact_id, a.contact_id)
    assert inbox.id is not None
    email = Inbound(
        inbox_id=inbox.id,
        external_id="e-1",
        thread_key="mail:1",
        sender=ChannelIdentity(IdentityKind.EMAIL, "c@example.test", email="c@example.test", verified=True),
        text="by mail",
    )
    c = await service.deliver(email)
    # The same person on another channel, with the verified address: joins c's contact.
    chat = Inbound(
        inbox_id=inbox.id,
        external_id="t-1",
        thread_key="chat:1",
        sender=ChannelIdentity(IdentityKind.TELEGRAM, "777", name="C", email="C@example.test", verified=True),
        text="by chat",
    )
    with Commits(store) as seen:
        results = await gather(service, [inbound(inbox, "b-2", sender="b"), chat, inbound(inbox, "d-1", sender="d")])
    assert seen.commits == 1  # one batch: the first two take the per-message code inside it
    merged, joined, new = results
    assert isinstance(merged, Delivered) and isinstance(joined, Delivered) and isinstance(new, Delivered)
    assert merged.contact_id == a.contact_id and merged.created
    assert joined.contact_id == c.contact_id and joined.conversation_id != c.conversation_id
    assert new.contact_id not in (a.contact_id, b.contact_id, c.contact_id)
