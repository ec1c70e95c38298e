"""InboxService on both databases: idempotent edges, threading into conversations, state changes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from inbox.clock import utcnow
from inbox.errors import Invalid
from inbox.service import ConversationChanges, InboxService
from inbox.store.engine import Store
from inbox.store.models import Message, Outbox
from tests.conftest import Recorder
from tests.factories import inbound, make_agent, make_inbox, make_label


async def count(store: Store, model: type) -> int:
    async with store.session() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_deliver_twice_stores_once(store: Store, service: InboxService, recorder: Recorder) -> None:
    inbox = await make_inbox(store)
    first = await service.deliver(inbound(inbox, "ext-1"))
    second = await service.deliver(inbound(inbox, "ext-1"))
    assert first.created and not second.created
    assert second.message_id == first.message_id
    assert await count(store, Message) == 1
    assert recorder.types() == ["contact.created", "conversation.created", "message.created"]


async def test_same_sender_same_conversation_until_resolved_then_reopens(
    store: Store, service: InboxService, recorder: Recorder
) -> None:
    inbox = await make_inbox(store)
    agent = await make_agent(store, role="admin")
    a = await service.deliver(inbound(inbox, "1"))
    b = await service.deliver(inbound(inbox, "2"))
    assert a.conversation_id == b.conversation_id and a.contact_id == b.contact_id
    await service.update_conversation(a.conversation_id, ConversationChanges(status="resolved"), by=agent)
    recorder.events.clear()
    c = await service.deliver(inbound(inbox, "3"))
    assert c.conversation_id == a.conversation_id
    updated = [e for e in recorder.events if e.type == "conversation.updated"]
    assert updated and updated[0].data["status"] == "open"


async def test_reply_is_idempotent_on_client_id_and_queues_outbox(store: Store, service: InboxService) -> None:
    inbox = await make_inbox(store)
    agent = await make_agent(store, role="admin")
    delivered = await service.deliver(inbound(inbox))
    message, created = await service.reply(delivered.conversation_id, by=agent, body="Hi!", client_id="c-1")
    again, created_again = await service.reply(delivered.conversation_id, by=agent, body="Hi!", client_id="c-1")
    assert created and not created_again
    assert message["id"] == again["id"] and message["status"] == "queued"
    assert await count(store, Outbox) == 1


async def test_note_never_enters_the_outbox(store: Store, service: InboxService) -> None:
    inbox = await make_inbox(store)
    agent = await make_agent(store, role="admin")
    delivered = await service.deliver(inbound(inbox))
    note, _ = await service.add_note(delivered.conversation_id, by=agent, body="internal", client_id=None)
    assert note["kind"] == "note"
    assert await count(store, Outbox) == 0


async def test_assign_records_activity_and_labels_must_exist(
    store: Store, service: InboxService, recorder: Recorder
) -> None:
    inbox = await make_inbox(store)
    bob = await make_agent(store, email="bob@example.test", name="Bob", role="admin")
    await make_label(store, "billing")
    delivered = await service.deliver(inbound(inbox))
    view = await service.update_conversation(
        delivered.conversation_id, ConversationChanges(assignee_id=bob.id, labels=["billing"]), by=bob
    )
    assert view["assignee_id"] == bob.id and view["labels"] == ["billing"]
    activity = [e.data["body"] for e in recorder.events if e.type == "message.created" and e.data["kind"] == "activity"]
    assert activity == ["Self-assigned by Bob"]
    with pytest.raises(Invalid, match="label 'nope' does not exist"):
        await service.update_conversation(delivered.conversation_id, ConversationChanges(labels=["nope"]), by=bob)


async def test_snoozed_conversation_wakes_when_due(store: Store, service: InboxService) -> None:
    inbox = await make_inbox(store)
    bob = await make_agent(store, role="admin")
    delivered = await service.deliver(inbound(inbox))
    with pytest.raises(Invalid, match="snoozed_until"):
        await service.update_conversation(delivered.conversation_id, ConversationChanges(status="snoozed"), by=bob)
    until = utcnow() + timedelta(hours=1)
    view = await service.update_conversation(
        delivered.conversation_id, ConversationChanges(status="snoozed", snoozed_until=until), by=bob
    )
    assert view["status"] == "snoozed"
    assert await service.wake_snoozed() == 0
    async with store.transaction() as tx:
        from inbox.store.models import Conversation

        row = await tx.get(Conversation, delivered.conversation_id)
        assert row is not None
        row.snoozed_until = utcnow() - timedelta(seconds=1)
    assert await service.wake_snoozed() == 1
    assert await service.wake_snoozed() == 0


async def test_merge_moves_identities_and_conversations(store: Store, service: InboxService) -> None:
    inbox = await make_inbox(store)
    a = await service.deliver(inbound(inbox, "1", sender="a"))
    b = await service.deliver(inbound(inbox, "2", sender="b"))
    merged = await service.merge_contacts(b.contact_id, a.contact_id)
    assert len(merged["identities"]) == 2
    again = await service.deliver(inbound(inbox, "3", sender="b"))
    assert again.contact_id == a.contact_id


async def test_pruning_old_events_moves_the_resync_mark(store: Store, service: InboxService) -> None:
    from inbox.realtime import events
    from inbox.store.models import Event

    inbox = await make_inbox(store)
    await service.deliver(inbound(inbox, "1"))
    async with store.transaction() as tx:
        for row in (await tx.execute(select(Event))).scalars():
            row.created_at = utcnow() - timedelta(days=30)
    await service.deliver(inbound(inbox, "2"))
    async with store.transaction() as tx:
        assert await events.prune(tx, retention_days=7) == 3
    async with store.session() as session:
        assert await events.pruned_through(session) == 3
        remaining = await events.after(session, 0)
    assert [event.type for event in remaining] == ["message.created"]
