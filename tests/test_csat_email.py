"""A CSAT survey for an email conversation, end to end over real SMTP (aiosmtpd): the survey mail goes to the
customer only (no Cc), threaded, marked Auto-Submitted, with the signed link; an auto-reply thread gets none."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlmodel import col, select

from channels.email import EmailChannel, EmailSettings
from inbox.config import CsatConfig, OutboxConfig
from inbox.csat.survey import Surveys
from inbox.gateway.host import CoreHost
from inbox.gateway.outbox import OutboxWorker, inbox_info
from inbox.service import ConversationChanges, InboxService
from inbox.store.blobs import BlobStore
from inbox.store.engine import Store
from inbox.store.models import CsatSurvey
from tests.email_helpers import email_inbox, raw_mail
from tests.factories import make_agent
from tests.servers.smtp import smtp_sink


async def test_survey_mail_goes_to_the_customer_only(store: Store, service: InboxService, tmp_path: Path) -> None:
    surveys = Surveys(service, secret="k", base_url="https://help.example.test", settings=CsatConfig())
    service.on_resolved.append(surveys.on_resolved)
    async with smtp_sink() as sink:
        # Core settings (surveys, SLA) sit next to the mailbox settings; the channel never sees them.
        inbox = await email_inbox(
            store,
            smtp_host="127.0.0.1",
            smtp_port=sink.port,
            smtp_security="plain",
            csat_enabled=True,
            sla_first_response_minutes=30,
        )
        channel = EmailChannel(CoreHost(store, service), EmailSettings())
        info = inbox_info(inbox)
        first = await channel.ingest(info, raw_mail(extra="Cc: dave@customer.test\r\n"))
        robot = await channel.ingest(
            info,
            raw_mail(
                sender="robot@customer.test", message_id="<r1@customer.test>", extra="Auto-Submitted: auto-replied\r\n"
            ),
        )
        assert first is not None and robot is not None
        agent = await make_agent(store, role="admin")
        worker = OutboxWorker(
            store, service, BlobStore(tmp_path / "blobs"), {"email": channel}, OutboxConfig(poll_interval_seconds=0.05)
        )
        task = asyncio.create_task(worker.run())
        try:
            for delivered in (first, robot):
                await service.reply(delivered.conversation_id, by=agent, body="Sorted.", client_id=None)
                await service.update_conversation(
                    delivered.conversation_id, ConversationChanges(status="resolved"), by=agent
                )
            received = await sink.wait(3)  # two replies and one survey
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    [survey_mail] = [item for item in received if "/csat/" in item.message.get_body(("plain",)).get_content()]
    assert survey_mail.recipients == ["carol@customer.test"] and "Cc" not in survey_mail.message
    assert survey_mail.message["Auto-Submitted"] == "auto-replied"
    assert survey_mail.message["In-Reply-To"] == "<q1@customer.test>"
    async with store.session() as session:
        rows = list((await session.execute(select(CsatSurvey).order_by(col(CsatSurvey.id)))).scalars())
    assert [row.conversation_id for row in rows] == [first.conversation_id]  # none for the auto-reply
    assert rows[0].id is not None
    assert surveys.url(rows[0].id) in survey_mail.message.get_body(("plain",)).get_content()
