"""The customer portal: sign-in by a single-use, expiring emailed link (the same answer for known and unknown
addresses, rate-limited), the customer's conversations on every channel, never another's conversation or a
private note, replies stored as incoming messages on the conversation's channel, the pending survey."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select

from channels.base import Identity, IdentityKind, Inbound
from channels.email import EmailChannel, EmailSettings
from inbox.app import portal_mailer
from inbox.config import CsatConfig
from inbox.csat.survey import Surveys
from inbox.errors import NotFound
from inbox.gateway.host import CoreHost
from inbox.gateway.outbox import inbox_info
from inbox.portal.customer import LinkRefused, Portal
from inbox.service import ConversationChanges, InboxService
from inbox.store.engine import Store
from inbox.store.models import CsatSurvey, Message, MessageKind, PortalLink
from tests.email_helpers import email_inbox, raw_mail
from tests.factories import make_agent, make_inbox
from tests.servers.app import LiveServer, make_config
from tests.servers.smtp import smtp_sink

Sent = list[tuple[str, str, str]]


class World:
    def __init__(self, store: Store, service: InboxService) -> None:
        self.store = store
        self.service = service
        self.sent: Sent = []
        self.now = datetime.now(UTC)
        self.surveys = Surveys(service, secret="k", base_url="https://help.example.test", settings=CsatConfig())
        self.portal = Portal(
            service,
            secret="k",
            base_url="https://help.example.test",
            surveys=self.surveys,
            mailer=self.mail,
            clock=lambda: self.now,
        )

    async def mail(self, address: str, subject: str, text: str) -> None:
        self.sent.append((address, subject, text))

    async def link_for(self, address: str) -> str:
        before = len(self.sent)
        await self.portal.request_link(address, ip="198.51.100.7", locale="en")
        await self.portal.settle()
        assert len(self.sent) == before + 1
        found = re.search(r"https://help\.example\.test/portal/link/(\S+)", self.sent[-1][2])
        assert found is not None
        return found.group(1)


async def _seed(store: Store, service: InboxService) -> dict[str, int]:
    """Carol by email (two conversations) and by Telegram with a verified identity; Dave by email."""
    inbox = await email_inbox(store, csat_enabled=True)
    telegram = await make_inbox(store, channel="telegram", name="Bot")
    channel = EmailChannel(CoreHost(store, service), EmailSettings())
    info = inbox_info(inbox)
    first = await channel.ingest(info, raw_mail(body="Where is my order?"))
    second = await channel.ingest(
        info, raw_mail(subject="Refund", body="I want a refund", message_id="<q2@customer.test>")
    )
    dave = await channel.ingest(
        info, raw_mail(sender="dave@customer.test", body="Dave's secret question", message_id="<d1@customer.test>")
    )
    assert telegram.id is not None
    chat = await service.deliver(
        Inbound(
            inbox_id=telegram.id,
            external_id="tg-1",
            thread_key="chat:42",
            sender=Identity(IdentityKind.TELEGRAM, "42", name="Carol", email="carol@customer.test", verified=True),
            text="Hi from Telegram",
        )
    )
    webchat = await make_inbox(store, channel="webchat", name="Chat")
    assert webchat.id is not None
    # A visitor who typed Carol's address into a chat form: unverified, so not Carol's to see.
    await service.deliver(
        Inbound(
            inbox_id=webchat.id,
            external_id="w-1",
            thread_key="visitor:9",
            sender=Identity(IdentityKind.WEBCHAT, "visitor-9", name="Mallory", email="carol@customer.test"),
            text="Impostor chat",
        )
    )
    assert first is not None and second is not None and dave is not None
    agent = await make_agent(store, role="admin")
    await service.add_note(first.conversation_id, by=agent, body="internal: she is a VIP", client_id=None)
    await service.reply(first.conversation_id, by=agent, body="It ships tomorrow.", client_id=None)
    return {
        "first": first.conversation_id,
        "second": second.conversation_id,
        "dave": dave.conversation_id,
        "chat": chat.conversation_id,
        "agent": agent.id or 0,
    }


async def test_sign_in_lists_the_customers_conversations_on_every_channel(store: Store, service: InboxService) -> None:
    ids = await _seed(store, service)
    world = World(store, service)
    token = await world.link_for("  Carol@Customer.test ")
    assert world.sent[-1][0] == "carol@customer.test"
    await world.portal.check_link(token)  # opening the link spends nothing
    session = await world.portal.sign_in(token)
    address = world.portal.session_address(session)
    assert address == "carol@customer.test"
    cards = await world.portal.conversations(address, locale="en")
    assert sorted(card.id for card in cards) == sorted([ids["first"], ids["second"], ids["chat"]])
    assert {card.channel for card in cards} == {"email", "telegram"}
    assert world.portal.session_address(session + "x") is None


async def test_the_answer_is_the_same_for_unknown_addresses_and_requests_are_limited(
    store: Store, service: InboxService
) -> None:
    await _seed(store, service)
    world = World(store, service)
    await world.portal.request_link("nobody@customer.test", ip="198.51.100.7", locale="en")
    await world.portal.settle()
    assert world.sent == []  # nothing to an address without conversations, and no error either
    for _ in range(3):
        await world.link_for("carol@customer.test")
    await world.portal.request_link("carol@customer.test", ip="198.51.100.7", locale="en")
    await world.portal.settle()
    assert len(world.sent) == 3  # the fourth request in the window sends nothing
    async with store.session() as session:
        rows = list((await session.execute(select(PortalLink))).scalars())
    assert len(rows) == 5 - 1  # every request in the limit is a row, known or not; none holds the address
    assert all("@" not in row.address_hash for row in rows)
    world.now += timedelta(minutes=16)
    await world.link_for("carol@customer.test")


async def test_a_link_used_twice_too_late_or_changed_is_refused(store: Store, service: InboxService) -> None:
    await _seed(store, service)
    world = World(store, service)
    token = await world.link_for("carol@customer.test")
    await world.portal.sign_in(token)
    with pytest.raises(LinkRefused):
        await world.portal.sign_in(token)
    with pytest.raises(LinkRefused):
        await world.portal.check_link(token)
    late = await world.link_for("carol@customer.test")
    world.now += timedelta(minutes=31)
    with pytest.raises(LinkRefused):
        await world.portal.sign_in(late)
    world.now -= timedelta(minutes=31)
    fresh = await world.link_for("carol@customer.test")
    with pytest.raises(LinkRefused):
        await world.portal.sign_in(fresh[:-2] + ("AA" if not fresh.endswith("AA") else "BB"))
    await world.portal.sign_in(fresh)


async def test_a_customer_never_sees_another_conversation_or_a_note(store: Store, service: InboxService) -> None:
    ids = await _seed(store, service)
    world = World(store, service)
    thread = await world.portal.thread("carol@customer.test", ids["first"], locale="en")
    bodies = [line.body for line in thread.lines]
    assert bodies == ["Where is my order?", "It ships tomorrow."]
    assert [line.mine for line in thread.lines] == [True, False]
    for conversation_id in (ids["dave"], 999_999):
        with pytest.raises(NotFound):
            await world.portal.thread("carol@customer.test", conversation_id, locale="en")
        with pytest.raises(NotFound):
            await world.portal.reply("carol@customer.test", conversation_id, "let me in", client_id="c-1")
    cards = await world.portal.conversations("dave@customer.test", locale="en")
    assert [card.id for card in cards] == [ids["dave"]]


async def test_a_portal_reply_is_an_incoming_message_on_the_conversation_channel(
    store: Store, service: InboxService
) -> None:
    ids = await _seed(store, service)
    world = World(store, service)
    agent = await make_agent(store, email="bob@example.test")
    await service.update_conversation(ids["chat"], ConversationChanges(status="resolved"), by=agent)
    first = await world.portal.reply("carol@customer.test", ids["chat"], "Still broken", client_id="c-42")
    again = await world.portal.reply("carol@customer.test", ids["chat"], "Still broken", client_id="c-42")
    assert first == again  # a resubmitted form stores once
    async with store.session() as session:
        message = await session.get(Message, first)
        thread = await world.portal.thread("carol@customer.test", ids["chat"], locale="en")
    assert message is not None and message.kind == MessageKind.INCOMING
    assert message.meta["identity"]["kind"] == "telegram"  # an agent's answer goes back to Telegram
    assert thread.card.status == "open"  # the reply reopened it
    assert thread.card.channel == "telegram"


async def test_a_pending_survey_is_answered_in_the_portal(store: Store, service: InboxService) -> None:
    ids = await _seed(store, service)
    world = World(store, service)
    service.on_resolved.append(world.surveys.on_resolved)
    agent = await make_agent(store, email="bob@example.test")
    await service.update_conversation(ids["first"], ConversationChanges(status="resolved"), by=agent)
    thread = await world.portal.thread("carol@customer.test", ids["first"], locale="en")
    assert thread.survey is not None and thread.survey.rating is None
    with pytest.raises(NotFound):
        await world.portal.answer_survey("dave@customer.test", ids["first"], 5, "")
    await world.portal.answer_survey("carol@customer.test", ids["first"], 5, "quick")
    async with store.session() as session:
        [survey] = (
            await session.execute(select(CsatSurvey).where(col(CsatSurvey.conversation_id) == ids["first"]))
        ).scalars()
    assert (survey.rating, survey.comment) == (5, "quick")


async def test_the_sign_in_mail_goes_out_through_the_email_relay(
    store: Store, service: InboxService, tmp_path: Path, db_url: str
) -> None:
    async with smtp_sink() as sink:
        await email_inbox(store, smtp_host="127.0.0.1", smtp_port=sink.port, smtp_security="plain")
        send = portal_mailer(store, make_config(db_url, tmp_path))
        await send("carol@customer.test", "Your sign-in link", "Open https://help.example.test/portal/link/x")
        [mail] = await sink.wait(1)
    assert mail.recipients == ["carol@customer.test"]
    assert mail.message["Auto-Submitted"] == "auto-generated"
    assert "portal/link/x" in mail.message.get_content()


def _without_token(html: str) -> str:
    return re.sub(r'name="form_token" value="[^"]*"', "", html)


async def test_http_sign_in_answers_alike_and_links_are_single_use(server: LiveServer) -> None:
    store: Store = server.state.store
    ids = await _seed(store, server.state.service)
    portal: Portal = server.state.portal
    sent: Sent = []

    async def mail(address: str, subject: str, text: str) -> None:
        sent.append((address, subject, text))

    portal.mailer = mail
    async with httpx.AsyncClient(base_url=server.url) as client:
        page = await client.get("/portal")
        token = re.search(r'name="form_token" value="([^"]+)"', page.text)
        assert page.status_code == 200 and token is not None
        answers = []
        for email in ("carol@customer.test", "nobody@customer.test"):
            answer = await client.post("/portal/sign-in", data={"email": email, "form_token": token.group(1)})
            answers.append((answer.status_code, _without_token(answer.text)))
        assert answers[0] == answers[1] and answers[0][0] == 200
        await portal.settle()
        assert [item[0] for item in sent] == ["carol@customer.test"]
        link = re.search(r"/portal/link/\S+", sent[0][2])
        assert link is not None
        assert (await client.get(link.group(0))).status_code == 200  # shows the button, spends nothing
        signed_in = await client.post(link.group(0))
        assert signed_in.status_code == 303 and "sb_portal" in signed_in.cookies
        listing = await client.get("/portal")
        assert "Where is my order?" in listing.text or "Order 1234" in listing.text
        assert "Dave" not in listing.text and "Impostor" not in listing.text
        assert (await client.post(link.group(0))).status_code == 410
        hidden = await client.get(f"/portal/c/{ids['dave']}")
        assert hidden.status_code == 404 and "secret question" not in hidden.text
