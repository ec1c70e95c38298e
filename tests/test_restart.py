"""Durability across a crash: replies queued when the server is SIGKILLed are delivered exactly once after restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from sqlmodel import select

from inbox.realtime.broker import LocalBroker
from inbox.service import InboxService
from inbox.store.blobs import BlobStore
from inbox.store.engine import Store
from inbox.store.migrate import upgrade
from inbox.store.models import Message, Outbox
from tests.factories import make_agent, make_inbox
from tests.servers.app import ServerProcess, free_port
from tests.servers.webhook import webhook_receiver


def write_config(path: Path, db_url: str, state: Path) -> Path:
    path.write_text(
        f"""
[server]
secret_key = "restart-test"
state_directory = "{state}"

[database]
url = "{db_url}"

[storage]
directory = "{state / "attachments"}"

[outbox]
backoff_base_seconds = 0.2
backoff_max_seconds = 0.5
lease_seconds = 2.0
poll_interval_seconds = 0.1
"""
    )
    return path


async def test_sigkill_with_queued_replies_and_dead_webhook_delivers_each_once(db_url: str, tmp_path: Path) -> None:
    store = Store(db_url)
    await upgrade(store)
    hook_port = free_port()
    inbox = await make_inbox(store, webhook_url=f"http://127.0.0.1:{hook_port}/hook")
    agent = await make_agent(store, role="admin")
    server = ServerProcess(write_config(tmp_path / "config.toml", db_url, tmp_path / "state"), free_port())
    await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            response = await http.post(
                f"/api/v1/inboxes/{inbox.id}/incoming",
                headers={"Authorization": f"Bearer {inbox.secret}"},
                json={"external_id": "k1", "sender": {"id": "c9", "name": "Kim"}, "body": "Help!"},
            )
        conversation_id = response.json()["conversation_id"]
        # Agent replies written by another process (this one), as the API would.
        service = InboxService(store, LocalBroker(), BlobStore(tmp_path / "blobs"))
        ids = []
        for n in range(3):
            message, _ = await service.reply(conversation_id, by=agent, body=f"reply {n}", client_id=f"r-{n}")
            ids.append(message["id"])
        # The server is trying and failing: the webhook is down.
        async with asyncio.timeout(20):
            while True:
                async with store.session() as session:
                    rows = list((await session.execute(select(Outbox))).scalars())
                if len(rows) == 3 and all(row.attempts >= 1 and row.last_error for row in rows):
                    break
                await asyncio.sleep(0.05)
        server.kill()
        async with store.session() as session:
            statuses = [(await session.get(Message, i)).status for i in ids]  # type: ignore[union-attr]
        assert statuses == ["queued"] * 3

        await asyncio.to_thread(server.start)
        async with webhook_receiver(port=hook_port) as receiver:
            await receiver.wait_for(3, timeout=30)
            async with asyncio.timeout(20):
                while True:
                    async with store.session() as session:
                        done = [(await session.get(Message, i)).status for i in ids]  # type: ignore[union-attr]
                    if done == ["sent"] * 3:
                        break
                    await asyncio.sleep(0.05)
            received = list(receiver.received)
        deliveries = [post.headers["x-switchboard-delivery"] for post in received]
        assert len(deliveries) == 3 and len(set(deliveries)) == 3
    finally:
        server.stop()
        await store.close()
