"""Acknowledgements of new conversations: the text (number, expected reply in business hours, portal link) in
en/ru, sent over real SMTP (aiosmtpd) to the sender only, machine-marked; never to automatic mail, once per
conversation, rate-limited per address, only where the inbox turned it on."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from channels.email import EmailChannel, EmailSettings
from inbox.config import OutboxConfig
from inbox.errors import Invalid
from inbox.gateway.host import CoreHost
from inbox.gateway.outbox import OutboxWorker, inbox_info
from inbox.portal import settings as ack_settings
from inbox.portal.acknowledgement import Acknowledgements
from inbox.portal.expected import Expected, say_when
from inbox.realtime.events import EventRecord
from inbox.service import InboxService
from inbox.store.blobs import BlobStore
from inbox.store.engine import Store
from inbox.store.models import Acknowledgement, BusinessHours, Conversation, Message, MessageKind, SlaPolicy
from inbox.workflow.hours import calendar_from
from tests.email_helpers import email_inbox, raw_mail
from tests.servers.smtp import smtp_sink

WEEKDAYS_9_TO_5 = {
    "timezone": "Europe/Berlin",
    "hours": {day: [{"start": "09:00", "end": "17:00"}] for day in ("mon", "tue", "wed", "thu", "fri")},
}
# Open one minute a week: whenever the test runs, the first response (60 business seconds) is due Monday 10:01.
MONDAY_MINUTE = {"timezone": "Europe/Berlin", "hours": {"mon": [{"start": "10:00", "end": "10:01"}]}}


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("en", "Monday 09:30 (Europe/Berlin)"), ("ru", "понедельник 09:30 (Europe/Berlin)")],
)
def test_the_expected_reply_is_said_in_business_hours(locale: str, expected: str) -> None:
    calendar = calendar_from(WEEKDAYS_9_TO_5)
    friday = datetime(2026, 12, 4, 15, 30, tzinfo=UTC)  # 16:30 in Berlin: half an hour before closing
    due = calendar.add_business_seconds(friday, 3600)
    assert due is not None
    assert say_when(locale, Expected(due, calendar), friday) == expected


def test_a_reply_a_week_away_names_the_date() -> None:
    calendar = calendar_from(WEEKDAYS_9_TO_5)
    now = datetime(2026, 12, 4, 15, 30, tzinfo=UTC)
    assert (
        say_when("en", Expected(now + timedelta(days=10), calendar), now) == "Monday 14 December 16:30 (Europe/Berlin)"
    )


@pytest.mark.parametrize(
    "settings",
    [
        {"acknowledgement_enabled": "yes"},
        {"acknowledgement_locale": "de"},
        {"acknowledgement_reply_minutes": 0},
        {"acknowledgement_reply_minutes": True},
        {"acknowledgement_text": {"fr": "Merci"}},
        {"acknowledgement_text": {"en": ""}},
    ],
)
def test_malformed_settings_are_refused(settings: dict[str, object]) -> None:
    with pytest.raises(Invalid, match=r"settings\.acknowledgement_"):
        ack_settings.check(settings)


async def _calendar(store: Store, calendar: dict[str, object]) -> int:
    async with store.transaction() as tx:
        row = BusinessHours(name="office", calendar=calendar)
        tx.add(row)
        await tx.flush()
        assert row.id is not None
        return row.id


async def _outbox(store: Store, service: InboxService, channel: EmailChannel, tmp_path: Path) -> OutboxWorker:
    return OutboxWorker(
        store, service, BlobStore(tmp_path / "blobs"), {"email": channel}, OutboxConfig(poll_interval_seconds=0.05)
    )


async def test_a_new_email_conversation_is_acknowledged_over_smtp(
    store: Store, service: InboxService, tmp_path: Path
) -> None:
    hours_id = await _calendar(store, MONDAY_MINUTE)
    async with smtp_sink() as sink:
        inbox = await email_inbox(
            store,
            smtp_host="127.0.0.1",
            smtp_port=sink.port,
            smtp_security="plain",
            acknowledgement_enabled=True,
            business_hours_id=hours_id,
        )
        async with store.transaction() as tx:
            tx.add(SlaPolicy(name="fast", inbox_id=inbox.id, first_response_seconds=60))
        acknowledgements = Acknowledgements(service, base_url="https://help.example.test")
        service.broker.subscribe(acknowledgements.on_event, acknowledgements.on_ephemeral)
        channel = EmailChannel(CoreHost(store, service), EmailSettings())
        delivered = await channel.ingest(inbox_info(inbox), raw_mail(extra="Cc: dave@customer.test\r\n"))
        assert delivered is not None
        await acknowledgements.settle()  # started by the conversation.created event
        worker = await _outbox(store, service, channel, tmp_path)
        task = asyncio.create_task(worker.run())
        try:
            [mail] = await sink.wait(1)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    text = mail.message.get_body(("plain",)).get_content()
    assert mail.recipients == ["carol@customer.test"] and "Cc" not in mail.message
    assert mail.message["Auto-Submitted"] == "auto-replied"
    assert mail.message["In-Reply-To"] == "<q1@customer.test>"
    assert f"#{delivered.conversation_id}" in text
    assert "Monday" in text and "10:01 (Europe/Berlin)" in text
    assert "https://help.example.test/portal" in text
    async with store.session() as session:
        conversation = await session.get(Conversation, delivered.conversation_id)
        sent = (
            await session.execute(select(Message).where(col(Message.conversation_id) == delivered.conversation_id))
        ).scalars()
        kinds = sorted(row.kind for row in sent)
    assert conversation is not None and conversation.first_reply_at is None  # no reply: no SLA promise met
    assert kinds == [MessageKind.ACTIVITY, MessageKind.INCOMING]


async def test_the_inbox_text_and_language_are_used(store: Store, service: InboxService) -> None:
    inbox = await email_inbox(
        store,
        acknowledgement_enabled=True,
        acknowledgement_locale="ru",
        acknowledgement_reply_minutes=120,
    )
    custom = await email_inbox(
        store,
        address="sales@example.test",
        acknowledgement_enabled=True,
        acknowledgement_text={"en": "Got it: #{number}, answer by {expected}. {portal_url} {not a placeholder}"},
    )
    channel = EmailChannel(CoreHost(store, service), EmailSettings())
    acknowledgements = Acknowledgements(service, base_url="https://help.example.test/")
    first = await channel.ingest(inbox_info(inbox), raw_mail())
    second = await channel.ingest(
        inbox_info(custom),
        raw_mail(sender="erin@customer.test", message_id="<e1@customer.test>", to="sales@example.test"),
    )
    assert first is not None and second is not None
    assert await acknowledgements.acknowledge(first.conversation_id)
    assert await acknowledgements.acknowledge(second.conversation_id)
    russian, own = await _acknowledgement_texts(store, [first.conversation_id, second.conversation_id])
    assert russian.startswith(f"Спасибо за обращение. Его номер — #{first.conversation_id}.")
    assert "(UTC)" in russian and "https://help.example.test/portal" in russian
    assert own.startswith(f"Got it: #{second.conversation_id}, answer by ")
    assert own.endswith("https://help.example.test/portal {not a placeholder}")


async def _acknowledgement_texts(store: Store, conversation_ids: list[int]) -> list[str]:
    async with store.session() as session:
        texts = []
        for conversation_id in conversation_ids:
            row = await session.get(Acknowledgement, conversation_id)
            assert row is not None and row.message_id is not None
            message = await session.get(Message, row.message_id)
            assert message is not None
            texts.append(message.body)
    return texts


async def test_loop_safety_automatic_mail_once_per_conversation_and_per_address(
    store: Store, service: InboxService
) -> None:
    inbox = await email_inbox(store, acknowledgement_enabled=True)
    quiet = await email_inbox(store, address="quiet@example.test")
    channel = EmailChannel(CoreHost(store, service), EmailSettings())
    acknowledgements = Acknowledgements(service, base_url="https://help.example.test", per_address=2)
    info = inbox_info(inbox)
    robot = await channel.ingest(
        info,
        raw_mail(
            sender="robot@customer.test", message_id="<r1@customer.test>", extra="Auto-Submitted: auto-replied\r\n"
        ),
    )
    off = await channel.ingest(inbox_info(quiet), raw_mail(message_id="<off@customer.test>", to="quiet@example.test"))
    assert robot is not None and off is not None
    assert not await acknowledgements.acknowledge(robot.conversation_id)  # an auto-reply: never answered
    assert not await acknowledgements.acknowledge(off.conversation_id)  # the inbox did not turn it on
    carol = []
    for number in range(3):
        delivered = await channel.ingest(
            info, raw_mail(subject=f"Question {number}", message_id=f"<c{number}@customer.test>")
        )
        assert delivered is not None
        carol.append(delivered.conversation_id)
    assert await acknowledgements.acknowledge(carol[0])
    assert not await acknowledgements.acknowledge(carol[0])  # once per conversation
    assert await acknowledgements.acknowledge(carol[1])
    assert not await acknowledgements.acknowledge(carol[2])  # the third in an hour from one address
    # An hour later the address may be acknowledged again.
    later = Acknowledgements(
        service,
        base_url="https://help.example.test",
        per_address=2,
        clock=lambda: datetime.now(UTC) + timedelta(hours=1, minutes=1),
    )
    assert await later.acknowledge(carol[2])
    async with store.session() as session:
        rows = list((await session.execute(select(Acknowledgement.conversation_id))).scalars())
    assert sorted(rows) == sorted(carol)


async def test_only_new_conversations_start_an_acknowledgement(store: Store, service: InboxService) -> None:
    inbox = await email_inbox(store, acknowledgement_enabled=True)
    acknowledgements = Acknowledgements(service, base_url="https://help.example.test")
    channel = EmailChannel(CoreHost(store, service), EmailSettings())
    delivered = await channel.ingest(inbox_info(inbox), raw_mail())
    assert delivered is not None
    record = EventRecord(1, "message.created", inbox.id, delivered.conversation_id, {}, None)
    await acknowledgements.on_event(record)
    await acknowledgements.settle()
    async with store.session() as session:
        assert await session.get(Acknowledgement, delivered.conversation_id) is None
