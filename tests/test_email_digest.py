# ruff: noqa: F811  (the `dovecot` and `user` fixtures imported from tests.email_helpers are parameters here)
"""Two different mails with the same Message-ID are both kept (issue 17 item 5): a mail is deduplicated on its
Message-ID plus a digest of its body, over SMTP/ingest and over IMAP (whose header-first skip compares digests)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from channels.base import InboxInfo
from channels.email import EmailChannel, EmailSettings
from channels.email.parse import body_digest, parse_email
from channels.email.settings import MailboxSettings
from inbox.gateway.host import CoreHost
from inbox.gateway.outbox import inbox_info
from inbox.service import InboxService
from inbox.store.engine import Store
from tests.email_helpers import (  # noqa: F401
    append,
    dovecot,
    email_inbox,
    eventually,
    imap_settings,
    messages,
    raw_mail,
    user,
)
from tests.servers.dovecot import Dovecot

SAME_ID = "<same@customer.test>"


def test_the_digest_ignores_line_endings_and_the_header_section() -> None:
    crlf = raw_mail(message_id=SAME_ID, body="line one\r\nline two")
    lf = crlf.replace(b"\r\n", b"\n")
    other_headers = raw_mail(message_id=SAME_ID, body="line one\r\nline two", subject="Another subject")
    digest = body_digest(crlf)
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert body_digest(lf) == digest == body_digest(other_headers) == parse_email(crlf).digest
    assert body_digest(raw_mail(message_id=SAME_ID, body="line one\r\nline 2")) != digest


async def test_two_different_mails_with_one_message_id_are_both_kept(store: Store, service: InboxService) -> None:
    inbox = await email_inbox(store)
    info = inbox_info(inbox)
    channel = EmailChannel(CoreHost(store, service), EmailSettings())
    first = raw_mail(message_id=SAME_ID, body="Where is my order?")
    second = raw_mail(message_id=SAME_ID, body="And please change the address.")
    one = await channel.ingest(info, first)
    two = await channel.ingest(info, second)
    assert one is not None and two is not None and one.created and two.created
    assert one.message_id != two.message_id and one.conversation_id == two.conversation_id
    # True resends (the same body again, even with other line endings) are stored once.
    for again, expected in [(first, one), (second, two), (second.replace(b"\r\n", b"\n"), two)]:
        answer = await channel.ingest(info, again)
        assert answer is not None and not answer.created and answer.message_id == expected.message_id
    rows = sorted(await messages(store, inbox.id or 0), key=lambda row: row.id or 0)
    digest = body_digest(second)
    assert [row.external_id for row in rows] == [SAME_ID, f"{SAME_ID}#{digest}"]
    assert [row.meta["email"]["digest"] for row in rows] == [body_digest(first), digest]


@contextlib.asynccontextmanager
async def reading(channel: EmailChannel, inbox: InboxInfo) -> AsyncIterator[Any]:
    reader = channel.reader(inbox, MailboxSettings.from_inbox(inbox.settings))
    task = asyncio.create_task(reader.run())
    try:
        yield reader
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_imap_header_first_skip_compares_digests(
    store: Store, service: InboxService, dovecot: Dovecot, user: str
) -> None:
    inbox = await email_inbox(store, address=user, **imap_settings(dovecot, user))
    info = inbox_info(inbox)
    settings = EmailSettings(poll_interval_seconds=3600.0, reconnect_max_seconds=0.2, connect_timeout_seconds=5.0)
    channel = EmailChannel(CoreHost(store, service), settings)
    await channel.ingest(info, raw_mail(to=user, message_id=SAME_ID, body="First mail"))  # e.g. by SMTP in
    await append(
        dovecot,
        user,
        raw_mail(to=user, message_id=SAME_ID, body="First mail"),  # the same mail again: skipped unread
        raw_mail(to=user, message_id=SAME_ID, body="A different mail, same Message-ID"),
    )
    async with reading(channel, info) as reader:
        rows = await eventually(lambda: messages(store, inbox.id or 0), lambda rows: len(rows) == 2)
        await asyncio.wait_for(reader.idle_active.wait(), 10)
        assert reader.health.fetched == 1
    assert sorted(row.body for row in rows) == ["A different mail, same Message-ID", "First mail"]


async def test_the_quarantine_list_shows_the_sender_the_mail_really_has(store: Store, service: InboxService) -> None:
    from tests.email_helpers import quarantined

    inbox = await email_inbox(store)
    channel = EmailChannel(CoreHost(store, service), EmailSettings(max_message_bytes=2000))
    spoofed = raw_mail(body="x" * 3000).replace(
        b"From: Carol <carol@customer.test>", b'From: "ceo@bank.test" <mallory@evil.test>'
    )
    no_address = raw_mail(body="x" * 3000).replace(
        b"From: Carol <carol@customer.test>", b"From: Nobody <>\r\nSender: Bob <bob@customer.test>"
    )
    for raw in (spoofed, no_address):
        assert await channel.ingest(inbox_info(inbox), raw) is None
    rows = sorted(await quarantined(store, inbox.id or 0), key=lambda row: row.id or 0)
    assert [row.sender for row in rows] == ["mallory@evil.test", "bob@customer.test"]


class StaleHost(CoreHost):
    """A host whose digest look-up answers before another delivery of the same Message-ID commits (a race)."""

    stale = True

    async def message_digests(self, inbox_id: int, external_ids: Any) -> dict[str, str | None]:
        if self.stale:
            self.stale = False
            return {}
        return await super().message_digests(inbox_id, external_ids)


async def test_a_different_mail_that_lost_a_race_for_its_message_id_is_still_kept(
    store: Store, service: InboxService
) -> None:
    inbox = await email_inbox(store)
    await EmailChannel(CoreHost(store, service), EmailSettings()).ingest(
        inbox_info(inbox), raw_mail(message_id=SAME_ID, body="first")
    )
    racing = EmailChannel(StaleHost(store, service), EmailSettings())
    second = await racing.ingest(inbox_info(inbox), raw_mail(message_id=SAME_ID, body="second"))
    assert second is not None and second.created
    assert sorted(row.body for row in await messages(store, inbox.id or 0)) == ["first", "second"]
