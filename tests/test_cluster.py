"""Two `switchboard serve` processes sharing PostgreSQL and Redis (real servers, real websockets).

An agent on one process sees what arrived through the other and answers it; a visitor's tabs on the two
processes show each other's messages; SIGKILL of one process during a
burst loses and doubles nothing; a Redis restart mid-run leaves no gap in an open agent stream.
In the burst test the test itself also acts as a third process writing agent replies (an `InboxService` on a
`RedisBroker`), so replies keep coming while a server dies.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlmodel import col
from websockets.asyncio.client import connect

from inbox.realtime.redis_broker import RedisBroker
from inbox.service import InboxService
from inbox.store.blobs import BlobStore
from inbox.store.engine import Store
from inbox.store.migrate import upgrade
from inbox.store.models import Agent, Cursor, Message
from tests.conftest import fresh_postgres_database
from tests.factories import make_inbox
from tests.poll import eventually
from tests.servers.app import ServerProcess, free_port
from tests.servers.cluster import AgentStream, Seed, agent_stream, seed, write_config
from tests.servers.redis import RedisServer
from tests.servers.webhook import WebhookReceiver, webhook_receiver
from tests.webchat_client import Socket

LEASE_SECONDS = 2.0


@dataclass
class Cluster:
    store: Store
    seed: Seed
    redis: RedisServer
    receiver: WebhookReceiver
    processes: list[ServerProcess]
    replier: InboxService

    def ws(self, process: ServerProcess) -> str:
        return process.url.replace("http://", "ws://")

    async def agent(self) -> Agent:
        async with self.store.session() as session:
            found = await session.get(Agent, self.seed.agent_id)
        assert found is not None
        return found


@pytest.fixture
async def cluster(postgres_url_only: str, own_redis: RedisServer, tmp_path: Path) -> AsyncIterator[Cluster]:
    db_url = await fresh_postgres_database(postgres_url_only)
    store = Store(db_url)
    await upgrade(store)
    prefix = uuid.uuid4().hex[:8]
    async with webhook_receiver() as receiver:
        seeded = await seed(store, webhook_url=receiver.url)
        processes = []
        for name in ("a", "b"):
            port = free_port()
            path = write_config(
                tmp_path / f"{name}.toml",
                db_url=db_url,
                redis_url=own_redis.url,
                state_dir=tmp_path / name,
                port=port,
                prefix=prefix,
                lease_seconds=LEASE_SECONDS,
            )
            processes.append(ServerProcess(path, port))
        broker = RedisBroker(own_redis.url, prefix=prefix, reconnect_max_seconds=0.5)
        await broker.start()
        try:
            await asyncio.gather(*(asyncio.to_thread(process.start) for process in processes))
            yield Cluster(
                store, seeded, own_redis, receiver, processes, InboxService(store, broker, BlobStore(tmp_path))
            )
        finally:
            await asyncio.gather(*(asyncio.to_thread(process.stop) for process in processes))
            await broker.stop()
            await store.close()


async def post_incoming(http: httpx.AsyncClient, process: ServerProcess, seeded: Seed, number: int) -> httpx.Response:
    return await http.post(
        f"{process.url}/api/v1/inboxes/{seeded.inbox_id}/incoming",
        headers={"Authorization": f"Bearer {seeded.inbox_secret}"},
        json={"external_id": f"m-{number}", "sender": {"id": f"customer-{number}"}, "body": f"message {number}"},
    )


def incoming(stream: AgentStream) -> list[str]:
    return [
        frame["data"]["external_id"]
        for frame in stream.events("message.created")
        if frame["data"]["kind"] == "incoming"
    ]


def event_ids(stream: AgentStream) -> list[int]:
    return [frame["id"] for frame in stream.events()]


async def count_messages(store: Store, kind: str) -> int:
    async with store.session() as session:
        query = select(func.count()).select_from(Message).where(col(Message.kind) == kind)
        return int((await session.execute(query)).scalar_one())


async def test_agent_on_one_process_sees_a_message_arriving_through_the_other_and_answers(cluster: Cluster) -> None:
    a, b = cluster.processes
    async with agent_stream(cluster.ws(a), cluster.seed.token) as agent, httpx.AsyncClient() as http:
        response = await post_incoming(http, b, cluster.seed, 1)
        assert response.status_code == 201, response.text
        await eventually(lambda: incoming(agent) == ["m-1"], what="the message reached the agent on A")
        conversation_id = response.json()["conversation_id"]
        answered = await http.post(  # the agent answers through process A's HTTP API
            f"{a.url}/api/v1/conversations/{conversation_id}/messages",
            headers={"Authorization": f"Bearer {cluster.seed.token}"},
            json={"body": "Thanks, on it", "kind": "outgoing", "client_id": "reply-1"},
        )
        assert answered.status_code == 201, answered.text
        reply = answered.json()

        def reply_sent() -> bool:
            return any(
                frame["data"]["id"] == reply["id"] and frame["data"]["status"] == "sent"
                for frame in agent.events("message.updated")
            )

        await eventually(reply_sent, within=10, what="the reply was sent and the agent told")
    assert cluster.receiver.message_ids() == Counter({reply["id"]: 1})


async def lease_holder_pid(store: Store, key: str) -> int | None:
    async with store.session() as session:
        row = await session.get(Cursor, f"lease:{key}")
    return int(row.value.split(":")[1]) if row is not None else None


async def test_sigkill_during_a_burst_loses_and_doubles_nothing(cluster: Cluster) -> None:
    total = 120
    await eventually(lambda: lease_holder_pid(cluster.store, "timer:snooze"), what="someone runs the snooze timer")
    holder = await lease_holder_pid(cluster.store, "timer:snooze")
    victim = next(p for p in cluster.processes if p.process is not None and p.process.pid == holder)
    survivor = next(p for p in cluster.processes if p is not victim)
    agent = await cluster.agent()
    accepted: dict[int, int] = {}  # message number -> conversation id
    gate = asyncio.Semaphore(8)

    async def send(http: httpx.AsyncClient, number: int) -> None:
        async with gate:
            target = victim if number % 2 == 0 else survivor
            for _attempt in range(100):
                try:
                    response = await post_incoming(http, target, cluster.seed, number)
                    if response.status_code in (200, 201):
                        accepted[number] = response.json()["conversation_id"]
                        break
                except httpx.TransportError:
                    pass  # the process died under us: the client retries elsewhere, same external_id
                target = survivor
                await asyncio.sleep(0.05)
            await cluster.replier.reply(
                accepted[number], by=agent, body=f"answer {number}", client_id=f"reply-{number}"
            )

    async def kill_midway() -> None:
        await eventually(lambda: len(accepted) >= total // 3, within=30)
        victim.kill()

    async with (
        agent_stream(cluster.ws(victim), cluster.seed.token) as on_victim,
        agent_stream(cluster.ws(survivor), cluster.seed.token) as on_survivor,
        httpx.AsyncClient(timeout=10) as http,
    ):
        await asyncio.gather(kill_midway(), *(send(http, number) for number in range(total)))
        await asyncio.wait_for(on_victim.closed.wait(), 10)
        # The agent whose process died reconnects to the survivor, resuming after the last id it saw.
        on_victim.ws_url = cluster.ws(survivor)
        await on_victim.connect(after=on_victim.last_id)
        expected = sorted(f"m-{number}" for number in range(total))
        for stream in (on_victim, on_survivor):
            await eventually(lambda s=stream: sorted(incoming(s)) == expected, within=20, what="every message seen")
            ids = event_ids(stream)
            assert len(ids) == len(set(ids)), "an event reached an agent twice"
            assert ids == sorted(ids), "events reached an agent out of order"

    assert await count_messages(cluster.store, "incoming") == total
    assert await count_messages(cluster.store, "outgoing") == total

    async def all_sent() -> bool:
        async with cluster.store.session() as session:
            query = select(func.count()).select_from(Message).where(col(Message.status) == "sent")
            return int((await session.execute(query)).scalar_one()) == total

    await eventually(all_sent, within=30, what="every reply sent")
    delivered = cluster.receiver.message_ids()
    assert len(delivered) == total
    # A reply the dead process had handed to the webhook but not yet marked sent goes out again after
    # its claim lease, with the same X-Switchboard-Delivery id, so the receiver can drop the repeat.
    deliveries_per_message: dict[int, set[str]] = {}
    for item in cluster.receiver.deliveries:
        deliveries_per_message.setdefault(int(item["body"]["message"]["id"]), set()).add(item["delivery_id"])
    assert all(len(ids) == 1 for ids in deliveries_per_message.values())
    assert sum(count - 1 for count in delivered.values()) <= 8  # at most one outbox batch in flight
    # The once-per-cluster timers moved to the survivor within a few lease periods.
    await eventually(
        lambda: _held_by(cluster.store, survivor), within=LEASE_SECONDS * 4, what="the survivor took the timers"
    )


async def _held_by(store: Store, process: ServerProcess) -> bool:
    assert process.process is not None
    return await lease_holder_pid(store, "timer:snooze") == process.process.pid


async def test_redis_restart_mid_run_leaves_no_gap(cluster: Cluster) -> None:
    a, b = cluster.processes
    total = 60
    async with agent_stream(cluster.ws(a), cluster.seed.token) as agent, httpx.AsyncClient(timeout=30) as http:
        for number in range(total):
            if number == total // 3:
                await asyncio.to_thread(cluster.redis.stop)
            if number == 2 * total // 3:  # what was published while Redis was down never reached A via Redis
                await asyncio.to_thread(cluster.redis.start)
            response = await post_incoming(http, b, cluster.seed, number)
            assert response.status_code == 201, response.text
        expected = sorted(f"m-{number}" for number in range(total))
        await eventually(lambda: sorted(incoming(agent)) == expected, within=20, what="the agent caught up")
        assert not agent.closed.is_set(), "the agent had to reconnect"
        ids = event_ids(agent)
        assert ids == sorted(set(ids))


async def test_a_visitor_tab_on_one_process_shows_what_their_tab_on_the_other_sent(cluster: Cluster) -> None:
    """Behind a load balancer a visitor's two tabs may land on different processes: each shows what the
    other sent, once; a tab is never sent its own message twice."""
    a, b = cluster.processes
    inbox = await make_inbox(cluster.store, channel="webchat", name="Website")

    @asynccontextmanager
    async def tab(process: ServerProcess, token: str | None) -> AsyncIterator[tuple[Socket, str]]:
        async with connect(
            f"{cluster.ws(process)}/widget/ws?key={inbox.public_key}",
            additional_headers={"Origin": process.url},
            proxy=None,
        ) as connection:
            socket = Socket(connection)
            await socket.send({"type": "hello", "visitor_token": token, "after": None, "identity": None})
            welcome = await socket.expect_type("welcome")
            yield socket, str(welcome["visitor_token"])

    async with tab(a, None) as (first, token), tab(b, token) as (second, _):
        await first.send({"type": "message", "client_id": "from-a", "body": "sent in the tab on process a"})
        ack = await first.expect_type("ack")
        shown = await second.expect(lambda frame: frame.get("type") == "message")
        assert shown["message"]["id"] == ack["message"]["id"]
        assert shown["message"]["body"] == "sent in the tab on process a"
        assert shown["message"]["author"] == "visitor" and shown["message"]["client_id"] == "from-a"
        await second.send({"type": "message", "client_id": "from-b", "body": "and one from process b"})
        answer = await second.expect_type("ack")
        echoed = await first.expect(lambda frame: frame.get("type") == "message")
        assert echoed["message"]["id"] == answer["message"]["id"]
        # Neither tab gets its own message pushed back on top of its ack.
        await first.nothing(lambda frame: frame.get("message", {}).get("id") == ack["message"]["id"])
        await second.nothing(lambda frame: frame.get("message", {}).get("id") == answer["message"]["id"])
