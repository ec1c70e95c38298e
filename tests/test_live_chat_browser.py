"""Both sides in real browsers at once: a customer in the widget on a page from another origin, and an agent
in the inbox UI, against the real server — live messages, typing both ways, the customer's offline queue
delivered exactly once, and an agent reload that shows the same thread."""

# ruff: noqa: F811  (the `browser` fixture is imported from tests.browser_agent)
from __future__ import annotations

from typing import Any

from tests.browser import host_site, shop_page
from tests.browser_agent import WAIT_MS, agent_tab, browser, folder, live, screenshot, thread_ids  # noqa: F401
from tests.factories import make_agent
from tests.servers.app import LiveServer
from tests.webchat_client import webchat_inbox

NAME = "<b>Carol</b> Customer"


async def test_customer_widget_and_agent_inbox_live(server: LiveServer, browser: Any) -> None:
    inbox = await webchat_inbox(server, prechat="required")
    ann = await make_agent(server.state.store, email="ann@example.test", name="Ann", role="admin")
    agent = await agent_tab(browser, server, ann)
    inbox_page = agent.page
    await live(inbox_page)
    await folder(inbox_page, "all")

    with host_site(shop_page(server.url, inbox.public_key)) as site:
        assert not site.startswith(server.url)
        customer = await browser.new_context(viewport={"width": 1000, "height": 760})
        shop = await customer.new_page()
        await shop.goto(site)
        await shop.locator("button.sb-launcher").click()
        chat = shop.frame_locator("iframe[title=Chat]")
        await chat.locator("#prechat-name").fill(NAME)
        await chat.locator("#prechat-email").fill("carol@example.test")
        await chat.locator("#prechat-start").click()
        text = chat.locator("#text")
        await text.fill("Is the blue widget in stock?")
        await text.press("Enter")

        # The agent sees it arrive live (the name as text), opens it and sees the customer typing.
        row = inbox_page.locator("#conversation-list li.conversation", has_text="Is the blue widget in stock?")
        await row.wait_for(timeout=WAIT_MS)
        await row.click()
        await inbox_page.wait_for_selector("#messages li.incoming >> text=Is the blue widget in stock?")
        await inbox_page.wait_for_function(
            f"document.querySelector('#thread-title').textContent.endsWith({NAME!r})", timeout=WAIT_MS
        )
        assert await inbox_page.locator("#thread-title b, #conversation-list b").count() == 0
        await text.press_sequentially("one more thing")
        await inbox_page.wait_for_selector("#others >> text=is typing…", timeout=WAIT_MS)
        await text.fill("")

        # The agent types (the customer sees it) and replies with Ctrl+Enter (the customer gets it).
        await inbox_page.type("#composer-text", "Yes! We have 12.")
        await chat.locator("#typing", has_text="Ann is typing…").wait_for(timeout=WAIT_MS)
        await inbox_page.press("#composer-text", "Control+Enter")
        await chat.locator(".sb-agent .sb-bubble", has_text="Yes! We have 12.").wait_for(timeout=WAIT_MS)
        await inbox_page.wait_for_selector("#messages li.outgoing[data-status=sent]", timeout=WAIT_MS)

        # The customer goes offline and writes twice; back online, the agent sees each exactly once.
        await customer.set_offline(True)
        await chat.locator("#notice", has_text="You're offline").wait_for(timeout=WAIT_MS)
        for body in ("first while offline", "second while offline"):
            await text.fill(body)
            await text.press("Enter")
        await customer.set_offline(False)
        await inbox_page.wait_for_selector("#messages li.incoming >> text=second while offline", timeout=WAIT_MS)
        await chat.locator(".sb-pending").first.wait_for(state="detached", timeout=WAIT_MS)
        bodies = await inbox_page.eval_on_selector_all(
            "#messages li.incoming .message-body", "els => els.map(e => e.textContent)"
        )
        assert bodies == ["Is the blue widget in stock?", "first while offline", "second while offline"]
        await screenshot(inbox_page, "live-chat-agent")
        await shop.screenshot(path="test-artifacts/live-chat-customer.png")

        # The agent reloads: the same thread.
        before = await thread_ids(inbox_page)
        await inbox_page.reload()
        await live(inbox_page)
        await inbox_page.wait_for_function(
            f"document.querySelectorAll('#messages > li').length === {len(before)}", timeout=WAIT_MS
        )
        assert await thread_ids(inbox_page) == before
        await customer.close()
    assert agent.errors == []
    await agent.context.close()
