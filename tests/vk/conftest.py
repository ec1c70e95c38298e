"""Fixtures of the VK tests: the fake VK API on loopback, a tiny Host double, and `VkChannel` served by uvicorn."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from starlette.applications import Starlette

from channels.base import Delivered, Edit, Host, Identity, Inbound, InboxInfo, Overloaded
from channels.vk import VkChannel, VkSettings
from tests.servers.vk import GROUP_ID, TOKEN, FakeVk, serve, vk_server

DATA = Path(__file__).parent.parent / "data" / "vk"
SECRET = "s3cretKey42"
CODE = "c0nf1rm"
INBOX = InboxInfo(
    7,
    "VK support",
    "vk",
    {"group_id": GROUP_ID, "access_token": TOKEN, "confirmation_code": CODE, "secret_key": SECRET},
    "inbox-secret",
    "pk",
)


@dataclass
class HostDouble:
    """What the core does for the channel, in a few lines: store once per (inbox, external_id), edit, attributes."""

    inboxes: dict[int, InboxInfo]
    stored: dict[tuple[int, str], Inbound] = field(default_factory=dict)
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
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

    async def edit(self, edit: Edit) -> Delivered | None:
        key = (edit.inbound.inbox_id, edit.inbound.external_id)
        if key not in self.stored:
            return None
        self.stored[key] = edit.inbound
        return Delivered(list(self.stored).index(key) + 1, 1, 1, False)

    async def set_contact_attributes(self, identity: Identity, attributes: Mapping[str, Any]) -> None:
        merged = {**self.attributes.get(identity.value, {}), **attributes}
        self.attributes[identity.value] = {k: v for k, v in merged.items() if v is not None}

    async def known_external_ids(self, inbox_id: int, external_ids: Sequence[str]) -> set[str]:
        return {value for value in external_ids if (inbox_id, value) in self.stored}

    def texts(self) -> list[str]:
        return [inbound.text for inbound in self.stored.values()]


@dataclass
class Running:
    fake: FakeVk
    host: HostDouble
    channel: VkChannel
    url: str  # where the channel's route is served

    def callback_url(self, inbox_id: int = INBOX.id) -> str:
        return f"{self.url}/channels/vk/{inbox_id}"

    def event(self, name: str, **changes: Any) -> dict[str, Any]:
        """A fixture event whose file URLs point at the fake VK."""
        text = (DATA / f"{name}.json").read_text().replace("https://files.vk.test", self.fake.files_url)
        data: dict[str, Any] = json.loads(text)
        data.update(changes)
        return data


def make_channel(fake: FakeVk, host: HostDouble, **settings: Any) -> VkChannel:
    return VkChannel(cast(Host, host), VkSettings(api_base_url=fake.api_base_url, **settings))


@pytest.fixture
async def fake() -> AsyncIterator[FakeVk]:
    async with vk_server() as running:
        yield running


@pytest.fixture
async def vk(fake: FakeVk) -> AsyncIterator[Running]:
    other = InboxInfo(8, "Telegram", "telegram", {}, "s", "pk")
    host = HostDouble({INBOX.id: INBOX, other.id: other})
    channel = make_channel(fake, host)
    try:
        async with serve(Starlette(routes=list(channel.routes))) as url:
            yield Running(fake, host, channel, url)
    finally:
        await channel.close()
