"""Email under overload: SMTP in answers 451 4.3.2 (the sending server queues and retries), and the IMAP reader
keeps its cursor and its connection, waits, and stores every mail once when there is room — an overloaded core
never counts towards quarantining a mail."""

from __future__ import annotations

import aiosmtplib
import pytest

from channels.email import EmailChannel, EmailSettings
from inbox.gateway.admission import Admission
from inbox.gateway.host import CoreHost
from inbox.gateway.outbox import inbox_info
from inbox.service import InboxService
from inbox.store.engine import Store
from tests.email_helpers import ADDRESS, email_inbox, eventually, messages, raw_mail
from tests.servers.app import free_port
from tests.servers.dovecot import Dovecot
from tests.test_email_imap import append, dovecot, fast, imap_settings, reading, user

__all__ = ["dovecot", "user"]  # fixtures, imported for pytest

MAX_ATTEMPTS = 3  # channels.email.imap: failures after which a mail is quarantined


async def test_smtp_in_answers_451_4_3_2_while_overloaded_and_stores_the_retry_once(
    store: Store, service: InboxService
) -> None:
    inbox = await email_inbox(store)
    admission = Admission(1, base_retry_after=0.1)
    port = free_port()
    channel = EmailChannel(CoreHost(store, service, admission=admission), EmailSettings(smtp_listen_port=port))
    await channel.start_smtp()
    try:
        with admission.slot():  # another delivery holds the only slot
            with pytest.raises(aiosmtplib.SMTPDataError) as refused:
                await aiosmtplib.send(
                    raw_mail(), sender="c@customer.test", recipients=[ADDRESS], hostname="127.0.0.1", port=port
                )
            assert refused.value.code == 451 and refused.value.message.startswith("4.3.2")
            assert await messages(store, inbox.id or 0) == []
        # The sending server tries again later (here: at once): stored once.
        await aiosmtplib.send(
            raw_mail(), sender="c@customer.test", recipients=[ADDRESS], hostname="127.0.0.1", port=port
        )
        await aiosmtplib.send(
            raw_mail(), sender="c@customer.test", recipients=[ADDRESS], hostname="127.0.0.1", port=port
        )
        assert [row.external_id for row in await messages(store, inbox.id or 0)] == ["<q1@customer.test>"]
        assert admission.refused == 1
    finally:
        await channel.close()


async def test_imap_reader_waits_while_overloaded_and_never_quarantines(
    store: Store, service: InboxService, dovecot: Dovecot, user: str
) -> None:
    inbox = await email_inbox(store, address=user, **imap_settings(dovecot, user))
    admission = Admission(1, base_retry_after=0.05, max_retry_after=0.05)
    channel = EmailChannel(CoreHost(store, service, admission=admission), fast())
    await append(dovecot, user, *(raw_mail(to=user, message_id=f"<busy{i}@customer.test>") for i in range(3)))
    async with reading(channel, inbox_info(inbox)) as reader:
        with admission.slot():  # another delivery holds the only slot
            # Refused more often than a mail may fail before it is quarantined, and still waiting.
            await eventually(lambda: _value(admission.refused), lambda refused: refused > MAX_ATTEMPTS + 1)
            assert await messages(store, inbox.id or 0) == []
            assert reader.health.fetched == 0
            assert reader.failures == {}  # no attempt counted towards quarantine
            assert reader.health.last_error is None  # the session (and its connection) was never given up
        # Room again: the same reader goes on from its cursor.
        stored = await eventually(lambda: messages(store, inbox.id or 0), lambda rows: len(rows) == 3)
    assert sorted(row.external_id or "" for row in stored) == [f"<busy{i}@customer.test>" for i in range(3)]
    assert not any(row.meta.get("quarantined") for row in stored)


async def _value(value: int) -> int:
    return value
