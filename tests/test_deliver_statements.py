"""`InboxService.deliver` with fewer statements keeps its results: an unknown inbox still fails cleanly, the
events still carry the conversation's labels and activity, and a follow-up costs a bounded number of statements."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, func, select

from inbox.errors import NotFound
from inbox.service import ConversationChanges, InboxService
from inbox.store.engine import Store
from inbox.store.models import Contact, Conversation, Event, Identity, Inbox, Message
from tests.conftest import Recorder
from tests.factories import inbound, make_agent, make_inbox, make_label


async def count(store: Store, model: type) -> int:
    async with store.session() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_unknown_inbox_is_not_found_and_leaves_nothing(
    store: Store, service: InboxService, recorder: Recorder
) -> None:
    inbox = await make_inbox(store)
    missing = Inbox(id=10_000, name="gone", channel="api")
    with pytest.raises(NotFound, match="inbox 10000 not found"):
        await service.deliver(inbound(missing, "x-1", sender="new-customer"))
    for model in (Contact, Identity, Conversation, Message, Event):
        assert await count(store, model) == 0, model.__name__
    assert recorder.events == []
    # The same sender then writes to a real inbox: a fresh contact, nothing left over from the failure.
    delivered = await service.deliver(inbound(inbox, "x-1", sender="new-customer"))
    assert delivered.created
    assert recorder.types() == ["contact.created", "conversation.created", "message.created"]


async def test_events_carry_activity_and_labels_on_new_and_follow_up(
    store: Store, service: InboxService, recorder: Recorder
) -> None:
    inbox = await make_inbox(store)
    admin = await make_agent(store, role="admin")
    await make_label(store, "vip")
    await make_label(store, 'say "hi", ünïcode')
    first = await service.deliver(inbound(inbox, "1", text="first   words"))
    created = {e.type: e.data for e in recorder.events}
    new_view = created["conversation.created"]
    assert new_view["labels"] == [] and new_view["unread_count"] == 1 and new_view["preview"] == "first words"
    assert new_view["last_activity_at"] == created["message.created"]["created_at"]
    assert created["message.created"]["conversation"] == new_view
    labels = ["vip", 'say "hi", ünïcode']
    await service.update_conversation(first.conversation_id, ConversationChanges(labels=labels), by=admin)
    recorder.events.clear()
    second = await service.deliver(inbound(inbox, "2", text="second"))
    assert second.conversation_id == first.conversation_id and second.contact_id == first.contact_id
    [message] = [e.data for e in recorder.events if e.type == "message.created"]
    view = message["conversation"]
    assert view["labels"] == sorted(labels) and view["unread_count"] == 2 and view["preview"] == "second"
    assert view["last_activity_at"] == message["created_at"]
    async with store.session() as session:
        row = await session.get(Conversation, first.conversation_id)
    assert row is not None and row.unread_count == 2 and row.preview == "second"


async def test_follow_up_statement_count(store: Store, service: InboxService) -> None:
    service.batcher.direct = False  # SQLite's direct path has its own count (tests/test_ingest_direct.py)
    inbox = await make_inbox(store)
    await service.deliver(inbound(inbox, "1"))
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = store.write_engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        await service.deliver(inbound(inbox, "2"))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    # A lone delivery takes the batch path: duplicate check, inbox, contact by identity, newest conversation
    # with its labels, INSERT message, UPDATE conversation, INSERT event (+ BEGIN IMMEDIATE on SQLite;
    # PostgreSQL takes no event-log lock). The per-message path it replaced was 8 on SQLite and cost more CPU.
    assert len(statements) == (8 if store.is_sqlite else 7), statements
