"""Self-service answers and proactive messages in a real browser (Chromium via Playwright): the widget on a
page of another origin, against the real server on SQLite. A visitor finds an article and says it helped
(a deflection is counted); a proactive greeting shows after a second on the page, the visitor answers,
and the agent sees one conversation holding both messages."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlmodel import col, select

from inbox.clock import utcnow
from inbox.reports.selfservice import summary
from inbox.selfserve.content import render_markdown
from inbox.store.models import Article, Conversation, ProactiveRule
from tests.browser import artifact, host_site, shop_page
from tests.browser_agent import agent_tab
from tests.factories import inbound, make_agent
from tests.servers.app import LiveServer
from tests.webchat_client import webchat_inbox

pytestmark = pytest.mark.asyncio(loop_scope="session")
DEADLINE = 15.0


async def numbers(server: LiveServer) -> dict[str, Any]:
    end = utcnow()
    return await summary(server.state.store, start=end.replace(year=end.year - 1), end=end, inbox_ids=None)


async def poll(check: Any, what: str) -> Any:
    """Wait (with a deadline) until `check()` answers something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while loop.time() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_visitor_finds_an_article_and_it_counts_as_deflected(browser: Any, browser_server: LiveServer) -> None:
    server = browser_server
    store = server.state.store
    inbox = await webchat_inbox(server)
    async with store.transaction() as tx:
        body = "Open **Settings → Security** and press *Reset password*."
        tx.add(Article(title="Reset your password", body=body, html=render_markdown(body), published=True))
        tx.add(Article(title="Password draft", body="not yet", html="<p>not yet</p>", published=False))
    with host_site(shop_page(server.url, inbox.public_key)) as site:
        context = await browser.new_context(locale="en-US", viewport={"width": 1100, "height": 800})
        page = await context.new_page()
        await page.goto(site)
        await page.locator("button.sb-launcher").click()
        chat = page.frame_locator("iframe[title=Chat]")

        # Typing a first message suggests a matching article; "No" goes back to the chat.
        await chat.locator("#text").fill("how do I reset my password")
        suggestion = chat.locator("#answers-suggest .sb-answer", has_text="Reset your password")
        await suggestion.wait_for()
        assert await chat.locator("#answers-suggest .sb-answer").count() == 1  # the draft never shows
        await suggestion.click()
        await chat.locator("#answers-article h2", has_text="Reset your password").wait_for()
        await chat.locator("#answer-no").click()
        await chat.locator("#answers-article").wait_for(state="hidden")
        assert await chat.locator("#text").input_value() == "how do I reset my password"

        # The search box before the chat: search, open, "Yes" → deflected.
        await chat.locator("#text").fill("")
        await chat.locator("#answers-q").fill("passw")
        await chat.locator("#answers-q").press("Enter")
        result = chat.locator("#answers-list .sb-answer", has_text="Reset your password")
        await result.wait_for()
        assert await chat.locator("#answers-list .sb-answer").count() == 1
        await result.click()
        article = chat.locator("#answers-article")
        await article.locator("strong", has_text="Settings → Security").wait_for()
        await chat.locator("#answer-yes").click()
        await chat.locator(".sb-thanks", has_text="Glad we could help!").wait_for()
        await page.screenshot(path=artifact("widget-answers.png"))
        await context.close()

    async def counted() -> dict[str, Any] | None:
        found = (await numbers(server))["self_service"]
        return found if found["deflections"] == 1 else None

    stats = await poll(counted, "the deflection to be counted")
    assert stats["not_deflected"] == 1 and stats["article_views"] == 2 and stats["searches"] == 1


async def test_proactive_greeting_then_reply_reaches_the_agent(browser: Any, browser_server: LiveServer) -> None:
    server = browser_server
    store = server.state.store
    inbox = await webchat_inbox(server)
    admin = await make_agent(store, email="admin@example.test", name="Ada", role="admin")
    async with store.transaction() as tx:
        tx.add(ProactiveRule(inbox_id=inbox.id, message="Need a hand choosing a widget?", min_seconds_on_page=1))
        tx.add(ProactiveRule(inbox_id=inbox.id, message="Never here", url_pattern="https://elsewhere.test/*"))
    with host_site(shop_page(server.url, inbox.public_key)) as site:
        context = await browser.new_context(locale="en-US", viewport={"width": 1100, "height": 800})
        page = await context.new_page()
        await page.goto(site)
        chat = page.frame_locator("iframe[title=Chat]")
        greeting = chat.locator(".sb-proactive .sb-bubble", has_text="Need a hand choosing a widget?")
        await greeting.wait_for()  # the window opened by itself after a second on the page
        assert await chat.locator(".sb-proactive").count() == 1
        await chat.locator("#text").fill("Yes please, which one is blue?")
        await chat.locator("#text").press("Enter")
        await chat.locator(".sb-visitor .sb-meta", has_text="Sent").wait_for()
        bubbles = await chat.locator(".sb-msg:not(.sb-greeting) .sb-bubble").all_inner_texts()
        assert bubbles == ["Need a hand choosing a widget?", "Yes please, which one is blue?"]
        await page.screenshot(path=artifact("widget-proactive.png"))
        # After a reload the greeting comes back from the server as the conversation's first message.
        await page.reload()
        await page.locator("button.sb-launcher").click()
        chat = page.frame_locator("iframe[title=Chat]")
        await chat.locator(".sb-visitor .sb-bubble", has_text="which one is blue").wait_for()
        bubbles = await chat.locator(".sb-msg:not(.sb-greeting) .sb-bubble").all_inner_texts()
        assert bubbles == ["Need a hand choosing a widget?", "Yes please, which one is blue?"]
        assert await chat.locator(".sb-proactive").count() == 0  # not shown again: it is part of the chat now
        await context.close()

    async def conversation() -> int | None:
        async with store.session() as session:
            rows = list(
                (await session.execute(select(Conversation.id).where(col(Conversation.inbox_id) == inbox.id))).scalars()
            )
        return rows[0] if len(rows) == 1 else None

    conversation_id = await poll(conversation, "the conversation")
    tab = await agent_tab(browser, server, admin, f"/#conversation/{conversation_id}")
    try:
        items = tab.page.locator("#messages > li.message")
        await tab.page.locator("#messages > li.incoming", has_text="which one is blue").wait_for()
        texts = await items.all_inner_texts()
        assert len(texts) == 2
        assert "Need a hand choosing a widget?" in texts[0] and "automatic" in texts[0]
        assert "Yes please, which one is blue?" in texts[1]
        await tab.page.screenshot(path=artifact("inbox-proactive.png"))
        assert tab.errors == []
    finally:
        await tab.context.close()
    proactive = (await numbers(server))["proactive"]
    assert (proactive["shown"], proactive["replied"], proactive["conversion_rate"]) == (1, 1, 1.0)


async def test_admin_page_and_article_link_in_a_reply(browser: Any, browser_server: LiveServer) -> None:
    server = browser_server
    store = server.state.store
    inbox = await webchat_inbox(server)
    admin = await make_agent(store, email="root@example.test", name="Root", role="admin")
    tab = await agent_tab(browser, server, admin, "/settings/selfservice")
    page = tab.page
    try:
        await page.locator('[data-stat="deflections"] strong', has_text="0").wait_for()
        form = page.locator("#ss-article-form")
        await form.locator("[name=title]").fill("Shipping <times>")
        await form.locator("[name=body]").fill("Parcels arrive in **3 days**.")
        await form.locator("[name=published]").check()
        await form.locator("button[type=submit]").click()
        await page.locator("#ss-articles .settings-row", has_text="Shipping <times> · published").wait_for()
        rules = page.locator("#ss-rule-form")
        assert await rules.locator("[name=inbox_id] option").all_inner_texts() == ["Website"]
        await rules.locator("[name=message]").fill("Questions about delivery?")
        await rules.locator("[name=min_seconds_on_page]").fill("3")
        await rules.locator("button[type=submit]").click()
        await page.locator("#ss-rules .settings-row", has_text="Questions about delivery?").wait_for()
        assert "after 3 s" in await page.locator("#ss-rules .settings-row").inner_text()
        await page.screenshot(path=artifact("settings-selfservice.png"), full_page=True)

        # In the inbox: "Insert article" puts a link to the article's public page into the reply.
        conversation = await server.state.service.deliver(inbound(inbox, "m-1", text="When will it arrive?"))
        await page.goto(f"{server.url}/#conversation/{conversation.conversation_id}")
        await page.locator("#composer-article").click()
        await page.locator("#article-search").fill("parcel")
        await page.locator("#article-results li[data-article-id]", has_text="Shipping <times>").click()
        value = await page.locator("#composer-text").input_value()
        async with store.session() as session:
            article_id = (await session.execute(select(Article.id))).scalar_one()
        assert value == f"[Shipping <times>]({server.url}/help/articles/{article_id})"
        public = await page.context.request.get(f"{server.url}/help/articles/{article_id}")
        assert public.status == 200 and "<strong>3 days</strong>" in await public.text()
        assert "&lt;times&gt;" in await public.text()  # the title is escaped on the public page
        assert tab.errors == []
    finally:
        await tab.context.close()
