"""Automatic mail stays out of the agents' way (issue 17 item 4): auto-replies never reopen a conversation nor
raise its unread count, delivery reports about mail we did not send go to quarantine, report parts get names."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from channels.base import InboxInfo
from channels.email import EmailChannel, EmailSettings
from channels.email.parse import parse_email
from inbox.gateway.host import CoreHost
from inbox.gateway.outbox import inbox_info
from inbox.service import ConversationChanges, InboxService
from inbox.store.engine import Store
from inbox.store.models import Conversation
from tests.email_helpers import conversations, email_inbox, messages, quarantined, raw_mail
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


async def test_a_delivery_report_about_mail_we_did_not_send_is_quarantined_not_a_conversation(
    store: Store, service: InboxService
) -> None:
    inbox = await email_inbox(store)
    assert inbox.id is not None
    channel = channel_for(store, service)
    for raw in [(DATA / "dsn_failed.eml").read_bytes(), (DATA / "dsn_delayed_headers_only.eml").read_bytes()]:
        assert await channel.ingest(inbox_info(inbox), raw) is None
    assert await conversations(store, inbox.id) == []  # no unread conversation per report
    rows = await quarantined(store, inbox.id)
    assert len(rows) == 2
    assert all(row.reason.startswith("delivery report for mail we did not send") for row in rows)
    assert {row.sender for row in rows} == {"mailer-daemon@mx.customer.test", "postmaster@mx.slow.test"}
    # An admin's retry stores it after all (the admin asked for it).
    retried = await channel.reingest(inbox_info(inbox), (DATA / "dsn_failed.eml").read_bytes())
    assert retried is not None and retried.created


def test_parts_of_a_delivery_report_get_names_a_person_understands() -> None:
    failed = parse_email((DATA / "dsn_failed.eml").read_bytes())
    delayed = parse_email((DATA / "dsn_delayed_headers_only.eml").read_bytes())
    receipt = parse_email((DATA / "read_receipt_mdn.eml").read_bytes())
    assert [item.filename for item in failed.attachments] == ["delivery-status.txt", "original-message.eml"]
    assert [item.filename for item in delayed.attachments] == ["delivery-status.txt", "original-headers.txt"]
    assert [item.filename for item in receipt.attachments] == ["read-receipt.txt"]
    assert not any("attachment.bin" in item.filename for item in failed.attachments + delayed.attachments)
