"""An emailed answer to a continuity mail reaches a widget that is open right now (every open tab of the
visitor, once), not only the next welcome — while the widget's own messages are still shown once: acked to
the tab that sent them and broadcast to the others, never pushed a second time from the event.

Against the real app: the continuity mail goes out through a real aiosmtpd sink, the answer is handed to the
email channel's `ingest` (parsing and threading as for IMAP or SMTP in), the widget tabs are real sockets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from channels.email import EmailChannel
from inbox.gateway.outbox import inbox_info
from inbox.store.models import key
from tests.email_helpers import raw_mail
from tests.factories import make_agent
from tests.servers.app import live_server
from tests.servers.smtp import smtp_sink
from tests.test_continuity import VISITOR, config_for, inboxes, reply, visitor_writes
from tests.webchat_client import Socket, widget


def message_frame(message_id: int) -> Any:
    return lambda frame: frame.get("type") == "message" and frame["message"]["id"] == message_id


async def test_an_emailed_answer_reaches_the_open_widget_live(db_url: str, tmp_path: Path) -> None:
    async with smtp_sink() as sink, live_server(config_for(db_url, tmp_path)) as server:
        store = server.state.store
        mail_inbox, chat = await inboxes(store, sink)
        agent = await make_agent(store, email="ann@example.test", name="Ann Agent")
        conversation_id, visitor_token = await visitor_writes(server, chat, VISITOR)
        await reply(server, agent, conversation_id, "We found your parcel.")
        [received] = await sink.wait(1)  # the visitor was away: the reply went out by email
        sent = received.message

        hello = {"visitor_token": visitor_token}
        async with (
            widget(server, chat.public_key, hello=hello) as tab,
            widget(server, chat.public_key, hello=hello) as other,
        ):
            tabs: list[Socket] = [tab, other]
            for socket in tabs:
                welcome = await socket.expect_type("welcome")
                assert [item["body"] for item in welcome["messages"]] == [
                    "Is my order shipped?",
                    "We found your parcel.",
                ]

            # The widget's own message: an ack to the tab that sent it, one broadcast to the other, no echo.
            await tab.send({"type": "message", "client_id": "c2", "body": "And the invoice?"})
            own = (await tab.expect_type("ack"))["message"]
            assert (await other.expect(message_frame(own["id"])))["message"]["body"] == "And the invoice?"

            # The visitor answers the mail: both open tabs show it now, as the visitor's, once.
            answer = raw_mail(
                sender=VISITOR,
                to="support@example.test",
                message_id="<a1@customer.test>",
                subject=f"Re: {sent['Subject']}",
                body="Great, thank you!\r\n\r\nOn Sunday Support wrote:\r\n> We found your parcel.",
                extra=f"In-Reply-To: {sent['Message-ID']}\r\nReferences: {sent['Message-ID']}\r\n",
            )
            email_channel: EmailChannel = server.state.channels["email"]
            delivered = await email_channel.ingest(inbox_info(mail_inbox), answer)
            assert delivered is not None and delivered.conversation_id == conversation_id
            for socket in tabs:
                pushed = (await socket.expect(message_frame(delivered.message_id)))["message"]
                assert pushed["body"].startswith("Great, thank you!")
                assert pushed["author"] == "visitor" and pushed["client_id"] is None
            for socket in tabs:
                await socket.nothing(message_frame(delivered.message_id))
            assert [f for f in tab.frames if f.get("type") == "message" and f["message"]["id"] == own["id"]] == []
            assert len([f for f in other.frames if f.get("type") == "message" and f["message"]["id"] == own["id"]]) == 1

        # The next welcome shows the same message in the same place (live push and history agree).
        async with widget(server, chat.public_key, hello=hello) as again:
            welcome = await again.expect_type("welcome")
        [stored] = [item for item in welcome["messages"] if item["id"] == delivered.message_id]
        assert stored["body"] == pushed["body"] and stored["author"] == "visitor"
        assert key(chat) != key(mail_inbox)
