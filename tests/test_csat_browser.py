"""CSAT in a real browser (Debian's Chromium via Playwright): the widget's rating card after a resolution,
answered and changed in the chat, and the public survey page for other channels."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from sqlmodel import col, select

from inbox.service import ConversationChanges
from inbox.store.models import Conversation, CsatSurvey, Message
from tests.browser import artifact, host_site, shop_page
from tests.factories import make_agent, make_inbox
from tests.poll import eventually
from tests.servers.app import LiveServer

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def survey_row(server: LiveServer) -> CsatSurvey | None:
    async with server.state.store.session() as session:
        return (await session.execute(select(CsatSurvey))).scalar_one_or_none()


async def test_widget_rating_card(browser: Browser, browser_server: LiveServer) -> None:
    from playwright.async_api import expect

    server = browser_server
    inbox = await make_inbox(server.state.store, channel="webchat", name="Website", csat_enabled=True, prechat="off")
    agent = await make_agent(server.state.store, role="admin", name="Ann")
    with host_site(shop_page(server.url, inbox.public_key)) as site:
        context = await browser.new_context(locale="en-US", viewport={"width": 1100, "height": 800})
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            await page.goto(site)
            await page.locator("button.sb-launcher").click()
            chat = page.frame_locator("iframe[title=Chat]")
            await chat.locator("#text").fill("My parcel is late")
            await chat.locator("#text").press("Enter")
            await chat.locator(".sb-visitor .sb-meta", has_text="Sent").wait_for()
            async with server.state.store.session() as session:
                conversation_id = (await session.execute(select(Conversation.id))).scalar_one()
            await server.state.service.reply(conversation_id, by=agent, body="Sorry! It ships today.", client_id=None)
            await server.state.service.update_conversation(
                conversation_id, ConversationChanges(status="resolved"), by=agent
            )
            card = chat.locator(".sb-survey-card")
            await expect(card.locator("p").first).to_have_text("How would you rate the help you got?")
            send = card.locator("button[type=submit]")
            await expect(send).to_be_disabled()
            await card.locator("button[data-rating='4']").click()
            await expect(card.locator("button[data-rating='4']")).to_have_attribute("aria-checked", "true")
            await card.locator("textarea").fill("fast, thanks")
            await card.locator("button[type=submit]").click()
            await expect(card.locator(".sb-survey-thanks")).to_have_text("Thank you! You rated us 4 of 5.")
            await page.screenshot(path=artifact("widget-csat.png"))
            row = await survey_row(server)
            assert row is not None and (row.rating, row.comment) == (4, "fast, thanks")

            await card.locator("button", has_text="Change").click()
            await card.locator("button[data-rating='5']").click()
            await card.locator("button[type=submit]").click()
            await expect(card.locator(".sb-survey-thanks")).to_have_text("Thank you! You rated us 5 of 5.")

            async def changed() -> bool:
                found = await survey_row(server)
                return found is not None and found.rating == 5

            await eventually(changed)
            async with server.state.store.session() as session:
                lines = list(
                    (
                        await session.execute(
                            select(Message.body).where(col(Message.kind) == "activity").order_by(col(Message.id))
                        )
                    ).scalars()
                )
            assert lines[-2:] == [
                "Customer rated 4 — “fast, thanks”",
                "Customer changed their rating to 5 — “fast, thanks”",
            ]
            assert errors == []
        finally:
            await context.close()


async def test_survey_page_in_the_browser(page: Page, browser_server: LiveServer) -> None:
    from playwright.async_api import expect

    server = browser_server
    inbox = await make_inbox(server.state.store, name="Acme support", csat_enabled=True)
    agent = await make_agent(server.state.store, role="admin")
    from tests.factories import inbound

    delivered = await server.state.service.deliver(inbound(inbox))
    await server.state.service.reply(delivered.conversation_id, by=agent, body="Done", client_id=None)
    await server.state.service.update_conversation(
        delivered.conversation_id, ConversationChanges(status="resolved"), by=agent
    )
    row = await survey_row(server)
    assert row is not None and row.id is not None
    await page.goto(server.state.surveys.url(row.id) + "?rating=2")
    await expect(page.locator("h1")).to_have_text("Acme support")
    await expect(page.locator("input[name=rating][value='2']")).to_be_checked()
    await page.locator("input[name=rating][value='1']").check()
    await page.fill("textarea[name=comment]", "too slow")
    await page.click("button[type=submit]")
    await expect(page.locator("#csat-saved")).to_contain_text("Your rating of 1 was saved")
    await expect(page.locator("input[name=rating][value='1']")).to_be_checked()
    await page.screenshot(path=artifact("csat-page.png"))
    saved = await survey_row(server)
    assert saved is not None and (saved.rating, saved.comment) == (1, "too slow")
