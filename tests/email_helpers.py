"""Helpers shared by the email tests: the Dovecot fixtures (`dovecot`, a fresh `user`), inboxes with mailbox
settings, raw mails, APPEND, polling for stored rows."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from aioimaplib import IMAP4
from sqlmodel import col, select

from inbox.store.engine import Store
from inbox.store.models import Conversation, Inbox, Message, Quarantined
from tests.factories import make_inbox
from tests.servers.dovecot import Dovecot, binary, dovecot_server

T = TypeVar("T")
ADDRESS = "support@example.test"


IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
USERS = [f"box{i}@example.test" for i in range(60)]
_next_user = itertools.count()


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    if binary() is None:
        if IN_CI:
            pytest.fail("CI=true but dovecot is missing; run `make test` as root to install dovecot-imapd")
        pytest.skip("dovecot not installed (apt-get install -y dovecot-imapd, or `make test` as root)")
    with dovecot_server(dict.fromkeys(USERS, "pw")) as server:
        yield server


@pytest.fixture
def user(dovecot: Dovecot) -> str:
    """A mailbox no other test has used."""
    return USERS[next(_next_user)]


def imap_settings(dovecot: Dovecot, user: str) -> dict[str, Any]:
    return {
        "imap_host": dovecot.host,
        "imap_port": dovecot.port,
        "imap_security": "plain",
        "imap_username": user,
        "imap_password": "pw",
    }


async def append(dovecot: Dovecot, user: str, *raws: bytes) -> None:
    client = IMAP4(dovecot.host, dovecot.port, timeout=10)
    await client.wait_hello_from_server()
    assert (await client.login(user, "pw")).result == "OK"
    for raw in raws:
        response = await client.append(raw, mailbox="INBOX")
        assert response.result == "OK", response
    await client.logout()


async def email_inbox(store: Store, address: str = ADDRESS, **settings: Any) -> Inbox:
    return await make_inbox(store, channel="email", name="Support", address=address, **settings)


def raw_mail(
    sender: str = "carol@customer.test",
    subject: str = "Order 1234",
    body: str = "Where is my order?",
    message_id: str = "<q1@customer.test>",
    to: str = ADDRESS,
    extra: str = "",
) -> bytes:
    headers = (
        f"From: Carol <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n"
        f"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n{extra}"
    )
    return f"{headers}\r\n{body}\r\n".encode()


async def messages(store: Store, inbox_id: int) -> list[Message]:
    async with store.session() as session:
        rows = await session.execute(select(Message).where(col(Message.inbox_id) == inbox_id).order_by(col(Message.id)))
        return list(rows.scalars())


async def quarantined(store: Store, inbox_id: int) -> list[Quarantined]:
    """The inbox's messages still in quarantine (not discarded), oldest first."""
    async with store.session() as session:
        rows = await session.execute(
            select(Quarantined)
            .where(col(Quarantined.inbox_id) == inbox_id, col(Quarantined.status) == "quarantined")
            .order_by(col(Quarantined.id))
        )
        return list(rows.scalars())


async def conversations(store: Store, inbox_id: int) -> list[Conversation]:
    async with store.session() as session:
        rows = await session.execute(
            select(Conversation).where(col(Conversation.inbox_id) == inbox_id).order_by(col(Conversation.id))
        )
        return list(rows.scalars())


async def eventually(probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], seconds: float = 15.0) -> T:
    """Poll `probe` until `check` holds (no fixed sleeps); fail with the last value after `seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        value = await probe()
        if check(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not reached within {seconds}s; last value: {value!r}"[:2000])
        await asyncio.sleep(0.05)
