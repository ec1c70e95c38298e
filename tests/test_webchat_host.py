"""`CoreHost`'s live-chat methods on both databases: thread history, files, contact updates, signals."""

from __future__ import annotations

import asyncio
from pathlib import Path

from channels.base import Identity, IdentityKind, Inbound, InboundAttachment
from inbox.gateway.host import CoreHost
from inbox.realtime.hub import Hub
from inbox.service import InboxService
from inbox.store.engine import Store
from tests.conftest import Recorder
from tests.factories import add_member, make_agent, make_inbox


def visitor_message(inbox_id: int, number: int, *, thread: str = "visitor:v1", files: int = 0) -> Inbound:
    return Inbound(
        inbox_id=inbox_id,
        external_id=f"{thread}:{number}",
        thread_key=thread,
        sender=Identity(IdentityKind.WEBCHAT, f"{inbox_id}:{thread}"),
        text=f"message {number}",
        attachments=[InboundAttachment(f"f{i}.txt", "text/plain", f"file {i}".encode()) for i in range(files)],
    )


async def test_thread_pages_oldest_first_and_hides_notes(store: Store, service: InboxService) -> None:
    inbox = await make_inbox(store, channel="webchat")
    assert inbox.id is not None
    agent = await make_agent(store, role="admin")
    host = CoreHost(store, service)
    ids = [(await service.deliver(visitor_message(inbox.id, n))).message_id for n in range(5)]
    await service.deliver(visitor_message(inbox.id, 9, thread="visitor:other"))
    conversation_id = (await service.deliver(visitor_message(inbox.id, 0))).conversation_id
    await service.add_note(conversation_id, by=agent, body="secret", client_id="n-1")
    newest = await host.thread(inbox.id, "visitor:v1", after=None, limit=3)
    assert [m.id for m in newest] == ids[2:]
    after = await host.thread(inbox.id, "visitor:v1", after=ids[0], limit=2)
    assert [m.id for m in after] == ids[1:3]
    everything = await host.thread(inbox.id, "visitor:v1", after=None, limit=100)
    assert [m.text for m in everything] == [f"message {n}" for n in range(5)]  # no note, no other visitor
    assert await host.thread(inbox.id, "visitor:nobody", after=None, limit=10) == []


async def test_attachment_by_message_and_index(store: Store, service: InboxService) -> None:
    inbox = await make_inbox(store, channel="webchat")
    other = await make_inbox(store, channel="webchat")
    assert inbox.id is not None and other.id is not None
    host = CoreHost(store, service)
    delivered = await service.deliver(visitor_message(inbox.id, 1, files=2))
    second = await host.attachment(inbox.id, delivered.message_id, 1)
    assert (
        second is not None
        and second.filename == "f1.txt"
        and await asyncio.to_thread(Path(second.path).read_bytes) == b"file 1"
    )
    assert await host.attachment(inbox.id, delivered.message_id, 2) is None
    assert await host.attachment(other.id, delivered.message_id, 0) is None  # not this inbox's message
    assert (await host.thread(inbox.id, "visitor:v1", after=None, limit=1))[0].attachments[0].size == 6


async def test_update_contact_and_signal(store: Store, service: InboxService, recorder: Recorder) -> None:
    inbox = await make_inbox(store, channel="webchat")
    assert inbox.id is not None
    host = CoreHost(store, service)
    sender = Identity(IdentityKind.WEBCHAT, f"{inbox.id}:visitor:v1", name="Carol", email="Carol@Example.test")
    assert await host.update_contact(sender) is False  # no contact until the first message
    await host.signal(inbox.id, "visitor:v1", {"type": "typing", "sender": "contact"})
    assert recorder.ephemeral == []  # no conversation yet: nothing to tell agents
    delivered = await service.deliver(visitor_message(inbox.id, 1))
    assert await host.update_contact(sender) is True
    updated = [e for e in recorder.events if e.type == "contact.updated"]
    assert updated and updated[-1].data["email"] == "carol@example.test" and updated[-1].data["name"] == "Carol"
    await host.signal(inbox.id, "visitor:v1", {"type": "typing", "sender": "contact", "active": True})
    assert recorder.ephemeral[-1] == {
        "type": "typing",
        "sender": "contact",
        "active": True,
        "conversation_id": delivered.conversation_id,
    }


async def test_agents_online_counts_connected_agents_who_may_see_the_inbox(store: Store, service: InboxService) -> None:
    inbox = await make_inbox(store, channel="webchat")
    other = await make_inbox(store, channel="webchat")
    assert inbox.id is not None and other.id is not None
    member = await make_agent(store, email="m@example.test")
    await add_member(store, inbox, member)
    hub = Hub()
    host = CoreHost(store, service, hub)
    assert await host.agents_online(inbox.id) is False
    assert member.id is not None
    subscription = hub.subscribe(member.id, is_admin=False, inbox_ids=frozenset({inbox.id}))
    assert await host.agents_online(inbox.id) is True
    assert await host.agents_online(other.id) is False  # not a member there
    hub.unsubscribe(subscription)
    assert await host.agents_online(inbox.id) is False
