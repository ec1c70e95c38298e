"""The widget protocol (DESIGN §4) over real websockets against the real server, on both databases."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from channels.webchat.channel import SIGNALS_PER_MINUTE
from channels.webchat.protocol import identity_hash
from inbox.realtime import events
from inbox.store.models import Contact, Message
from tests.servers.app import LiveServer
from tests.webchat_client import admin_with_token, agent_stream, webchat_inbox, widget


async def count_messages(server: LiveServer) -> int:
    async with server.state.store.session() as session:
        return int((await session.execute(select(func.count()).select_from(Message))).scalar_one())


async def test_hello_gets_a_token_and_empty_history(server: LiveServer) -> None:
    inbox = await webchat_inbox(server)
    async with widget(server, inbox.public_key, hello={}) as socket:
        welcome = await socket.expect_type("welcome")
    assert welcome["visitor_token"] and welcome["messages"] == []
    assert welcome["verified"] is False and welcome["agents_online"] is False
    assert welcome["upload_token"]


async def test_message_is_acked_and_stored_once_per_client_id(server: LiveServer) -> None:
    inbox = await webchat_inbox(server)
    async with widget(server, inbox.public_key, hello={}) as socket:
        token = (await socket.expect_type("welcome"))["visitor_token"]
        await socket.send({"type": "message", "client_id": "c-1", "body": "Hello there"})
        first = await socket.expect_type("ack")
        await socket.send({"type": "message", "client_id": "c-1", "body": "Hello there"})
        second = await socket.expect_type("ack")
    assert first["client_id"] == "c-1" and first["message"]["body"] == "Hello there"
    assert first["message"]["author"] == "visitor" and first["message"]["client_id"] == "c-1"
    assert second["message"]["id"] == first["message"]["id"]
    # A resend after a reconnect (same visitor, same client_id) is still the same message.
    async with widget(server, inbox.public_key, hello={"visitor_token": token}) as socket:
        await socket.expect_type("welcome")
        await socket.send({"type": "message", "client_id": "c-1", "body": "Hello there"})
        third = await socket.expect_type("ack")
    assert third["message"]["id"] == first["message"]["id"]
    assert await count_messages(server) == 1


async def test_agent_reply_reaches_the_visitor_live_and_history_after_reconnect(server: LiveServer) -> None:
    inbox = await webchat_inbox(server)
    agent, _ = await admin_with_token(server.state.store)
    async with widget(server, inbox.public_key, hello={}) as socket:
        token = (await socket.expect_type("welcome"))["visitor_token"]
        await socket.send({"type": "message", "client_id": "c-1", "body": "Is it in stock?"})
        ack = await socket.expect_type("ack")
        conversation_id = ack["message"]["id"] and (await _conversation_of(server, ack["message"]["id"]))
        await server.state.service.reply(conversation_id, by=agent, body="Yes, it is.", client_id="r-1")
        pushed = await socket.expect_type("message")
    assert pushed["message"]["author"] == "agent"
    assert pushed["message"]["body"] == "Yes, it is." and pushed["message"]["sender_name"] == "Ann Agent"
    await _until_status(server, pushed["message"]["id"], "sent")
    # While the visitor is away the reply is still "sent"; they read it in the next welcome.
    await server.state.service.reply(conversation_id, by=agent, body="Anything else?", client_id="r-2")
    second_id = await _until_body(server, "Anything else?")
    await _until_status(server, second_id, "sent")
    async with widget(
        server, inbox.public_key, hello={"visitor_token": token, "after": ack["message"]["id"]}
    ) as socket:
        welcome = await socket.expect_type("welcome")
    assert [m["body"] for m in welcome["messages"]] == ["Yes, it is.", "Anything else?"]
    async with widget(server, inbox.public_key, hello={"visitor_token": token}) as socket:
        full = await socket.expect_type("welcome")
    assert [m["author"] for m in full["messages"]] == ["visitor", "agent", "agent"]
    assert full["seen_up_to"] == ack["message"]["id"]  # an agent answered after it


async def test_notes_never_reach_the_widget(server: LiveServer) -> None:
    inbox = await webchat_inbox(server)
    agent, _ = await admin_with_token(server.state.store)
    async with widget(server, inbox.public_key, hello={}) as socket:
        token = (await socket.expect_type("welcome"))["visitor_token"]
        await socket.send({"type": "message", "client_id": "c-1", "body": "Hi"})
        ack = await socket.expect_type("ack")
        conversation_id = await _conversation_of(server, ack["message"]["id"])
        await server.state.service.add_note(conversation_id, by=agent, body="internal: VIP", client_id="n-1")
        await socket.nothing(lambda frame: frame.get("type") == "message")
    async with widget(server, inbox.public_key, hello={"visitor_token": token}) as socket:
        welcome = await socket.expect_type("welcome")
    assert [m["body"] for m in welcome["messages"]] == ["Hi"]


async def test_two_tabs_of_one_visitor_stay_in_sync(server: LiveServer) -> None:
    inbox = await webchat_inbox(server)
    agent, _ = await admin_with_token(server.state.store)
    async with widget(server, inbox.public_key, hello={}) as tab_a:
        token = (await tab_a.expect_type("welcome"))["visitor_token"]
        async with widget(server, inbox.public_key, hello={"visitor_token": token}) as tab_b:
            await tab_b.expect_type("welcome")
            await tab_a.send({"type": "message", "client_id": "c-1", "body": "from tab A"})
            ack = await tab_a.expect_type("ack")
            mirrored = await tab_b.expect_type("message")
            assert mirrored["message"]["id"] == ack["message"]["id"] and mirrored["message"]["client_id"] == "c-1"
            conversation_id = await _conversation_of(server, ack["message"]["id"])
            await server.state.service.reply(conversation_id, by=agent, body="to both", client_id="r-1")
            for tab in (tab_a, tab_b):
                pushed = await tab.expect(lambda f: f.get("type") == "message" and f["message"]["author"] == "agent")
                assert pushed["message"]["body"] == "to both"


async def test_visitor_message_and_typing_reach_the_agent_stream_and_agent_typing_reaches_the_widget(
    server: LiveServer,
) -> None:
    inbox = await webchat_inbox(server)
    _, token = await admin_with_token(server.state.store)
    async with agent_stream(server, token) as agent, widget(server, inbox.public_key, hello={}) as socket:
        welcome = await socket.expect_type("welcome")
        assert welcome["agents_online"] is True
        await socket.send({"type": "message", "client_id": "c-1", "body": "Need help"})
        await socket.expect_type("ack")
        created = await agent.expect(lambda f: f.get("type") == "message.created")
        assert created["data"]["body"] == "Need help" and created["data"]["kind"] == "incoming"
        conversation_id = created["data"]["conversation_id"]
        await socket.send({"type": "typing", "active": True})
        typing = await agent.expect(lambda f: f.get("type") == "typing")
        assert typing == {"type": "typing", "sender": "contact", "active": True, "conversation_id": conversation_id}
        await agent.send({"type": "typing", "conversation_id": conversation_id, "active": True})
        shown = await socket.expect_type("typing")
        assert shown == {"type": "typing", "active": True, "name": "Ann Agent"}
        # Typing into a private note is never shown to the customer.
        await agent.send({"type": "typing", "conversation_id": conversation_id, "active": True, "private": True})
        await socket.nothing(lambda f: f.get("type") == "typing")
        await agent.send({"type": "seen", "conversation_id": conversation_id, "message_id": created["data"]["id"]})
        seen = await socket.expect_type("seen")
        assert seen["message_id"] == created["data"]["id"]
        await socket.send({"type": "seen", "message_id": 1})
        echoed = await agent.expect(lambda f: f.get("type") == "seen")
        assert echoed["sender"] == "contact" and echoed["conversation_id"] == conversation_id


async def test_contact_frame_stores_name_and_email_on_the_contact(server: LiveServer) -> None:
    inbox = await webchat_inbox(server)
    async with widget(server, inbox.public_key, hello={}) as socket:
        await socket.expect_type("welcome")
        await socket.send({"type": "contact", "name": "Carol", "email": "carol@example.test"})
        await socket.expect_type("contact")
        await socket.send({"type": "message", "client_id": "c-1", "body": "Hi"})
        await socket.expect_type("ack")
        await socket.send({"type": "contact", "email": "carol.new@example.test"})
        saved = await socket.expect_type("contact")
    assert saved == {"type": "contact", "name": "Carol", "email": "carol.new@example.test"}
    async with server.state.store.session() as session:
        contact = (await session.execute(select(Contact))).scalar_one()
    assert (contact.name, contact.email) == ("Carol", "carol.new@example.test")


async def _conversation_of(server: LiveServer, message_id: int) -> int:
    async with server.state.store.session() as session:
        message = await session.get(Message, message_id)
    assert message is not None
    return message.conversation_id


async def _until_status(server: LiveServer, message_id: int, status: str) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while asyncio.get_running_loop().time() < deadline:
        async with server.state.store.session() as session:
            message = await session.get(Message, message_id)
        if message is not None and message.status == status:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"message {message_id} never became {status}")


async def _until_body(server: LiveServer, body: str) -> int:
    deadline = asyncio.get_running_loop().time() + 10
    while asyncio.get_running_loop().time() < deadline:
        async with server.state.store.session() as session:
            found = (await session.execute(select(Message).where(Message.body == body))).scalar_one_or_none()
        if found is not None and found.id is not None:
            return found.id
        await asyncio.sleep(0.02)
    raise AssertionError(f"no message {body!r}")


__all__ = ["identity_hash"]


async def test_a_typing_flood_is_cut_to_the_signal_limit(server: LiveServer) -> None:
    inbox = await webchat_inbox(server)
    _, token = await admin_with_token(server.state.store)
    async with agent_stream(server, token) as agent, widget(server, inbox.public_key, hello={}) as socket:
        await socket.expect_type("welcome")
        await socket.send({"type": "message", "client_id": "c-0", "body": "start"})  # opens the conversation
        await socket.expect_type("ack")
        for _ in range(SIGNALS_PER_MINUTE + 30):
            await socket.send({"type": "typing", "active": True})
        await socket.send({"type": "message", "client_id": "c-1", "body": "after the flood"})
        await socket.expect_type("ack")
        await agent.expect(lambda f: f.get("type") == "message.created" and f["data"]["body"] == "after the flood")
    typing = [frame for frame in agent.frames if frame.get("type") == "typing"]
    # The bucket refills at SIGNALS_PER_MINUTE/60 per second while the flood runs, so a few more may pass.
    assert SIGNALS_PER_MINUTE <= len(typing) < SIGNALS_PER_MINUTE + 30


async def test_a_reply_sent_by_another_process_reaches_the_socket_through_the_broker(server: LiveServer) -> None:
    """With several server processes the outbox of one may send a reply whose visitor is connected to another;
    that process pushes it when the `message.updated` (sent) event arrives. Here the event log's real event is
    replayed into the channel as another process's broker would deliver it."""
    inbox = await webchat_inbox(server)
    agent, _ = await admin_with_token(server.state.store)
    channel = server.state.channels["webchat"]
    async with widget(server, inbox.public_key, hello={}) as socket:
        await socket.expect_type("welcome")
        await socket.send({"type": "message", "client_id": "c-1", "body": "Hi"})
        conversation_id = await _conversation_of(server, (await socket.expect_type("ack"))["message"]["id"])
        reply, _ = await server.state.service.reply(conversation_id, by=agent, body="From afar", client_id="r-1")
        await socket.expect(lambda f: f.get("type") == "message" and f["message"]["body"] == "From afar")
        await _until_status(server, reply["id"], "sent")
        async with server.state.store.session() as session:
            logged = await events.after(session, 0)
        sent = next(e for e in logged if e.type == "message.updated" and e.data["id"] == reply["id"])
        await channel.on_event(sent)  # this process pushed it itself: not again
        await socket.nothing(lambda f: f.get("type") == "message")
        channel._pushed.clear()  # as if another process's outbox had sent it
        await channel.on_event(sent)
        pushed = await socket.expect_type("message")
    assert pushed["message"]["id"] == reply["id"] and pushed["message"]["body"] == "From afar"
    assert pushed["message"]["author"] == "agent" and pushed["message"]["sender_name"] == "Ann Agent"


async def test_a_resumed_socket_with_nothing_new_still_gets_agent_typing(server: LiveServer) -> None:
    inbox = await webchat_inbox(server)
    _, token = await admin_with_token(server.state.store)
    async with widget(server, inbox.public_key, hello={}) as socket:
        visitor_token = (await socket.expect_type("welcome"))["visitor_token"]
        await socket.send({"type": "message", "client_id": "c-1", "body": "Hi"})
        ack = await socket.expect_type("ack")
    conversation_id = await _conversation_of(server, ack["message"]["id"])
    resume = {"visitor_token": visitor_token, "after": ack["message"]["id"]}
    async with agent_stream(server, token) as agent, widget(server, inbox.public_key, hello=resume) as socket:
        welcome = await socket.expect_type("welcome")
        assert welcome["messages"] == [] and welcome["conversation_id"] == conversation_id
        await agent.send({"type": "typing", "conversation_id": conversation_id, "active": True})
        assert (await socket.expect_type("typing"))["active"] is True


async def test_pong_tells_whether_an_agent_is_online(server: LiveServer) -> None:
    inbox = await webchat_inbox(server)
    _, token = await admin_with_token(server.state.store)
    async with widget(server, inbox.public_key, hello={}) as socket:
        assert (await socket.expect_type("welcome"))["agents_online"] is False
        await socket.send({"type": "ping"})
        assert (await socket.expect_type("pong"))["agents_online"] is False
        async with agent_stream(server, token):
            await socket.send({"type": "ping"})
            assert (await socket.expect_type("pong"))["agents_online"] is True
