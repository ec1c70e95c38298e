"""Backpressure under overload: the host's admission limit, and what each sender is told when it is reached.

A `Gate` stalls the store so deliveries pile up in flight; with `[admission] max_deliveries_in_flight` set low,
the next message is refused at once with `retry_after` (webchat: a `slow_down` frame; HTTP ingest: 503 +
Retry-After), nothing is written for it, the refusal is counted in `/metrics`, and once the store moves again
every message — acknowledged at first or refused and resent — is stored and reaches the agents exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from channels.base import Identity, IdentityKind, Inbound, Overloaded
from inbox.config import AdmissionConfig
from inbox.gateway.admission import Admission
from inbox.gateway.host import CoreHost
from inbox.service import InboxService
from inbox.store.engine import Store
from inbox.store.models import Message
from tests.factories import make_inbox
from tests.overload import Gate, metric, slow_down
from tests.poll import eventually
from tests.servers.app import LiveServer, live_server, make_config
from tests.webchat_client import Socket, admin_with_token, agent_stream, webchat_inbox, widget

BUSY = AdmissionConfig(max_deliveries_in_flight=1, retry_after_seconds=0.2, max_retry_after_seconds=0.5)


@pytest.fixture
async def busy_server(db_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    """The real app with room for one delivery in flight."""
    async with live_server(make_config(db_url, tmp_path, admission=BUSY)) as running:
        yield running


async def bodies(store: Store) -> list[str]:
    async with store.session() as session:
        return list((await session.execute(select(Message.body).order_by(col(Message.id)))).scalars())


# ── the admission count ─────────────────────────────────────────────────────────────────────────────────
@pytest.mark.parametrize(
    ("average", "jitter", "expected"),
    [
        (0.0, 0.5, 1.0),  # nothing measured yet: the base
        (4.0, 0.5, 4.0),  # deliveries take 4 s: come back when the queue has drained
        (100.0, 0.5, 30.0),  # never longer than the cap
        (4.0, 0.0, 2.0),  # spread over 0.5–1.5 times that
        (4.0, 1.0, 6.0),
    ],
)
def test_retry_after_follows_delivery_time_within_bounds(average: float, jitter: float, expected: float) -> None:
    admission = Admission(1, base_retry_after=1.0, max_retry_after=30.0, jitter=lambda: jitter)
    admission.average_seconds = average
    assert admission.retry_after() == expected


def test_slots_beyond_the_limit_are_refused_and_counted() -> None:
    now = [0.0]
    admission = Admission(2, base_retry_after=0.5, clock=lambda: now[0], jitter=lambda: 0.5)
    with admission.slot(), admission.slot():
        assert admission.in_flight == 2
        with pytest.raises(Overloaded) as refused, admission.slot():
            raise AssertionError("a third slot must not be granted")
        assert refused.value.retry_after == 0.5
        now[0] = 3.0  # both deliveries took 3 s
    assert (admission.in_flight, admission.admitted, admission.refused) == (0, 2, 1)
    assert admission.average_seconds > 0.5
    with Admission(0).slot():  # 0: no limit
        pass


async def test_host_refuses_beyond_the_limit_and_writes_nothing(store: Store, service: InboxService) -> None:
    inbox = await make_inbox(store)
    assert inbox.id is not None
    host = CoreHost(store, service, admission=Admission(1, base_retry_after=0.2))
    gate = Gate(service)

    def inbound(external_id: str) -> Inbound:
        sender = Identity(IdentityKind.EXTERNAL, f"{inbox.id}:u-{external_id}", name="Uma")
        return Inbound(inbox.id or 0, external_id, f"sender:{external_id}", sender, f"body {external_id}")

    try:
        first = asyncio.create_task(host.deliver(inbound("m1")))
        await eventually(lambda: gate.waiting == 1, what="the first delivery is in flight")
        with pytest.raises(Overloaded) as refused:
            await host.deliver(inbound("m2"))
        assert 0.1 <= refused.value.retry_after <= 0.3  # the base, spread over 0.5–1.5 times
        gate.release()
        assert (await first).created
    finally:
        gate.close()
    assert await bodies(store) == ["body m1"]  # nothing was written for the refused message
    assert (await host.deliver(inbound("m2"))).created  # its resend is stored
    assert (host.admission.admitted, host.admission.refused, host.admission.in_flight) == (2, 1, 0)


# ── webchat ─────────────────────────────────────────────────────────────────────────────────────────────
async def send_until_acked(socket: Socket, frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the widget does: send in order; on `slow_down` wait `retry_after` and send the rest again."""
    acks: dict[str, dict[str, Any]] = {}
    async with asyncio.timeout(20):
        while len(acks) < len(frames):
            pending = [frame for frame in frames if frame["client_id"] not in acks]
            for frame in pending:
                await socket.send(frame)
            wait = 0.0
            for _ in pending:
                answer = await socket.expect(lambda f: f.get("type") in ("ack", "error"))
                if answer["type"] == "ack":
                    acks[answer["client_id"]] = answer
                else:
                    assert answer["code"] == "slow_down", answer
                    wait = max(wait, float(answer["retry_after"]))
            await asyncio.sleep(wait)  # the protocol's own delay, as told by the server
    return [acks[frame["client_id"]] for frame in frames]


async def test_widget_gets_slow_down_and_every_message_reaches_the_agent_once(busy_server: LiveServer) -> None:
    server = busy_server
    store = server.state.store
    inbox = await webchat_inbox(server)
    _, token = await admin_with_token(store)
    gate = Gate(server.state.service)
    try:
        async with (
            agent_stream(server, token) as stream,
            widget(server, inbox.public_key, hello={}) as first,
            widget(server, inbox.public_key, hello={}) as second,
        ):
            await first.expect_type("welcome")
            await second.expect_type("welcome")
            await first.send({"type": "message", "client_id": "a-1", "body": "held in the store"})
            await eventually(lambda: gate.waiting == 1, what="a-1 is in flight")
            # The slot is taken: the next visitor's messages are refused at once, each with its client_id.
            await second.send({"type": "message", "client_id": "b-1", "body": "second visitor, first"})
            await second.send({"type": "message", "client_id": "b-2", "body": "second visitor, second"})
            refused = [await second.expect(lambda f: slow_down(f, "b-1"))]
            refused.append(await second.expect(lambda f: slow_down(f, "b-2")))
            assert all(frame["retry_after"] > 0 and frame["detail"] for frame in refused)
            assert await bodies(store) == []  # nothing written for the refused ones (a-1 is still held)
            assert await metric(server.url, "switchboard_deliveries_in_flight") == 1
            # The core refused b-1; b-2, on the wire behind it, was held back by the socket (to keep the
            # visitor's order) without reaching the core.
            assert await metric(server.url, "switchboard_deliveries_refused_total") == 1
            assert await metric(server.url, "switchboard_deliveries_limit") == 1

            gate.release()
            assert (await first.expect_type("ack"))["client_id"] == "a-1"
            b1 = {"type": "message", "client_id": "b-1", "body": "second visitor, first"}
            b2 = {"type": "message", "client_id": "b-2", "body": "second visitor, second"}
            acks = await send_until_acked(second, [b1, b2])
            assert acks[0]["message"]["id"] < acks[1]["message"]["id"]  # the visitor's order is kept
            seen: list[str] = []
            async with asyncio.timeout(10):
                while len(seen) < 3:
                    frame = await stream.expect_type("message.created")
                    seen.append(frame["data"]["body"])
        assert sorted(seen) == sorted(["held in the store", "second visitor, first", "second visitor, second"])
        assert sorted(await bodies(store)) == sorted(seen)  # each exactly once
        assert await metric(server.url, "switchboard_deliveries_in_flight") == 0
        assert await metric(server.url, "switchboard_deliveries_admitted_total") == 3
    finally:
        gate.close()


# ── the API channel's HTTP ingest ───────────────────────────────────────────────────────────────────────
async def test_http_ingest_answers_503_with_retry_after_and_stores_each_retry_once(busy_server: LiveServer) -> None:
    server = busy_server
    inbox = await make_inbox(server.state.store)
    url = f"/api/v1/inboxes/{inbox.id}/incoming"
    auth = {"Authorization": f"Bearer {inbox.secret}"}

    def payload(index: int) -> dict[str, Any]:
        return {"external_id": f"x{index}", "sender": {"id": f"u{index}", "name": "Uma"}, "body": f"message {index}"}

    gate = Gate(server.state.service)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
            held = asyncio.create_task(http.post(url, json=payload(0), headers=auth))
            await eventually(lambda: gate.waiting == 1, what="message 0 is in flight")
            burst = await asyncio.gather(*(http.post(url, json=payload(i), headers=auth) for i in range(1, 6)))
            for response in burst:
                assert response.status_code == 503, response.text
                assert int(response.headers["retry-after"]) >= 1
                error = response.json()["error"]
                assert error["code"] == "slow_down" and error["retry_after"] > 0 and error["detail"]
            assert await bodies(server.state.store) == []
            gate.release()
            assert (await held).status_code == 201
            for index in range(1, 6):  # the sender retries (no delivery is in flight now): each stored once
                assert (await http.post(url, json=payload(index), headers=auth)).status_code == 201
    finally:
        gate.close()
    assert sorted(await bodies(server.state.store)) == [f"message {i}" for i in range(6)]
    assert await metric(server.url, "switchboard_deliveries_refused_total") == 5


async def test_widget_upload_answers_503_slow_down_and_its_retry_is_stored_once(busy_server: LiveServer) -> None:
    server = busy_server
    inbox = await webchat_inbox(server)
    gate = Gate(server.state.service)
    try:
        async with (
            widget(server, inbox.public_key, hello={}) as first,
            widget(server, inbox.public_key, hello={}) as second,
            httpx.AsyncClient(base_url=server.url, timeout=20) as http,
        ):
            await first.expect_type("welcome")
            headers = {"Authorization": f"Bearer {(await second.expect_type('welcome'))['upload_token']}"}

            async def upload() -> httpx.Response:
                return await http.post(
                    "/widget/upload",
                    params={"key": inbox.public_key},
                    headers=headers,
                    files={"file": ("note.txt", b"order 555", "text/plain")},
                    data={"client_id": "f-1", "body": "the file"},
                )

            await first.send({"type": "message", "client_id": "a-1", "body": "held in the store"})
            await eventually(lambda: gate.waiting == 1, what="a-1 is in flight")
            refused = await upload()
            assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1
            assert refused.json()["error"]["code"] == "slow_down" and refused.json()["error"]["retry_after"] > 0
            gate.release()
            await first.expect_type("ack")
            stored = await upload()  # the widget sends the same client_id again
            assert stored.status_code == 201, stored.text
            assert (await upload()).json()["message"]["id"] == stored.json()["message"]["id"]
    finally:
        gate.close()
    assert sorted(await bodies(server.state.store)) == ["held in the store", "the file"]
