"""The customer portal in a real browser (Debian's Chromium via Playwright), at desktop and phone width, in
English and Russian: ask for a link, open it, see the conversations with status and expected reply time, read
a thread without its private note, reply."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from sqlmodel import col, select

from channels.base import Identity, IdentityKind, Inbound
from inbox.portal.customer import Portal
from inbox.store.models import Message, MessageKind
from tests.browser import artifact
from tests.factories import make_agent, make_inbox
from tests.servers.app import LiveServer

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.mark.parametrize(
    ("width", "locale", "words"),
    [
        (1200, "en-US", {"list": "Your requests", "status": "Open", "expected": "Expected reply by", "you": "You"}),
        (390, "ru-RU", {"list": "Ваши обращения", "status": "Открыто", "expected": "Ответим до", "you": "Вы"}),
    ],
)
async def test_portal_sign_in_read_and_reply(
    browser: Browser, browser_server: LiveServer, width: int, locale: str, words: dict[str, str]
) -> None:
    from playwright.async_api import expect

    server = browser_server
    store = server.state.store
    service = server.state.service
    inbox = await make_inbox(store, channel="api", name="Support", acknowledgement_reply_minutes=60)
    other = await make_inbox(store, channel="api", name="Other")
    assert inbox.id is not None and other.id is not None
    mine = await service.deliver(
        Inbound(
            inbox_id=inbox.id,
            external_id="m-1",
            thread_key="t-1",
            sender=Identity(IdentityKind.EMAIL, "carol@customer.test", name="Carol", email="carol@customer.test"),
            text="My parcel never came",
            subject="Parcel",
        )
    )
    await service.deliver(
        Inbound(
            inbox_id=other.id,
            external_id="d-1",
            thread_key="t-2",
            sender=Identity(IdentityKind.EMAIL, "dave@customer.test", name="Dave", email="dave@customer.test"),
            text="Dave writes privately",
            subject="Dave's",
        )
    )
    agent = await make_agent(store, role="admin")
    await service.add_note(mine.conversation_id, by=agent, body="internal remark", client_id=None)
    portal: Portal = server.state.portal
    sent: list[str] = []

    async def mail(address: str, subject: str, text: str) -> None:
        sent.append(text)

    portal.mailer = mail
    context = await browser.new_context(locale=locale, viewport={"width": width, "height": 800})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        await page.goto(server.url + "/portal")
        await page.fill("input[name=email]", "carol@customer.test")
        await page.click("#portal-sign-in button[type=submit]")
        await expect(page.locator("#portal-sent")).to_be_visible()
        await portal.settle()
        link = re.search(r"http://\S+/portal/link/\S+", sent[0])
        assert link is not None
        await page.goto(link.group(0))
        await page.click("#portal-link button")
        await expect(page.locator("h1")).to_have_text(words["list"])
        item = page.locator(".portal-item")
        await expect(item).to_have_count(1)
        await expect(item.locator(".portal-status")).to_have_text(words["status"])
        await expect(item.locator(".portal-expected")).to_contain_text(words["expected"])
        await expect(page.locator("body")).not_to_contain_text("Dave")
        await item.locator("a").click()
        await expect(page.locator("#portal-thread")).to_contain_text("My parcel never came")
        await expect(page.locator("#portal-thread")).not_to_contain_text("internal remark")
        await page.fill("#portal-reply textarea", "Any news?")
        await page.click("#portal-reply button[type=submit]")
        await expect(page.locator(".portal-line.mine").last).to_contain_text("Any news?")
        await expect(page.locator(".portal-line.mine").last).to_contain_text(words["you"])
        overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px at {width}px"
        await page.screenshot(path=artifact(f"portal-{width}-{locale}.png"), full_page=True)
        await page.goto(server.url + f"/portal/c/{mine.conversation_id + 1}")
        await expect(page.locator("#portal-missing")).to_be_visible()
    finally:
        await context.close()
    assert errors == []
    async with store.session() as session:
        replies = list(
            (
                await session.execute(
                    select(Message).where(
                        col(Message.conversation_id) == mine.conversation_id, col(Message.body) == "Any news?"
                    )
                )
            ).scalars()
        )
    assert [row.kind for row in replies] == [MessageKind.INCOMING]
    assert replies[0].inbox_id == inbox.id
