"""Fixtures of the WhatsApp tests: a tiny Host double (mimics the core's dedupe and receipt rules), the fake
Graph API, and the channel's routes served by uvicorn on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from channels.base import Delivered, DeliveryStatus, Identity, Inbound, InboxInfo, Overloaded, ThreadMessage
from channels.whatsapp import WhatsAppChannel, WhatsAppSettings
from tests.servers.whatsapp import PHONE_NUMBER_ID, TOKEN, WABA_ID, FakeGraph, graph_server, serve

DATA = Path(__file__).parent.parent / "data" / "whatsapp"
APP_SECRET = "app-secret-0123456789abcdef"
VERIFY_TOKEN = "verify-me-please"
CAROL = "+4915112345678"
INBOX = InboxInfo(
    id=7,
    name="WhatsApp",
    channel="whatsapp",
    settings={
        "phone_number_id": PHONE_NUMBER_ID,
        "access_token": TOKEN,
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
        "waba_id": WABA_ID,
    },
    secret="inbox-secret",
    public_key="pk",
)


def notification(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    return data


@dataclass
class Host:
    """What the core does for a channel, as far as these tests need: store once per (inbox, external id)."""

    stored: dict[tuple[int, str], Inbound] = field(default_factory=dict)
    outgoing: dict[str, str] = field(default_factory=dict)  # our wamids → status (set by the "outbox")
    reasons: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    cursors: dict[str, str] = field(default_factory=dict)
    history: list[ThreadMessage] = field(default_factory=list)
    busy: float | None = None

    async def deliver(self, inbound: Inbound) -> Delivered:
        if self.busy is not None:
            raise Overloaded(self.busy)
        created = (inbound.inbox_id, inbound.external_id) not in self.stored
        self.stored.setdefault((inbound.inbox_id, inbound.external_id), inbound)
        return Delivered(message_id=len(self.stored), conversation_id=1, contact_id=1, created=created)

    async def inbox(self, inbox_id: int) -> InboxInfo | None:
        return INBOX if inbox_id == INBOX.id else None

    async def known_external_ids(self, inbox_id: int, external_ids: Sequence[str]) -> set[str]:
        return {i for i in external_ids if (inbox_id, i) in self.stored}

    async def set_contact_attributes(self, identity: Identity, attributes: Mapping[str, Any]) -> None:
        self.attributes.setdefault(identity.value, {}).update(attributes)

    async def thread(self, inbox_id: int, thread_key: str, *, after: int | None, limit: int) -> list[ThreadMessage]:
        return self.history[-limit:]

    async def mark_failed(self, inbox_id: int, external_id: str, reason: str) -> bool:
        if external_id not in self.outgoing:
            return False
        self.outgoing[external_id], self.reasons[external_id] = "failed", reason
        return True

    async def load_cursor(self, key: str) -> str | None:
        return self.cursors.get(key)

    async def save_cursor(self, key: str, value: str) -> None:
        self.cursors[key] = value

    @property
    def messages(self) -> list[Inbound]:
        return list(self.stored.values())


@dataclass
class ReceiptHost(Host):
    """A host that also keeps delivery receipts (`StatusRecording`), with the core's forward-only rule."""

    async def record_status(
        self,
        inbox_id: int,
        external_id: str,
        status: DeliveryStatus,
        *,
        at: datetime | None = None,
        error: str | None = None,
    ) -> bool:
        current = self.outgoing.get(external_id)
        if current is None:
            return False
        if status.supersedes(current):
            self.outgoing[external_id] = status
            if error:
                self.reasons[external_id] = error
        return True


@dataclass
class World:
    host: Host
    channel: WhatsAppChannel
    graph: FakeGraph
    url: str  # the inbox's webhook URL

    @property
    def base(self) -> str:
        return self.url.rsplit("/", 1)[0]


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    async with graph_server() as running:
        yield running


@pytest.fixture
def host() -> Host:
    return ReceiptHost()


@pytest.fixture
async def world(graph: FakeGraph, host: Host) -> AsyncIterator[World]:
    channel = WhatsAppChannel(
        host,  # type: ignore[arg-type]  # the double implements what the channel uses
        WhatsAppSettings(api_base_url=graph.api_base_url, timeout_seconds=10, max_media_bytes=1_000_000),
        status_retry_delays=(0.05, 0.1, 0.2),
    )
    try:
        async with serve(Starlette(routes=list(channel.routes))) as url:
            yield World(host, channel, graph, f"{url}/channels/whatsapp/{INBOX.id}")
    finally:
        await channel.close()
