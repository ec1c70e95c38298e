"""The outbox worker: sent, failed with the reason, retried with backoff or retry_after, resumed after restart."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

from sqlmodel import select
from starlette.routing import BaseRoute

from channels.base import DeliveryError, InboxInfo, Outbound, Receipt
from inbox.clock import utcnow
from inbox.config import OutboxConfig
from inbox.gateway.outbox import OutboxWorker
from inbox.service import InboxService
from inbox.store.blobs import BlobStore
from inbox.store.engine import Store
from inbox.store.models import Message, Outbox
from tests.conftest import Recorder
from tests.factories import inbound, make_agent, make_inbox

FAST = OutboxConfig(backoff_base_seconds=0.01, backoff_max_seconds=0.05, lease_seconds=5, poll_interval_seconds=0.02)


class ScriptedChannel:
    """Answers each send with the next scripted outcome: a Receipt or a DeliveryError."""

    name: ClassVar[str] = "api"
    routes: Sequence[BaseRoute] = ()

    def __init__(self, *outcomes: Receipt | DeliveryError) -> None:
        self.outcomes = list(outcomes)
        self.sent: list[Outbound] = []

    async def run(self, inbox: InboxInfo) -> None:
        return None

    async def send(self, message: Outbound) -> Receipt:
        self.sent.append(message)
        outcome = self.outcomes.pop(0) if self.outcomes else Receipt("ok")
        if isinstance(outcome, DeliveryError):
            raise outcome
        return outcome


@asynccontextmanager
async def running(worker: OutboxWorker) -> AsyncIterator[None]:
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def message_row(store: Store, message_id: int) -> Message:
    async with store.session() as session:
        row = await session.get(Message, message_id)
        assert row is not None
        return row


async def wait_status(store: Store, message_id: int, status: str) -> Message:
    async with asyncio.timeout(10):
        while (row := await message_row(store, message_id)).status != status:
            await asyncio.sleep(0.02)
    return row


async def queued_reply(store: Store, service: InboxService, body: str = "Thanks!") -> int:
    inbox = await make_inbox(store)
    agent = await make_agent(store, role="admin", email=f"{body[:5].lower()}@example.test")
    delivered = await service.deliver(inbound(inbox, body))
    message, _ = await service.reply(delivered.conversation_id, by=agent, body=body, client_id=None)
    return int(message["id"])


def worker_for(
    store: Store, service: InboxService, channel: ScriptedChannel, tmp_path: Path, **config: float
) -> OutboxWorker:
    settings = dataclasses.replace(FAST, **config)  # type: ignore[arg-type]
    return OutboxWorker(store, service, BlobStore(tmp_path), {"api": channel}, settings)


async def test_sent_reaches_agents_as_message_updated(
    store: Store, service: InboxService, recorder: Recorder, tmp_path: Path
) -> None:
    message_id = await queued_reply(store, service)
    channel = ScriptedChannel(Receipt("ext-9"))
    async with running(worker_for(store, service, channel, tmp_path)):
        row = await wait_status(store, message_id, "sent")
    assert row.external_id == "ext-9"
    assert channel.sent[0].text == "Thanks!" and channel.sent[0].recipient is not None
    updates = [e for e in recorder.events if e.type == "message.updated"]
    assert [e.data["status"] for e in updates] == ["sent"]


async def test_permanent_failure_keeps_the_reason(store: Store, service: InboxService, tmp_path: Path) -> None:
    message_id = await queued_reply(store, service)
    channel = ScriptedChannel(DeliveryError("recipient rejected: 550 no such user"))
    async with running(worker_for(store, service, channel, tmp_path)):
        row = await wait_status(store, message_id, "failed")
    assert row.error == "recipient rejected: 550 no such user"
    assert len(channel.sent) == 1


async def test_transient_failures_are_retried_then_sent_with_same_delivery_id(
    store: Store, service: InboxService, tmp_path: Path
) -> None:
    message_id = await queued_reply(store, service)
    channel = ScriptedChannel(DeliveryError("503", retry_after=0), DeliveryError("timeout", retry_after=0), Receipt())
    async with running(worker_for(store, service, channel, tmp_path)):
        await wait_status(store, message_id, "sent")
    assert len(channel.sent) == 3
    assert len({item.delivery_id for item in channel.sent}) == 1


async def test_retry_after_is_honoured(store: Store, service: InboxService, tmp_path: Path) -> None:
    message_id = await queued_reply(store, service)
    channel = ScriptedChannel(DeliveryError("429 slow down", retry_after=3600))
    before = utcnow()
    async with running(worker_for(store, service, channel, tmp_path)):
        async with asyncio.timeout(10):
            while not channel.sent:
                await asyncio.sleep(0.02)
            while True:
                async with store.session() as session:
                    row = (await session.execute(select(Outbox).where(Outbox.message_id == message_id))).scalar_one()
                if row.last_error == "429 slow down":
                    break
                await asyncio.sleep(0.02)
    assert row.next_attempt_at >= before + timedelta(seconds=3599)
    assert (await message_row(store, message_id)).status == "queued"


async def test_gives_up_after_max_attempts(store: Store, service: InboxService, tmp_path: Path) -> None:
    message_id = await queued_reply(store, service)
    channel = ScriptedChannel(*[DeliveryError("down", retry_after=0)] * 3)
    async with running(worker_for(store, service, channel, tmp_path, max_attempts=3)):
        row = await wait_status(store, message_id, "failed")
    assert row.error == "gave up after 3 attempts: down"


async def test_failed_message_can_be_retried(store: Store, service: InboxService, tmp_path: Path) -> None:
    message_id = await queued_reply(store, service)
    channel = ScriptedChannel(DeliveryError("bad address"), Receipt())
    async with running(worker_for(store, service, channel, tmp_path)):
        await wait_status(store, message_id, "failed")
        view = await service.retry(message_id)
        assert view["status"] == "queued"
        await wait_status(store, message_id, "sent")


async def test_queued_rows_are_resumed_by_a_new_worker(store: Store, service: InboxService, tmp_path: Path) -> None:
    message_id = await queued_reply(store, service)  # nobody was running: it stays queued
    channel = ScriptedChannel()
    async with running(worker_for(store, service, channel, tmp_path)):
        await wait_status(store, message_id, "sent")
    assert len(channel.sent) == 1


async def test_inbox_of_a_disabled_channel_fails_clearly(store: Store, service: InboxService, tmp_path: Path) -> None:
    inbox = await make_inbox(store, channel="telegram")
    agent = await make_agent(store, role="admin")
    delivered = await service.deliver(inbound(inbox))
    message, _ = await service.reply(delivered.conversation_id, by=agent, body="hi", client_id=None)
    async with running(worker_for(store, service, ScriptedChannel(), tmp_path)):
        row = await wait_status(store, message["id"], "failed")
    assert row.error == "channel 'telegram' is not enabled"
