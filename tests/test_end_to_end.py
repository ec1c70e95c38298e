"""Issue 2's whole path over real HTTP and websockets: API channel in, agent stream, reply through the API,
signed webhook out — exactly once."""

from __future__ import annotations

import json
import uuid

import httpx

from channels.api import sign
from tests.factories import add_member, make_agent, make_inbox, make_token
from tests.servers.app import LiveServer
from tests.servers.webhook import webhook_receiver
from tests.streams import StreamClient


async def test_inbound_to_agent_to_reply_to_webhook(server: LiveServer) -> None:
    store = server.state.store
    async with webhook_receiver() as receiver:
        inbox = await make_inbox(store, webhook_url=receiver.url)
        ann = await make_agent(store, email="ann@example.test", name="Ann")
        outsider = await make_agent(store, email="out@example.test", name="Out")
        await add_member(store, inbox, ann)
        token = await make_token(store, ann)
        stream = await StreamClient.open(server.ws_url, token)
        other = await StreamClient.open(server.ws_url, await make_token(store, outsider))
        await stream.until("ready")
        await other.until("ready")
        async with httpx.AsyncClient(base_url=server.url) as http:
            incoming = await http.post(
                f"/api/v1/inboxes/{inbox.id}/incoming",
                headers={"Authorization": f"Bearer {inbox.secret}"},
                json={"external_id": "order-77", "sender": {"id": "cust-5", "name": "Dana"}, "body": "Refund?"},
            )
            assert incoming.status_code == 201
            created = await stream.until("message.created")
            assert created["data"]["body"] == "Refund?" and created["data"]["sender"]["name"] == "Dana"
            conversation_id = created["data"]["conversation_id"]

            client_id = str(uuid.uuid4())
            reply = await http.post(
                f"/api/v1/conversations/{conversation_id}/messages",
                headers={"Authorization": f"Bearer {token}"},
                json={"body": "Refund issued.", "kind": "outgoing", "client_id": client_id},
            )
            assert reply.status_code == 201, reply.text
            assert reply.json()["status"] == "queued"
            queued = await stream.until("message.created")
            assert queued["data"]["id"] == reply.json()["id"] and queued["data"]["status"] == "queued"
            sent = await stream.until("message.updated")
            assert sent["data"]["id"] == reply.json()["id"] and sent["data"]["status"] == "sent"

            again = await http.post(
                f"/api/v1/conversations/{conversation_id}/messages",
                headers={"Authorization": f"Bearer {token}"},
                json={"body": "Refund issued.", "kind": "outgoing", "client_id": client_id},
            )
            assert again.status_code == 200 and again.json()["id"] == reply.json()["id"]
        assert [f for f in await other.drain() if "id" in f] == [], "an agent outside the inbox sees none of it"
        await stream.drain()
        assert len(receiver.received) == 1, "exactly one POST for one reply"
        post = receiver.received[0]
        assert post.headers["x-switchboard-signature"] == sign(
            inbox.secret, post.headers["x-switchboard-timestamp"], post.body
        )
        assert json.loads(post.body)["message"]["body"] == "Refund issued."
        await stream.close()
        await other.close()
