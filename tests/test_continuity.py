"""Email continuity for live chat against the real app, a real aiosmtpd sink and (for the answer) a real Dovecot.

An offline visitor with an email gets one mail with every unseen reply; a visitor who reads in the widget gets
none; a restart inside the window still sends exactly one; a visitor without email gets nothing; the answer
(APPENDed to Dovecot, read by IMAP IDLE) joins the original chat conversation, reaches the agent stream and the
widget's history. Settings are validated by the admin API.
"""

from __future__ import annotations

import email.utils
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from channels.email.thread import conversation_token
from inbox.config import ContinuityConfig, EmailConfig
from inbox.read.continuity import CURSOR
from inbox.store.engine import Store
from inbox.store.migrate import upgrade
from inbox.store.models import Agent, Continuity, Conversation, Cursor, Event, Identity, Inbox, Message, Outbox, key
from tests.email_helpers import email_inbox, eventually, raw_mail
from tests.factories import make_agent, make_inbox
from tests.servers.app import LiveServer, live_server, make_config
from tests.servers.smtp import Sink, smtp_sink
from tests.webchat_client import Socket, admin_with_token, agent_stream, widget

VISITOR = "vera@customer.test"


def config_for(db_url: str, tmp_path: Path, delay: float = 0.5) -> Any:
    return make_config(
        db_url,
        tmp_path,
        email=EmailConfig(poll_interval_seconds=3600.0, connect_timeout_seconds=5.0),
        continuity=ContinuityConfig(delay_seconds=delay, max_delay_seconds=30.0, interval_seconds=0.1),
    )


async def inboxes(store: Store, sink: Sink, **email_settings: Any) -> tuple[Inbox, Inbox]:
    """An email inbox relaying to the sink, and a chat inbox continued through it."""
    mail = await email_inbox(store, smtp_host="127.0.0.1", smtp_port=sink.port, smtp_security="plain", **email_settings)
    chat = await make_inbox(
        store,
        channel="webchat",
        name="Website",
        email_continuity_inbox_id=key(mail),
        email_continuity_chat_url="https://shop.example.test/help",
    )
    return mail, chat


async def visitor_writes(server: LiveServer, chat: Inbox, email_address: str | None) -> tuple[int, str]:
    """A visitor says hello, writes one line, maybe leaves an email, and goes away: (conversation, token)."""
    async with widget(server, chat.public_key, hello={}) as socket:
        token = (await socket.expect_type("welcome"))["visitor_token"]
        await socket.send({"type": "message", "client_id": "c1", "body": "Is my order shipped?"})
        await socket.expect_type("ack")
        if email_address:
            await socket.send({"type": "contact", "name": "Vera", "email": email_address})
            await socket.expect_type("contact")
    async with server.state.store.session() as session:
        found = (
            await session.execute(select(Conversation).where(col(Conversation.inbox_id) == key(chat)))
        ).scalar_one()
    if email_address:  # the contact frame is handled before the socket closes; wait until it is stored
        await eventually(lambda: contact_email(server.state.store, found.contact_id), lambda value: value is not None)
    return key(found), token


async def contact_email(store: Store, contact_id: int) -> str | None:
    from inbox.store.models import Contact

    async with store.session() as session:
        contact = await session.get(Contact, contact_id)
    return contact.email if contact else None


async def reply(server: LiveServer, agent: Agent, conversation_id: int, body: str) -> int:
    view, _ = await server.state.service.reply(conversation_id, by=agent, body=body, client_id=None)
    return int(view["id"])


async def event_of(store: Store, message_id: int) -> int:
    """The id of the `message.created` event of a message."""
    async with store.session() as session:
        rows = (await session.execute(select(Event).where(col(Event.type) == "message.created"))).scalars()
        return next(key(row) for row in rows if row.payload.get("id") == message_id)


async def settled(store: Store, conversation_id: int, after_event: int) -> Continuity | None:
    """The continuity row once the worker has read past `after_event` and has nothing pending."""
    async with store.session() as session:
        mark = await session.get(Cursor, CURSOR)
        row = await session.get(Continuity, conversation_id)
    if mark is None or int(mark.value) < after_event or row is None or row.due_at is not None:
        return None
    return row


async def mails_of(store: Store, conversation_id: int) -> list[Message]:
    """The continuity mails (activity lines with an outbox row) of a conversation."""
    async with store.session() as session:
        rows = (
            await session.execute(
                select(Message).where(col(Message.conversation_id) == conversation_id).order_by(col(Message.id))
            )
        ).scalars()
        return [row for row in rows if "continuity" in row.meta]


async def outbox_idle(store: Store) -> bool:
    async with store.session() as session:
        return not list((await session.execute(select(Outbox).where(col(Outbox.done) == False))).scalars())  # noqa: E712


async def test_offline_visitor_gets_one_mail_with_every_reply(db_url: str, tmp_path: Path) -> None:
    async with smtp_sink() as sink, live_server(config_for(db_url, tmp_path)) as server:
        store = server.state.store
        mail_inbox, chat = await inboxes(store, sink)
        agent = await make_agent(store, email="ann@example.test", name="Ann Agent")
        conversation_id, _ = await visitor_writes(server, chat, VISITOR)
        for line in ("It left the warehouse.", "Tracking: **ZX-1**.", "Anything else?"):
            await reply(server, agent, conversation_id, line)
        [received] = await sink.wait(1)
        [line] = await eventually(lambda: mails_of(store, conversation_id), lambda rows: rows[0].status == "sent")
        await eventually(lambda: outbox_idle(store), bool)
        assert len(sink.received) == 1

    sent = received.message
    assert received.recipients == [VISITOR] and sent["To"] == VISITOR
    assert email.utils.parseaddr(sent["From"]) == ("Ann Agent", "support@example.test")
    assert sent["Auto-Submitted"] == "auto-replied"
    assert sent["Message-ID"].startswith(f"<{conversation_token(conversation_id, mail_inbox.secret)}.")
    assert f"[#{conversation_id}]" in sent["Subject"] and "Website" in sent["Subject"]
    assert sent["In-Reply-To"] is None  # the first mail of the exchange answers nothing
    text = sent.get_body(("plain",)).get_content()
    for part in ("It left the warehouse.", "Tracking: **ZX-1**.", "Anything else?", "https://shop.example.test/help"):
        assert part in text
    assert "Is my order shipped?" not in text  # the visitor's own line is not mailed back
    assert line.external_id == sent["Message-ID"] and line.inbox_id == key(mail_inbox)
    assert line.body == f"Sent by email to {VISITOR} (3 replies the visitor had not seen)"


async def test_visitor_reading_in_the_widget_gets_no_mail(db_url: str, tmp_path: Path) -> None:
    async with smtp_sink() as sink, live_server(config_for(db_url, tmp_path, delay=1.0)) as server:
        store = server.state.store
        _, chat = await inboxes(store, sink)
        agent = await make_agent(store)
        async with widget(server, chat.public_key, hello={"identity": None}) as socket:
            await socket.expect_type("welcome")
            await socket.send({"type": "message", "client_id": "c1", "body": "Hello?"})
            await socket.expect_type("ack")
            await socket.send({"type": "contact", "name": "Vera", "email": VISITOR})
            await socket.expect_type("contact")
            async with store.session() as session:
                conversation_id = key(
                    (
                        await session.execute(select(Conversation).where(col(Conversation.inbox_id) == key(chat)))
                    ).scalar_one()
                )
            last = 0
            for line in ("Hi Vera!", "Your parcel is on its way."):
                last = await reply(server, agent, conversation_id, line)
                pushed = await see(socket, last)
                assert pushed["message"]["body"] == line
            row = await eventually(
                lambda: settled(store, conversation_id, 0), lambda found: found is not None and found.seen_up_to == last
            )
            event = await event_of(store, last)
            await eventually(lambda: settled(store, conversation_id, event), lambda found: found is not None)
        assert row is not None and row.emailed_up_to == 0
        assert await mails_of(store, conversation_id) == [] and sink.received == []


async def see(socket: Socket, message_id: int) -> dict[str, Any]:
    """Wait for the pushed reply and tell the server it was seen, as the open widget does."""
    frame = await socket.expect(lambda f: f.get("type") == "message" and f["message"]["id"] == message_id)
    await socket.send({"type": "seen", "message_id": message_id})
    return frame


async def test_restart_inside_the_window_still_sends_exactly_one_mail(db_url: str, tmp_path: Path) -> None:
    config = config_for(db_url, tmp_path, delay=2.0)
    async with smtp_sink() as sink:
        async with live_server(config) as first:
            store = first.state.store
            _, chat = await inboxes(store, sink)
            agent = await make_agent(store)
            conversation_id, _ = await visitor_writes(first, chat, VISITOR)
            last = 0
            for line in ("One.", "Two.", "Three."):
                last = await reply(first, agent, conversation_id, line)
            event = await event_of(store, last)

            async def scheduled() -> Continuity | None:
                async with store.session() as session:
                    mark = await session.get(Cursor, CURSOR)
                    row = await session.get(Continuity, conversation_id)
                return row if mark is not None and int(mark.value) >= event else None

            row = await eventually(scheduled, lambda found: found is not None and found.due_at is not None)
            assert sink.received == []  # stopped inside the window
        async with live_server(config) as second:
            store = second.state.store
            [received] = await sink.wait(1)
            await eventually(lambda: mails_of(store, conversation_id), lambda rows: rows[0].status == "sent")
            await eventually(lambda: settled(store, conversation_id, event), lambda found: found is not None)
            await eventually(lambda: outbox_idle(store), bool)
            assert len(sink.received) == 1 and len(await mails_of(store, conversation_id)) == 1
    assert row is not None
    text = received.message.get_body(("plain",)).get_content()
    assert all(line in text for line in ("One.", "Two.", "Three."))


async def test_visitor_without_email_gets_nothing(db_url: str, tmp_path: Path) -> None:
    async with smtp_sink() as sink, live_server(config_for(db_url, tmp_path)) as server:
        store = server.state.store
        _, chat = await inboxes(store, sink)
        agent = await make_agent(store)
        conversation_id, _ = await visitor_writes(server, chat, None)
        last = await reply(server, agent, conversation_id, "Hello, anyone there?")
        event = await event_of(store, last)
        row = await eventually(lambda: settled(store, conversation_id, event), lambda found: found is not None)
        assert row is not None and row.emailed_up_to == 0
        assert await mails_of(store, conversation_id) == [] and sink.received == []


async def test_settings_name_an_existing_email_inbox(server: LiveServer) -> None:
    store = server.state.store
    _, token = await admin_with_token(store)
    telegram = await make_inbox(store, channel="telegram", name="Bot")
    mail = await make_inbox(store, channel="email", name="Mail", address="s@example.test")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        created = await http.post("/api/v1/inboxes", json={"name": "Site", "channel": "webchat"})
        chat_id = created.json()["id"]
        for settings, key_name in (
            ({"email_continuity_inbox_id": key(telegram)}, "email_continuity_inbox_id"),
            ({"email_continuity_inbox_id": 99999}, "email_continuity_inbox_id"),
            ({"email_continuity_inbox_id": "1"}, "email_continuity_inbox_id"),
            ({"email_continuity_inbox_id": key(mail), "email_continuity_chat_url": "javascript:x"}, "chat_url"),
        ):
            answer = await http.patch(f"/api/v1/inboxes/{chat_id}", json={"settings": settings})
            assert answer.status_code == 422, answer.text
            assert key_name in answer.json()["error"]["detail"]
        refused = await http.post(
            "/api/v1/inboxes",
            json={"name": "Bot 2", "channel": "telegram", "settings": {"email_continuity_inbox_id": key(mail)}},
        )
        assert refused.status_code == 422 and "only a webchat inbox" in refused.json()["error"]["detail"]
        good = {"email_continuity_inbox_id": key(mail), "email_continuity_chat_url": "https://shop.example.test/"}
        answer = await http.patch(f"/api/v1/inboxes/{chat_id}", json={"settings": good})
        assert answer.status_code == 200 and answer.json()["settings"] == good
        # The email inbox that continues the chats cannot be deleted from under them.
        kept = await http.delete(f"/api/v1/inboxes/{key(mail)}")
        assert kept.status_code == 409 and f"continues the chats of inbox {chat_id}" in kept.json()["error"]["detail"]
        assert (await http.patch(f"/api/v1/inboxes/{chat_id}", json={"settings": {}})).status_code == 200
        assert (await http.delete(f"/api/v1/inboxes/{key(mail)}")).status_code == 204


# ── the answer, through a real Dovecot ──────────────────────────────────────────────────────────────────────
@pytest.fixture(scope="module")
def dovecot() -> Iterator[Any]:
    from tests.email_helpers import IN_CI
    from tests.servers.dovecot import binary, dovecot_server

    if binary() is None:
        if IN_CI:
            pytest.fail("CI=true but dovecot is missing; run `make test` as root to install dovecot-imapd")
        pytest.skip("dovecot not installed (apt-get install -y dovecot-imapd, or `make test` as root)")
    with dovecot_server({"chat@example.test": "pw", "chat2@example.test": "pw"}) as server:
        yield server


@asynccontextmanager
async def prepared(db_url: str, user: str, dovecot: Any, sink: Sink) -> AsyncIterator[tuple[Inbox, Inbox, Agent, str]]:
    """Inboxes, an admin and their token in a migrated database, before the server starts."""
    store = Store(db_url)
    await upgrade(store)
    try:
        mail, chat = await inboxes(
            store,
            sink,
            address=user,
            imap_host=dovecot.host,
            imap_port=dovecot.port,
            imap_security="plain",
            imap_username=user,
            imap_password="pw",
        )
        agent, token = await admin_with_token(store)
        yield mail, chat, agent, token
    finally:
        await store.close()


async def test_emailed_answer_joins_the_chat_conversation(db_url: str, tmp_path: Path, dovecot: Any) -> None:
    from tests.email_helpers import append
    from tests.test_email_imap import _reader

    user = "chat@example.test" if "sqlite" in db_url else "chat2@example.test"
    async with smtp_sink() as sink:
        async with prepared(db_url, user, dovecot, sink) as (mail_inbox, chat, agent, token):
            pass  # written before the server starts, so its IMAP reader starts with it
        async with live_server(config_for(db_url, tmp_path)) as server, agent_stream(server, token) as stream:
            store = server.state.store
            channel = server.state.channels["email"]
            reader = await eventually(lambda: _reader(channel, key(mail_inbox)), lambda found: found is not None)
            conversation_id, visitor_token = await visitor_writes(server, chat, VISITOR)
            await reply(server, agent, conversation_id, "We found your parcel.")
            [received] = await sink.wait(1)
            sent = received.message

            # A stranger who got hold of the mail cannot write into the chat.
            stranger = raw_mail(
                sender="mallory@evil.test",
                to=user,
                message_id="<m1@evil.test>",
                subject=f"Re: {sent['Subject']}",
                extra=f"In-Reply-To: {sent['Message-ID']}\r\n",
            )
            answer = raw_mail(
                sender=VISITOR,
                to=user,
                message_id="<a1@customer.test>",
                subject=f"Re: {sent['Subject']}",
                body="Great, thank you!\r\n\r\nOn Sunday Support wrote:\r\n> We found your parcel.",
                extra=f"In-Reply-To: {sent['Message-ID']}\r\nReferences: {sent['Message-ID']}\r\n",
            )
            await reader.idle_active.wait()
            await append(dovecot, user, stranger, answer)
            joined = await stream.expect(
                lambda f: f.get("type") == "message.created" and f["data"]["external_id"] == "<a1@customer.test>",
                30.0,
            )
            assert joined["data"]["conversation_id"] == conversation_id
            assert joined["data"]["meta"]["thread_reason"] == "threaded by In-Reply-To"
            assert joined["data"]["conversation"]["inbox_id"] == key(chat)

            async with store.session() as session:
                stored = (
                    await session.execute(select(Message).where(col(Message.external_id) == "<m1@evil.test>"))
                ).scalar_one()
                chat_conversation = await session.get(Conversation, conversation_id)
                identity = (await session.execute(select(Identity).where(col(Identity.value) == VISITOR))).scalar_one()
            assert stored.conversation_id != conversation_id  # the stranger opened a conversation of their own
            assert chat_conversation is not None and identity.contact_id == chat_conversation.contact_id

            # The visitor comes back to the widget: the emailed answer is in the chat's history.
            async with widget(server, chat.public_key, hello={"visitor_token": visitor_token}) as socket:
                welcome = await socket.expect_type("welcome")
            bodies = [item["body"] for item in welcome["messages"]]
            assert bodies[0] == "Is my order shipped?" and bodies[1] == "We found your parcel."
            assert bodies[2].startswith("Great, thank you!")
            assert welcome["messages"][2]["author"] == "visitor"


async def test_mail_reaches_a_chat_conversation_only_through_the_linked_inbox(store: Store, service: Any) -> None:
    from channels.base import Identity as Who
    from channels.base import IdentityKind, Inbound
    from inbox.gateway.host import CoreHost

    linked = await email_inbox(store)
    other = await email_inbox(store, address="other@example.test")
    chat = await make_inbox(store, channel="webchat", name="Website", email_continuity_inbox_id=key(linked))
    visitor = Who(IdentityKind.WEBCHAT, f"{key(chat)}:visitor:v1", name="Vera", email=VISITOR)
    first = await service.deliver(Inbound(key(chat), "w1", "visitor:v1", visitor, "Hello?"))
    host = CoreHost(store, service)
    assert await host.find_conversation(key(other), conversation_id=first.conversation_id) is None
    found = await host.find_conversation(key(linked), conversation_id=first.conversation_id)
    assert found is not None and VISITOR in found.participants

    def answer(inbox: Inbox, message_id: str) -> Inbound:
        sender = Who(IdentityKind.EMAIL, VISITOR, name="Vera", email=VISITOR)
        return Inbound(
            key(inbox), message_id, f"email:{message_id}", sender, "Thanks", conversation_id=first.conversation_id
        )

    joined = await service.deliver(answer(linked, "<l1@customer.test>"))
    # The answer's email identity joins the visitor's contact (its address is the one the visitor gave).
    assert joined.conversation_id == first.conversation_id and joined.contact_id == first.contact_id
    again = await service.deliver(answer(linked, "<l1@customer.test>"))
    assert again.message_id == joined.message_id and not again.created  # stored once per (inbox, Message-ID)
    elsewhere = await service.deliver(answer(other, "<o1@customer.test>"))
    assert elsewhere.conversation_id != first.conversation_id  # an unlinked inbox cannot name the chat


async def test_worker_mails_only_what_the_visitor_has_not_seen(store: Store, service: Any) -> None:
    from channels.base import Identity as Who
    from channels.base import IdentityKind, Inbound
    from inbox.continuity.worker import ContinuityWorker

    linked = await email_inbox(store)
    chat = await make_inbox(store, channel="webchat", name="Website", email_continuity_inbox_id=key(linked))
    agent = await make_agent(store, name="Ann Agent")
    visitor = Who(IdentityKind.WEBCHAT, f"{key(chat)}:visitor:v1", name="Vera", email=VISITOR)
    first = await service.deliver(Inbound(key(chat), "w1", "visitor:v1", visitor, "Hello?"))
    conversation = first.conversation_id
    worker = ContinuityWorker(store, service, ContinuityConfig(delay_seconds=0.0, interval_seconds=0.1))
    await worker.tick()  # the cursor starts here

    async def reply_with(body: str) -> int:
        view, _ = await service.reply(conversation, by=agent, body=body, client_id=None)
        return int(view["id"])

    async def mailed() -> list[list[int]]:
        return [line.meta["continuity"]["replies"] for line in await mails_of(store, conversation)]

    seen = await reply_with("Seen in the widget.")
    await worker.record_seen(conversation, seen + 1000)  # clamped to the newest reply
    unseen = await reply_with("Not seen.")
    assert await worker.tick() == 1 and await mailed() == [[unseen]]
    assert await worker.tick() == 0  # nothing new: nothing more

    # An autoresponder's answer by email does not count as the visitor having read the chat; their own does.
    def mail_from_visitor(message_id: str, automatic: str | None) -> Inbound:
        sender = Who(IdentityKind.EMAIL, VISITOR, email=VISITOR)
        meta = {"email": {"automatic": automatic}}
        return Inbound(
            key(linked), message_id, f"email:{message_id}", sender, "Re", metadata=meta, conversation_id=conversation
        )

    after_mail = await reply_with("Before the out-of-office.")
    await service.deliver(mail_from_visitor("<ooo@customer.test>", "auto-replied"))
    assert await worker.tick() == 1 and (await mailed())[-1] == [after_mail]
    answered = await reply_with("Before the visitor's own answer.")
    await service.deliver(mail_from_visitor("<own@customer.test>", None))
    last = await reply_with("After it.")
    assert await worker.tick() == 1 and (await mailed())[-1] == [last]
    assert answered not in [item for batch in await mailed() for item in batch]
    # The second and later mails answer the previous one of the exchange (threading).
    lines = await mails_of(store, conversation)
    assert lines[-1].meta["continuity"]["in_reply_to"] == "<own@customer.test>"

    # Unlinked, the email inbox still holds the mail of that chat: it is kept.
    from inbox.admin.directory import Directory
    from inbox.errors import Conflict

    directory = Directory(service)
    await directory.update_inbox(key(chat), settings={})
    with pytest.raises(Conflict, match="carried messages of other conversations"):
        await directory.delete_inbox(key(linked))
