"""Fixtures of the phone tests: a tiny Host double, the PBX simulator, and `PhoneChannel` served by uvicorn."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from starlette.applications import Starlette

from channels.base import Delivered, Host, Identity, Inbound, InboxInfo, Overloaded
from channels.phone import PhoneChannel, PhoneSettings
from tests.servers.pbx import FakePbx, pbx_server, serve

SECRET = "pbx-signing-secret-0123"
CAROL = "+4915112345678"
INBOX = InboxInfo(7, "Phone", "phone", {"signing_secret": SECRET, "default_country_code": "49"}, "inbox-secret", "pk")


@dataclass
class HostDouble:
    """What the core does for the channel: store once per (inbox, external_id); `signal` reaches a thread's
    conversation only (does nothing when the thread has none, like the core)."""

    inboxes: dict[int, InboxInfo]
    stored: dict[tuple[int, str], Inbound] = field(default_factory=dict)
    signals: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    busy: float | None = None  # deliver raises Overloaded(busy)
    broken: int = 0  # the next `broken` deliveries fail like a database that is down

    async def inbox(self, inbox_id: int) -> InboxInfo | None:
        return self.inboxes.get(inbox_id)

    async def deliver(self, inbound: Inbound) -> Delivered:
        if self.busy is not None:
            raise Overloaded(self.busy)
        if self.broken:
            self.broken -= 1
            raise ConnectionError("database is down")
        key = (inbound.inbox_id, inbound.external_id)
        created = key not in self.stored
        self.stored.setdefault(key, inbound)
        return Delivered(list(self.stored).index(key) + 1, 1, 1, created)

    async def known_external_ids(self, inbox_id: int, external_ids: Sequence[str]) -> set[str]:
        return {value for value in external_ids if (inbox_id, value) in self.stored}

    async def signal(self, inbox_id: int, thread_key: str, frame: Mapping[str, Any]) -> None:
        if any(inbound.thread_key == thread_key for inbound in self.stored.values()):
            self.signals.append((inbox_id, thread_key, dict(frame)))

    def states(self) -> list[tuple[str, str]]:
        """(call id, state) of every frame the agents saw."""
        return [(frame["call_id"], frame["state"]) for _, _, frame in self.signals]


@dataclass
class ContactHost(HostDouble):
    """A host with the optional `ContactSignalling`: frames reach agents before any conversation exists."""

    async def signal_contact(self, inbox_id: int, identity: Identity, frame: Mapping[str, Any]) -> None:
        self.signals.append((inbox_id, identity.value, dict(frame)))


@dataclass
class Running:
    pbx: FakePbx
    host: HostDouble
    channel: PhoneChannel
    url: str

    def events_url(self, inbox_id: int = INBOX.id) -> str:
        return f"{self.url}/channels/phone/{inbox_id}"


@pytest.fixture
async def pbx() -> AsyncIterator[FakePbx]:
    async with pbx_server(SECRET) as running:
        yield running


@pytest.fixture
def host() -> HostDouble:
    other = InboxInfo(8, "Telegram", "telegram", {}, "s", "pk")
    return ContactHost({INBOX.id: INBOX, other.id: other})


@pytest.fixture
async def phone(pbx: FakePbx, host: HostDouble) -> AsyncIterator[Running]:
    async with running_channel(pbx, host) as running:
        yield running


@contextlib.asynccontextmanager
async def running_channel(
    pbx: FakePbx, host: HostDouble, settings: PhoneSettings | None = None
) -> AsyncIterator[Running]:
    """`PhoneChannel` for `host` served on loopback, with the PBX simulator posting to it."""
    channel = PhoneChannel(cast(Host, host), settings)
    try:
        async with serve(Starlette(routes=list(channel.routes))) as url:
            pbx.target = f"{url}/channels/phone/{INBOX.id}"
            yield Running(pbx, host, channel, url)
    finally:
        await channel.close()
