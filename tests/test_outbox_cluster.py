"""Several outbox workers on one PostgreSQL: `FOR UPDATE SKIP LOCKED` plus the claim lease mean a burst of
replies is sent exactly once, whichever worker sends each."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import col

from channels.api import ApiChannel
from inbox.config import OutboxConfig
from inbox.gateway.host import CoreHost
from inbox.gateway.outbox import OutboxWorker
from inbox.realtime.broker import LocalBroker
from inbox.service import InboxService
from inbox.store.blobs import BlobStore
from inbox.store.engine import Store
from inbox.store.migrate import upgrade
from inbox.store.models import Message
from tests.conftest import fresh_postgres_database
from tests.factories import inbound, make_agent, make_inbox
from tests.poll import eventually
from tests.servers.webhook import webhook_receiver

REPLIES = 60


async def test_two_workers_send_each_reply_exactly_once(postgres_url_only: str, tmp_path: Path) -> None:
    url = await fresh_postgres_database(postgres_url_only)
    setup = Store(url)
    await upgrade(setup)
    blobs = BlobStore(tmp_path / "blobs")
    async with webhook_receiver() as receiver:
        inbox = await make_inbox(setup, webhook_url=receiver.url)
        agent = await make_agent(setup, role="admin")
        writer = InboxService(setup, LocalBroker(), blobs)
        stores = [Store(url) for _ in range(2)]
        workers, channels = [], []
        for own in stores:  # two "processes": own connections, own service and channel
            service = InboxService(own, LocalBroker(), blobs)
            channel = ApiChannel(CoreHost(own, service))
            channels.append(channel)
            config = OutboxConfig(concurrency=4, poll_interval_seconds=0.01, lease_seconds=30)
            workers.append(OutboxWorker(own, service, blobs, {"api": channel}, config))
        tasks = [asyncio.create_task(worker.run()) for worker in workers]
        try:
            for number in range(REPLIES):  # the burst lands while both workers poll
                delivered = await writer.deliver(inbound(inbox, f"m{number}", sender=f"s{number}"))
                await writer.reply(delivered.conversation_id, by=agent, body=f"answer {number}", client_id=None)
            await eventually(lambda: _all_sent(setup), within=30)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for channel in channels:
                await channel.close()
            for own in stores:
                await own.close()
        counts = receiver.counts()
        assert len(counts) == REPLIES
        assert set(counts.values()) == {1}
        assert sorted(receiver.message_ids().values()) == [1] * REPLIES
    await setup.close()


async def _all_sent(store: Store) -> bool:
    return await _sent(store) >= REPLIES


async def _sent(store: Store) -> int:
    async with store.session() as session:
        return int(
            (
                await session.execute(select(func.count()).select_from(Message).where(col(Message.status) == "sent"))
            ).scalar_one()
        )
