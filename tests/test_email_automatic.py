"""Automatic mail stays out of the agents' way (issue 17 item 4): auto-replies never reopen a conversation nor
raise its unread count, delivery reports about mail we did not send go to quarantine, report parts get names."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from channels.base import InboxInfo
from channels.email import EmailChannel, EmailSettings
from inbox.gateway.host import CoreHost
from inbox.gateway.outbox import inbox_info
from inbox.service import ConversationChanges, InboxService
from inbox.store.engine import Store
from inbox.store.models import Conversation
from tests.email_helpers import email_inbox, messages, raw_mail
from tests.factories import inbound, make_agent, make_inbox

DATA = Path(__file__).resolve().parent / "data" / "email"
OOO = (DATA / "auto_submitted_ooo.eml").read_bytes()


def channel_for(store: Store, service: InboxService) -> EmailChannel:
    return EmailChannel(CoreHost(store, service), EmailSettings())


async def conversation(store: Store, conversation_id: int) -> Conversation:
    async with store.session() as session:
        row = await session.get(Conversation, conversation_id)
    assert row is not None
    return row


async def test_an_out_of_office_reply_does_not_reopen_a_resolved_conversation(
    store: Store, service: InboxService
) -> None:
    inbox = await email_inbox(store)
    info: InboxInfo = inbox_info(inbox)
    channel = channel_for(store, service)
    first = await channel.ingest(info, raw_mail(sender="sam@corp.test", message_id="<q1@corp.test>"))
    assert first is not None
    agent = await make_agent(store, role="admin")
    await service.mark_read(first.conversation_id)
    await service.update_conversation(first.conversation_id, ConversationChanges(status="resolved"), by=agent)
    before = await conversation(store, first.conversation_id)
    ooo = OOO.replace(b"Message-ID: <ooo-1@corp.test>", b"Message-ID: <ooo-1@corp.test>\r\nIn-Reply-To: <q1@corp.test>")
    answer = await channel.ingest(info, ooo)
    assert answer is not None and answer.created and answer.conversation_id == first.conversation_id
    after = await conversation(store, first.conversation_id)
    assert after.status == "resolved" and after.resolved_at is not None
    assert after.unread_count == before.unread_count
    [row] = [m for m in await messages(store, inbox.id) if m.id == answer.message_id]
    assert row.meta["automatic"] == "Auto-Submitted: auto-replied"  # the flag the inbox UI badges
    # A person's answer still reopens it.
    person = await channel.ingest(
        info, raw_mail(sender="sam@corp.test", message_id="<q2@corp.test>", extra="In-Reply-To: <q1@corp.test>\r\n")
    )
    assert person is not None and person.conversation_id == first.conversation_id
    reopened = await conversation(store, first.conversation_id)
    assert reopened.status == "open" and reopened.unread_count == before.unread_count + 1


async def test_automatic_messages_in_one_batch_leave_status_and_unread_alone(
    store: Store, service: InboxService
) -> None:
    inbox = await make_inbox(store)
    agent = await make_agent(store, role="admin")
    opened = await service.deliver(inbound(inbox, "first"))
    await service.update_conversation(opened.conversation_id, ConversationChanges(status="resolved"), by=agent)
    before = await conversation(store, opened.conversation_id)
    automatic = [
        dataclasses.replace(inbound(inbox, f"auto-{i}"), metadata={"automatic": "Auto-Submitted: auto-replied"})
        for i in range(6)
    ]
    answers = await asyncio.gather(*(service.deliver(item) for item in automatic))  # the batched paths too
    assert {answer.conversation_id for answer in answers} == {opened.conversation_id}
    after = await conversation(store, opened.conversation_id)
    assert after.status == "resolved" and after.unread_count == before.unread_count
