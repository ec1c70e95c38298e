"""The email channel against a real store and real SMTP servers (aiosmtpd): threading end to end,
bounces, SMTP out errors, SMTP in routing and refusals, quarantine."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from pathlib import Path

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP

from channels.base import Delivered, DeliveryError, InboxInfo
from channels.email import EmailChannel, EmailSettings
from channels.email.thread import conversation_token
from inbox.config import OutboxConfig
from inbox.gateway.host import CoreHost
from inbox.gateway.outbox import OutboxWorker, inbox_info
from inbox.service import InboxService
from inbox.store.blobs import BlobStore
from inbox.store.engine import Store
from tests.email_helpers import ADDRESS, conversations, email_inbox, eventually, messages, quarantined, raw_mail
from tests.factories import make_agent
from tests.servers import tls
from tests.servers.app import free_port
from tests.servers.smtp import Sink, smtp_sink

DATA = Path(__file__).resolve().parent / "data" / "email"


def channel_for(store: Store, service: InboxService, **settings: object) -> EmailChannel:
    return EmailChannel(CoreHost(store, service), EmailSettings(**settings))  # type: ignore[arg-type]


async def test_reply_threads_and_customer_answer_joins(store: Store, service: InboxService, tmp_path: Path) -> None:
    async with smtp_sink() as sink:
        inbox = await email_inbox(
            store, smtp_host="127.0.0.1", smtp_port=sink.port, smtp_security="plain", signature="Ann from Support"
        )
        assert inbox.id is not None
        channel = channel_for(store, service)
        info = inbox_info(inbox)
        first = await channel.ingest(info, raw_mail(extra="Cc: dave@customer.test, support+c9-x@example.test\r\n"))
        assert first is not None and first.created
        agent = await make_agent(store, email="ann@example.test", name="Ann Agent")
        worker = OutboxWorker(
            store, service, BlobStore(tmp_path / "blobs"), {"email": channel}, OutboxConfig(poll_interval_seconds=0.05)
        )
        task = asyncio.create_task(worker.run())
        try:
            await service.reply(first.conversation_id, by=agent, body="It ships **today**.", client_id=None)
            [received] = await sink.wait(1)
            stored = await eventually(lambda: messages(store, inbox.id or 0), lambda rows: rows[-1].status == "sent")
            # Reply-all is chosen per message: this one goes to the customer only.
            await service.reply(
                first.conversation_id, by=agent, body="Just you.", client_id=None, options={"reply_all": False}
            )
            _, only_sender = await sink.wait(2)
            assert only_sender.recipients == ["carol@customer.test"] and "Cc" not in only_sender.message
            await eventually(lambda: messages(store, inbox.id or 0), lambda rows: rows[-1].status == "sent")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        sent = received.message
        assert sent["In-Reply-To"] == "<q1@customer.test>"
        assert sent["References"] == "<q1@customer.test>"
        assert sent["Subject"] == f"Re: Order 1234 [#{first.conversation_id}]"
        assert sent["From"].addresses[0].display_name == "Ann Agent"
        assert sent["From"].addresses[0].addr_spec == ADDRESS
        assert sent["To"] == "carol@customer.test" and sent["Cc"] == "dave@customer.test"
        assert sorted(received.recipients) == ["carol@customer.test", "dave@customer.test"]
        our_id = sent["Message-ID"]
        assert our_id.startswith(f"<{conversation_token(first.conversation_id, inbox.secret)}.")
        assert "-- \r\nAnn from Support" in sent.get_body(("plain",)).get_content()
        assert stored[1].external_id == our_id

        # The customer answers from another client that keeps only In-Reply-To.
        answer = await channel.ingest(
            info,
            raw_mail(message_id="<q2@customer.test>", subject="Re: Order 1234", extra=f"In-Reply-To: {our_id}\r\n"),
        )
        assert answer is not None and answer.conversation_id == first.conversation_id
        # Dave (Cc'd) answers with only References to the first mail: he is a participant too.
        dave = await channel.ingest(
            info,
            raw_mail(
                sender="dave@customer.test", message_id="<d1@customer.test>", extra="References: <q1@customer.test>\r\n"
            ),
        )
        assert dave is not None and dave.conversation_id == first.conversation_id
        # A stranger guessing the subject tag gets a conversation of their own.
        stranger = await channel.ingest(
            info,
            raw_mail(
                sender="mallory@evil.test", message_id="<m1@evil.test>", subject=f"Re: [#{first.conversation_id}]"
            ),
        )
        assert stranger is not None and stranger.conversation_id != first.conversation_id
        rows = {row.external_id: row for row in await messages(store, inbox.id)}
        assert rows["<q2@customer.test>"].meta["thread_reason"] == "threaded by In-Reply-To"
        assert rows["<d1@customer.test>"].meta["thread_reason"] == "threaded by References"
        assert rows["<m1@evil.test>"].meta["thread_reason"] == (
            f"new conversation: mallory@evil.test is not a participant of conversation {first.conversation_id}"
        )
        assert len(await conversations(store, inbox.id)) == 2


async def test_delivering_the_same_mail_twice_stores_once(store: Store, service: InboxService) -> None:
    inbox = await email_inbox(store)
    channel = channel_for(store, service)
    one = await channel.ingest(inbox_info(inbox), raw_mail())
    two = await channel.ingest(inbox_info(inbox), raw_mail())
    assert one is not None and two is not None and one.message_id == two.message_id and not two.created


async def test_bounce_for_our_reply_marks_it_failed(store: Store, service: InboxService) -> None:
    inbox = await email_inbox(store)
    assert inbox.id is not None
    channel = channel_for(store, service)
    first = await channel.ingest(inbox_info(inbox), raw_mail(sender="nobody@customer.test"))
    assert first is not None
    agent = await make_agent(store)
    view, _ = await service.reply(first.conversation_id, by=agent, body="hello", client_id=None)
    ours = f"<{conversation_token(first.conversation_id, inbox.secret)}.m{view['id']}.abc@example.test>"
    await service.mark_sent(view["id"], ours)
    dsn = (DATA / "dsn_failed.eml").read_bytes().replace(b"<c7-abcdefghijklmnop.m3.abc@example.test>", ours.encode())
    assert await channel.ingest(inbox_info(inbox), dsn) is None
    reply = next(row for row in await messages(store, inbox.id) if row.id == view["id"])
    assert reply.status == "failed"
    assert reply.error is not None and "5.1.1" in reply.error and "User unknown" in reply.error
    # A bounce about mail we never sent opens no conversation: it is kept in quarantine, never dropped.
    assert await channel.ingest(inbox_info(inbox), (DATA / "dsn_failed.eml").read_bytes()) is None
    [held] = await quarantined(store, inbox.id)
    assert held.reason.startswith("delivery report for mail we did not send")


async def test_auto_reply_is_flagged(store: Store, service: InboxService) -> None:
    inbox = await email_inbox(store)
    assert inbox.id is not None
    channel = channel_for(store, service)
    await channel.ingest(inbox_info(inbox), (DATA / "auto_submitted_ooo.eml").read_bytes())
    [row] = await messages(store, inbox.id)
    assert row.meta["email"]["automatic"] == "Auto-Submitted: auto-replied"


async def test_unreadable_mail_is_quarantined_once(store: Store, service: InboxService) -> None:
    inbox = await email_inbox(store)
    assert inbox.id is not None
    channel = channel_for(store, service)
    garbage = (DATA / "garbage_not_mail.eml").read_bytes()
    assert await channel.ingest(inbox_info(inbox), garbage) is None
    assert await channel.ingest(inbox_info(inbox), garbage) is None
    assert await messages(store, inbox.id) == []  # never a conversation message: agents do not see it
    [row] = await quarantined(store, inbox.id)
    assert "no header section" in row.reason and row.attempts == 2 and row.size == len(garbage)
    assert service.blobs.path(row.storage_name or "").read_bytes() == garbage


@pytest.mark.parametrize(
    ("answer", "permanent"),
    [("451 4.7.1 greylisted, try later", False), ("550 5.7.1 relaying denied", True)],
)
async def test_smtp_out_failures(
    store: Store, service: InboxService, tmp_path: Path, answer: str, permanent: bool
) -> None:
    async with smtp_sink() as sink:
        sink.rcpt_answer = answer
        inbox = await email_inbox(store, smtp_host="127.0.0.1", smtp_port=sink.port, smtp_security="plain")
        channel = channel_for(store, service)
        first = await channel.ingest(inbox_info(inbox), raw_mail())
        assert first is not None
        agent = await make_agent(store)
        await service.reply(first.conversation_id, by=agent, body="hi", client_id=None)
        worker = OutboxWorker(store, service, BlobStore(tmp_path / "b"), {"email": channel}, OutboxConfig())
        [claim] = await worker.claim(1)
        outbound = await worker.outbound(claim)
        assert outbound is not None
        with pytest.raises(DeliveryError) as raised:
            await channel.send(outbound)
        assert answer.split(" ", 1)[1] in raised.value.reason
        assert (raised.value.retry_after is None) is permanent


async def test_smtp_in_routes_and_refuses(store: Store, service: InboxService) -> None:
    inbox = await email_inbox(store, aliases=["help@example.test"])
    assert inbox.id is not None
    port = free_port()
    channel = channel_for(store, service, smtp_listen_enabled=True, smtp_listen_port=port, max_message_bytes=10_000)
    await channel.start_smtp()
    try:
        await aiosmtplib.send(
            raw_mail(), sender="carol@customer.test", recipients=["help@example.test"], hostname="127.0.0.1", port=port
        )
        plus = raw_mail(message_id="<q9@customer.test>")
        await aiosmtplib.send(
            plus,
            sender="carol@customer.test",
            recipients=["support+anything@example.test"],
            hostname="127.0.0.1",
            port=port,
        )
        stored = await eventually(lambda: messages(store, inbox.id or 0), lambda rows: len(rows) == 2)
        assert {row.external_id for row in stored} == {"<q1@customer.test>", "<q9@customer.test>"}
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await aiosmtplib.send(
                raw_mail(), sender="x@y.test", recipients=["nobody@example.test"], hostname="127.0.0.1", port=port
            )
        assert refused.value.recipients[0].code == 550
        huge = raw_mail(message_id="<big@customer.test>", body="x" * 20_000)
        with pytest.raises(aiosmtplib.SMTPResponseException) as too_big:
            await aiosmtplib.send(huge, sender="x@y.test", recipients=[ADDRESS], hostname="127.0.0.1", port=port)
        assert too_big.value.code == 552
        assert len(await messages(store, inbox.id)) == 2
    finally:
        await channel.close()


class BrokenStoreChannel(EmailChannel):
    async def ingest(self, inbox: InboxInfo, raw: bytes, envelope_recipients: Sequence[str] = ()) -> Delivered | None:
        raise RuntimeError("database is down")


async def test_smtp_in_answers_451_when_storing_fails(store: Store, service: InboxService) -> None:
    await email_inbox(store)
    port = free_port()
    channel = BrokenStoreChannel(CoreHost(store, service), EmailSettings(smtp_listen_port=port))
    await channel.start_smtp()
    try:
        with pytest.raises(aiosmtplib.SMTPDataError) as failed:
            await aiosmtplib.send(
                raw_mail(), sender="c@customer.test", recipients=[ADDRESS], hostname="127.0.0.1", port=port
            )
        assert failed.value.code == 451  # the sending server keeps the mail and retries: nothing is lost
    finally:
        await channel.close()


async def test_oversized_header_fields_fit_the_store(store: Store, service: InboxService) -> None:
    inbox = await email_inbox(store)
    channel = channel_for(store, service)
    delivered = await channel.ingest(inbox_info(inbox), (DATA / "oversized_fields.eml").read_bytes())
    assert delivered is not None and delivered.created
    [row] = await messages(store, inbox.id or 0)
    assert row.meta["email"]["cc"] == ["ok@customer.test"] and not row.meta.get("quarantined")


@pytest.mark.parametrize(("security", "trusted"), [("starttls", True), ("tls", True), ("starttls", False)])
async def test_smtp_out_over_starttls_and_tls(
    store: Store, service: InboxService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, security: str, trusted: bool
) -> None:
    if not tls.available():
        pytest.skip("openssl CLI not installed")
    certs = tls.make_certificates(tmp_path)
    if trusted:
        monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca))  # the relay's CA, trusted the way a system CA would be
    sink = Sink()
    context = certs.server_context()
    if security == "starttls":
        factory = lambda: SMTP(sink, hostname="relay.test", tls_context=context, require_starttls=True)  # noqa: E731
        server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    else:
        factory = lambda: SMTP(sink, hostname="relay.test")  # noqa: E731
        server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        inbox = await email_inbox(store, smtp_host="127.0.0.1", smtp_port=port, smtp_security=security)
        channel = channel_for(store, service)
        first = await channel.ingest(inbox_info(inbox), raw_mail())
        assert first is not None
        agent = await make_agent(store)
        await service.reply(first.conversation_id, by=agent, body="over TLS", client_id=None)
        worker = OutboxWorker(store, service, BlobStore(tmp_path / "b"), {"email": channel}, OutboxConfig())
        [claim] = await worker.claim(1)
        outbound = await worker.outbound(claim)
        assert outbound is not None
        if not trusted:  # a relay whose certificate does not verify never gets the mail (or the password)
            with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
                await channel.send(outbound)
            assert sink.received == []
            return
        receipt = await channel.send(outbound)
        [received] = await sink.wait(1)
        assert received.message["Message-ID"] == receipt.external_id
    finally:
        server.close()
        await server.wait_closed()


async def test_smtp_listener_that_cannot_bind_does_not_stop_the_channel(store: Store, service: InboxService) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        channel = channel_for(store, service, smtp_listen_enabled=True, smtp_listen_port=port)
        task = asyncio.create_task(channel.serve())
        try:
            await eventually(lambda: _value(channel.smtp_error), lambda error: error is not None)
            assert f"127.0.0.1:{port} failed" in (channel.smtp_error or "")
            assert not task.done()  # IMAP readers and sending carry on
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def _value(value: object) -> object:
    return value
