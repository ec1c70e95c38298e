"""The core's additions for channels (`channels.base.Host`): edits, contact attributes, cursors — on both databases."""

from __future__ import annotations

import asyncio
import dataclasses

from channels.base import Edit, InboundAttachment
from inbox.gateway.host import CoreHost
from inbox.service import InboxService
from inbox.store.engine import Store
from inbox.store.models import Contact
from tests.conftest import Recorder
from tests.factories import inbound, make_inbox


async def test_edit_updates_the_stored_message_and_publishes_once(
    store: Store, service: InboxService, recorder: Recorder
) -> None:
    host = CoreHost(store, service)
    inbox = await make_inbox(store)
    original = inbound(inbox, "m1", text="helo")
    delivered = await service.deliver(original)
    recorder.events.clear()
    changed = dataclasses.replace(original, text="hello", metadata={"source": "edit"})
    result = await host.edit(Edit(changed))
    assert result is not None and result.message_id == delivered.message_id and not result.created
    (event,) = recorder.events
    assert event.type == "message.updated"
    assert event.data["body"] == "hello" and event.data["meta"]["source"] == "edit" and event.data["meta"]["edited_at"]
    assert await host.edit(Edit(changed)) is not None
    assert len(recorder.events) == 1  # same text again: nothing to publish
    assert await host.edit(Edit(inbound(inbox, "never-stored"))) is None


async def test_contact_attributes_merge_remove_and_stay_quiet_when_unchanged(
    store: Store, service: InboxService, recorder: Recorder
) -> None:
    host = CoreHost(store, service)
    inbox = await make_inbox(store)
    message = inbound(inbox)
    delivered = await service.deliver(message)
    recorder.events.clear()
    await host.set_contact_attributes(message.sender, {"plan": "pro", "blocked": "yes"})
    await host.set_contact_attributes(message.sender, {"blocked": None})
    await host.set_contact_attributes(message.sender, {"plan": "pro", "missing": None})
    assert recorder.types() == ["contact.updated", "contact.updated"]
    async with store.session() as session:
        contact = await session.get(Contact, delivered.contact_id)
    assert contact is not None and contact.attributes == {"plan": "pro"}
    unknown = dataclasses.replace(message.sender, value="nobody")
    await host.set_contact_attributes(unknown, {"plan": "free"})  # an unknown identity is ignored
    assert len(recorder.events) == 2


async def test_cursors_round_trip(store: Store, service: InboxService) -> None:
    host = CoreHost(store, service)
    assert await host.load_cursor("telegram:1:42:last_update_id") is None
    await host.save_cursor("telegram:1:42:last_update_id", "100")
    await host.save_cursor("telegram:1:42:last_update_id", "101")
    assert await host.load_cursor("telegram:1:42:last_update_id") == "101"


async def test_a_new_message_comes_back_as_the_thread_stores_it(store: Store, service: InboxService) -> None:
    """`Delivered.message` (what a live channel answers its sender with) is exactly what reading it back
    gives: alone, in a concurrent batch, with files; a duplicate carries none (the channel reads it back)."""
    host = CoreHost(store, service)
    inbox = await make_inbox(store)
    assert inbox.id is not None
    first = dataclasses.replace(
        inbound(inbox, "f1", text="with a file"),
        attachments=[InboundAttachment("a.txt", "text/plain", b"abc")],
    )
    alone = await service.deliver(first)
    batch = await asyncio.gather(*(service.deliver(inbound(inbox, f"b{n}", text=f"n{n}")) for n in range(6)))
    for delivered in (alone, *batch):
        assert delivered.created and delivered.message is not None
        stored = await host.thread(inbox.id, "sender:cust-1", after=delivered.message_id - 1, limit=1)
        assert [delivered.message] == list(stored)
    assert alone.message is not None and alone.message.attachments[0].size == 3
    again = await service.deliver(first)
    assert not again.created and again.message is None and again.message_id == alone.message_id
