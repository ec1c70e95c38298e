# ruff: noqa: F811  (the `dovecot` and `user` fixtures imported from tests.email_helpers are parameters here)
"""IMAP in against a real Dovecot started by the suite (and a real aiosmtpd sink for replies).

IDLE freshness end to end (APPEND → agent stream with the poll interval set to an hour), the reply and the
customer's answer threading, a connection cut mid-FETCH plus a restart storing each mail once, a 200-mail
backfill after an outage, and poison mail quarantined once and never fetched again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from channels.base import InboxInfo
from channels.email import EmailChannel, EmailSettings
from inbox.auth import new_api_token
from inbox.config import EmailConfig
from inbox.gateway.host import CoreHost
from inbox.gateway.outbox import inbox_info
from inbox.service import InboxService
from inbox.store.engine import Store
from inbox.store.migrate import upgrade
from inbox.store.models import ApiToken, key
from tests.email_helpers import (  # noqa: F401
    append,
    dovecot,
    email_inbox,
    eventually,
    imap_settings,
    messages,
    quarantined,
    raw_mail,
    user,
)
from tests.factories import make_agent
from tests.servers import tls
from tests.servers.app import live_server, make_config
from tests.servers.dovecot import Dovecot, binary, dovecot_server
from tests.servers.proxy import CuttingProxy, DroppingProxy, StuckMailProxy
from tests.servers.smtp import smtp_sink


@contextlib.asynccontextmanager
async def reading(channel: EmailChannel, inbox: InboxInfo) -> AsyncIterator[Any]:
    """Run one IMAP reader for `inbox` for the block; cancel it afterwards (a process stopping)."""
    from channels.email.settings import MailboxSettings

    reader = channel.reader(inbox, MailboxSettings.from_inbox(inbox.settings))
    task = asyncio.create_task(reader.run())
    try:
        yield reader
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def fast() -> EmailSettings:
    return EmailSettings(poll_interval_seconds=3600.0, reconnect_max_seconds=0.2, connect_timeout_seconds=5.0)


async def test_idle_reply_and_answer_end_to_end(db_url: str, tmp_path: Path, dovecot: Dovecot, user: str) -> None:
    store = Store(db_url)
    await upgrade(store)
    async with smtp_sink() as sink:
        inbox = await email_inbox(
            store,
            address=user,
            smtp_host="127.0.0.1",
            smtp_port=sink.port,
            smtp_security="plain",
            **imap_settings(dovecot, user),
        )
        agent = await make_agent(store, role="admin")
        token, digest = new_api_token()
        async with store.transaction() as tx:
            tx.add(ApiToken(agent_id=key(agent), token_hash=digest))
        await store.close()
        # An hour between polls: only IDLE can explain a mail showing up within seconds.
        config = make_config(db_url, tmp_path, email=EmailConfig(poll_interval_seconds=3600.0))
        async with (
            live_server(config) as server,
            connect(f"{server.ws_url}/api/v1/stream", additional_headers={"Authorization": f"Bearer {token}"}) as ws,
        ):
            channel: EmailChannel = server.state.channels["email"]
            reader = await eventually(lambda: _reader(channel, key(inbox)), lambda found: found is not None)
            await asyncio.wait_for(reader.idle_active.wait(), 10)

            await append(dovecot, user, raw_mail(to=user))
            created = await _frame(
                ws, lambda f: f.get("type") == "message.created" and f["data"]["external_id"] == "<q1@customer.test>"
            )
            conversation_id = created["data"]["conversation_id"]
            assert created["data"]["meta"]["thread_reason"] == "new conversation"

            await server.state.service.reply(conversation_id, by=agent, body="On its way.", client_id=None)
            [received] = await sink.wait(1, seconds=30)
            sent = received.message
            assert sent["In-Reply-To"] == "<q1@customer.test>" and sent["References"] == "<q1@customer.test>"
            assert sent["To"] == "carol@customer.test" and f"[#{conversation_id}]" in sent["Subject"]

            await asyncio.wait_for(reader.idle_active.wait(), 10)
            answer = raw_mail(
                to=user,
                message_id="<q2@customer.test>",
                subject=f"Re: {sent['Subject']}",
                extra=f"In-Reply-To: {sent['Message-ID']}\r\nReferences: <q1@customer.test> {sent['Message-ID']}\r\n",
            )
            await append(dovecot, user, answer)
            joined = await _frame(
                ws, lambda f: f.get("type") == "message.created" and f["data"]["external_id"] == "<q2@customer.test>"
            )
            assert joined["data"]["conversation_id"] == conversation_id
            assert joined["data"]["meta"]["thread_reason"] == "threaded by In-Reply-To"

            # Channel health reaches /metrics: a recent fetch and send, no failure.
            async with httpx.AsyncClient(base_url=server.url) as http:
                assert (await http.get("/api/v1/channels/health")).status_code == 401

                async def health_row() -> dict[str, Any]:
                    answer = await http.get("/api/v1/channels/health", headers={"Authorization": f"Bearer {token}"})
                    return next(item for item in answer.json()["items"] if item["inbox_id"] == key(inbox))

                # The event is published inside `deliver`, a moment before the cursor (and backlog) move on.
                row = await eventually(health_row, lambda found: found["backlog"] == 0)
                text = (await http.get("/metrics")).text
            assert row["channel"] == "email" and row["last_fetch_at"] > 0 and row["last_send_at"] > 0
            assert row["failing"] is False
            labels = f'{{channel="email",inbox_id="{key(inbox)}"}}'
            assert _gauge(text, "switchboard_channel_last_fetch_timestamp_seconds" + labels) > 0
            assert _gauge(text, "switchboard_channel_last_send_timestamp_seconds" + labels) > 0
            assert _gauge(text, "switchboard_channel_failing_since_timestamp_seconds" + labels) == 0


def _gauge(text: str, name: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(name + " "))
    return float(line.rsplit(" ", 1)[1])


async def _reader(channel: EmailChannel, inbox_id: int) -> Any:
    return channel.readers.get(inbox_id)


async def _frame(ws: Any, wanted: Any, seconds: float = 30.0) -> dict[str, Any]:
    async with asyncio.timeout(seconds):
        while True:
            frame = json.loads(await ws.recv())
            if wanted(frame):
                return frame  # type: ignore[no-any-return]


async def test_cut_mid_fetch_and_restart_store_each_mail_once(
    store: Store, service: InboxService, dovecot: Dovecot, user: str
) -> None:
    count = 12
    await append(dovecot, user, *(raw_mail(to=user, message_id=f"<cut{i}@customer.test>") for i in range(count)))
    proxy = CuttingProxy(dovecot.port, cut_at_body=5)
    await proxy.start()
    try:
        inbox = await email_inbox(
            store, address=user, **{**imap_settings(dovecot, user), "imap_port": proxy.listen_port}
        )
        assert inbox.id is not None
        first = EmailChannel(CoreHost(store, service), fast())
        async with reading(first, inbox_info(inbox)):
            await asyncio.wait_for(proxy.cut.wait(), 15)
        stored_at_cut = len(await messages(store, inbox.id))
        assert 1 <= stored_at_cut < count
    finally:
        await proxy.close()
    # "Restart": a new channel (fresh memory) reading the mailbox directly.
    direct = inbox_info(inbox)
    direct = InboxInfo(
        direct.id,
        direct.name,
        direct.channel,
        {**direct.settings, "imap_port": dovecot.port},
        direct.secret,
        direct.public_key,
    )
    second = EmailChannel(CoreHost(store, service), fast())
    async with reading(second, direct):
        stored = await eventually(lambda: messages(store, inbox.id or 0), lambda rows: len(rows) >= count)
    assert sorted(row.external_id or "" for row in stored) == sorted(f"<cut{i}@customer.test>" for i in range(count))


async def test_outage_backfills_every_mail_and_restart_fetches_nothing_again(
    store: Store, service: InboxService, dovecot: Dovecot, user: str
) -> None:
    inbox = await email_inbox(store, address=user, **imap_settings(dovecot, user))
    assert inbox.id is not None
    channel = EmailChannel(CoreHost(store, service), fast())
    async with reading(channel, inbox_info(inbox)) as reader:
        await asyncio.wait_for(reader.idle_active.wait(), 10)
    # The outage: 200 mails arrive while nothing reads the mailbox.
    await append(
        dovecot, user, *(raw_mail(to=user, message_id=f"<out{i}@customer.test>", body=f"mail {i}") for i in range(200))
    )
    async with reading(EmailChannel(CoreHost(store, service), fast()), inbox_info(inbox)):
        stored = await eventually(lambda: messages(store, inbox.id or 0), lambda rows: len(rows) >= 200, seconds=60)
    assert len({row.external_id for row in stored}) == 200
    async with reading(EmailChannel(CoreHost(store, service), fast()), inbox_info(inbox)) as again:
        await asyncio.wait_for(again.idle_active.wait(), 10)
        assert again.health.fetched == 0  # the cursor says everything was read: nothing is fetched twice
        await append(dovecot, user, raw_mail(to=user, message_id="<after@customer.test>"))
        await eventually(lambda: messages(store, inbox.id or 0), lambda rows: len(rows) == 201)
        assert again.health.fetched == 1


async def test_poison_mail_is_quarantined_once_and_never_blocks(
    store: Store, service: InboxService, dovecot: Dovecot, user: str
) -> None:
    inbox = await email_inbox(store, address=user, **imap_settings(dovecot, user))
    assert inbox.id is not None
    poison = b"this is not mail at all\r\n\xff\xfe\x80 binary junk\r\n"
    await append(dovecot, user, poison, raw_mail(to=user, message_id="<good@customer.test>"))
    async with reading(EmailChannel(CoreHost(store, service), fast()), inbox_info(inbox)):
        stored = await eventually(lambda: messages(store, inbox.id or 0), lambda rows: len(rows) == 1)
        [held] = await eventually(lambda: quarantined(store, inbox.id or 0), lambda rows: len(rows) == 1)
    assert "no header section" in held.reason and held.attempts == 1
    assert [row.external_id for row in stored] == ["<good@customer.test>"]
    async with reading(EmailChannel(CoreHost(store, service), fast()), inbox_info(inbox)) as again:
        await asyncio.wait_for(again.idle_active.wait(), 10)
        assert again.health.fetched == 0
    assert len(await messages(store, inbox.id)) == 1
    assert [(row.id, row.attempts) for row in await quarantined(store, inbox.id)] == [(held.id, 1)]


class FlakyChannel(EmailChannel):
    """A channel whose store rejects one particular mail every time (a poison message of another kind)."""

    async def ingest(self, inbox: InboxInfo, raw: bytes, envelope_recipients: Any = ()) -> Any:
        if b"<explodes@customer.test>" in raw:
            raise RuntimeError("the store rejected this mail")
        return await super().ingest(inbox, raw, envelope_recipients)


async def test_mail_that_keeps_failing_is_quarantined_after_retries(
    store: Store, service: InboxService, dovecot: Dovecot, user: str
) -> None:
    inbox = await email_inbox(store, address=user, **imap_settings(dovecot, user))
    assert inbox.id is not None
    await append(
        dovecot,
        user,
        raw_mail(to=user, message_id="<explodes@customer.test>"),
        raw_mail(to=user, message_id="<next@customer.test>"),
    )
    async with reading(FlakyChannel(CoreHost(store, service), fast()), inbox_info(inbox)):
        stored = await eventually(lambda: messages(store, inbox.id or 0), lambda rows: len(rows) == 1)
        [held] = await eventually(lambda: quarantined(store, inbox.id or 0), lambda rows: len(rows) == 1)
    assert "the store rejected this mail" in held.reason
    assert b"<explodes@customer.test>" in service.blobs.path(held.storage_name or "").read_bytes()
    assert [row.external_id for row in stored] == ["<next@customer.test>"]


async def test_failing_mailbox_is_reported_in_health(
    store: Store, service: InboxService, dovecot: Dovecot, user: str
) -> None:
    inbox = await email_inbox(store, address=user, **{**imap_settings(dovecot, user), "imap_password": "wrong"})
    assert inbox.id is not None
    channel = EmailChannel(CoreHost(store, service), fast())
    async with reading(channel, inbox_info(inbox)) as reader:
        await eventually(lambda: _value(reader.health.failing_since), lambda since: since is not None)
    assert reader.health.last_error is not None and f"login as {user} failed" in reader.health.last_error
    assert reader.health.last_success_at is None


async def _value(value: Any) -> Any:
    return value


async def test_uidvalidity_change_resyncs_without_duplicates(
    store: Store, service: InboxService, dovecot: Dovecot, user: str
) -> None:
    inbox = await email_inbox(store, address=user, **imap_settings(dovecot, user))
    assert inbox.id is not None
    host = CoreHost(store, service)
    await append(dovecot, user, *(raw_mail(to=user, message_id=f"<v{i}@customer.test>") for i in range(3)))
    async with reading(EmailChannel(host, fast()), inbox_info(inbox)):
        await eventually(lambda: messages(store, inbox.id or 0), lambda rows: len(rows) == 3)
    # The server's mailbox was rebuilt (or restored): the stored UIDVALIDITY no longer matches.
    await host.save_cursor(f"email.imap.{inbox.id}", "1:999")
    async with reading(EmailChannel(host, fast()), inbox_info(inbox)) as reader:
        await asyncio.wait_for(reader.idle_active.wait(), 10)
        await append(dovecot, user, raw_mail(to=user, message_id="<v3@customer.test>"))
        stored = await eventually(lambda: messages(store, inbox.id or 0), lambda rows: len(rows) == 4)
        assert reader.health.fetched == 1  # the three known mails were skipped by their headers
    assert len({row.external_id for row in stored}) == 4


async def test_connection_dropped_during_idle_reconnects(
    store: Store, service: InboxService, dovecot: Dovecot, user: str
) -> None:
    proxy = DroppingProxy(dovecot.port)
    await proxy.start()
    try:
        inbox = await email_inbox(
            store, address=user, **{**imap_settings(dovecot, user), "imap_port": proxy.listen_port}
        )
        assert inbox.id is not None
        async with reading(EmailChannel(CoreHost(store, service), fast()), inbox_info(inbox)) as reader:
            await asyncio.wait_for(reader.idle_active.wait(), 10)
            proxy.drop()
            await eventually(lambda: _value(reader.health.last_error), lambda error: error is not None)
            assert reader.health.last_error is not None and "connection lost during IDLE" in reader.health.last_error
            await asyncio.wait_for(reader.idle_active.wait(), 10)  # back in IDLE on a new connection
            await append(dovecot, user, raw_mail(to=user, message_id="<after-drop@customer.test>"))
            await eventually(lambda: messages(store, inbox.id or 0), lambda rows: len(rows) == 1)
    finally:
        await proxy.close()


async def test_mail_that_cannot_be_fetched_is_quarantined_and_passed(
    store: Store, service: InboxService, dovecot: Dovecot, user: str
) -> None:
    await append(
        dovecot,
        user,
        raw_mail(to=user, message_id="<stuck@customer.test>"),
        raw_mail(to=user, message_id="<behind@customer.test>"),
    )
    proxy = StuckMailProxy(dovecot.port)
    await proxy.start()
    try:
        inbox = await email_inbox(
            store, address=user, **{**imap_settings(dovecot, user), "imap_port": proxy.listen_port}
        )
        assert inbox.id is not None
        async with reading(EmailChannel(CoreHost(store, service), fast()), inbox_info(inbox)):
            stored = await eventually(lambda: messages(store, inbox.id or 0), lambda rows: len(rows) == 1)
            [held] = await eventually(lambda: quarantined(store, inbox.id or 0), lambda rows: len(rows) == 1)
    finally:
        await proxy.close()
    assert "UID 1 could not be fetched" in held.reason
    assert [row.external_id for row in stored] == ["<behind@customer.test>"]


async def test_imap_over_implicit_tls(
    store: Store, service: InboxService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if binary() is None or not tls.available():
        pytest.skip("dovecot or the openssl CLI is not installed")
    certs = tls.make_certificates(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca))
    user = "tls@example.test"
    with dovecot_server({user: "pw"}, cert=certs.cert, key=certs.key) as server:
        assert server.tls_port is not None
        await append(server, user, raw_mail(to=user, message_id="<tls1@customer.test>"))
        inbox = await email_inbox(
            store, address=user, **{**imap_settings(server, user), "imap_port": server.tls_port, "imap_security": "tls"}
        )
        async with reading(EmailChannel(CoreHost(store, service), fast()), inbox_info(inbox)):
            stored = await eventually(lambda: messages(store, inbox.id or 0), lambda rows: len(rows) == 1)
    assert stored[0].external_id == "<tls1@customer.test>"
