# ruff: noqa: F811  (the `dovecot` and `user` fixtures imported from tests.email_helpers are parameters here)
"""IMAP polling (no IDLE) against the suite's Dovecot: a mail present when a poll starts is fetched by that poll."""

from __future__ import annotations

import asyncio
from typing import Any

from channels.email import EmailChannel, EmailSettings
from channels.email.settings import MailboxSettings
from inbox.gateway.host import CoreHost
from inbox.gateway.outbox import inbox_info
from inbox.service import InboxService
from inbox.store.engine import Store
from tests.email_helpers import append, dovecot, email_inbox, imap_settings, messages, raw_mail, user  # noqa: F401
from tests.servers.dovecot import Dovecot


async def test_each_poll_sees_the_mail_that_arrived_before_it(
    store: Store, service: InboxService, dovecot: Dovecot, user: str
) -> None:
    inbox = await email_inbox(store, address=user, imap_idle=False, **imap_settings(dovecot, user))
    assert inbox.id is not None
    settings = EmailSettings(poll_interval_seconds=1.5, reconnect_max_seconds=0.2, connect_timeout_seconds=5.0)
    channel = EmailChannel(CoreHost(store, service), settings)
    reader = channel.reader(inbox_info(inbox), MailboxSettings.from_inbox(inbox_info(inbox).settings))
    polls: list[int] = []  # one entry per finished poll (a search that found nothing new ends a poll)
    finished = asyncio.Event()
    catch_up = reader.catch_up

    async def counted(*args: Any) -> int:
        found = await catch_up(*args)
        if not found:
            polls.append(len(polls))
            finished.set()
        return found

    reader.catch_up = counted  # type: ignore[method-assign]
    task = asyncio.create_task(reader.run())
    try:
        for round_ in range(2):
            finished.clear()
            await asyncio.wait_for(finished.wait(), 10)
            # A poll just ended and the reader sleeps 1.5 s: the mail lands now, so the next poll must fetch it.
            before = len(polls)
            await append(dovecot, user, raw_mail(to=user, message_id=f"<poll{round_}@customer.test>"))
            assert len(polls) == before, "the append took longer than the poll interval: the test proves nothing"
            while len(polls) <= before:
                finished.clear()
                await asyncio.wait_for(finished.wait(), 10)
            stored = await messages(store, inbox.id)
            assert len(stored) == round_ + 1, f"round {round_}: the poll after the mail arrived did not fetch it"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
