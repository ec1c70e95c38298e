# ruff: noqa: F811  (pytest fixtures imported from tests.browser_agent are parameters here)
"""The agent side at phone width (390 × 844) and desktop width (1440 × 900) in Chromium: one pane at a time
with a back control (also for a conversation opened from a link), reply, assign, priority and resolve on a
phone; no horizontal scroll on any page; axe-core (vendored, WCAG 2.0/2.1 A and AA) finds no critical or
serious violation on any page at either width; canned responses by prefix; the agent's Markdown rendered;
folder counts; the inbox in Russian."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from inbox.store.models import Agent, Article, CannedResponse, Conversation, Inbox, key
from tests.browser_agent import WAIT_MS, Webhook, agent_tab, browser, folder, live, row, screenshot, webhook  # noqa: F401
from tests.factories import add_member, inbound, make_agent, make_inbox, make_label
from tests.servers.app import LiveServer

pytestmark = pytest.mark.timeout(240)

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
SIZES = {"phone": PHONE, "desktop": DESKTOP}


@dataclasses.dataclass
class World:
    server: LiveServer
    inbox: Inbox
    ann: Agent
    bob: Agent

    async def deliver(self, external_id: str, text: str, sender: str = "carol") -> int:
        delivered = await self.server.state.service.deliver(inbound(self.inbox, external_id, text=text, sender=sender))
        return int(delivered.conversation_id)


async def build(server: LiveServer, webhook_url: str) -> World:
    store = server.state.store
    inbox = await make_inbox(store, channel="api", name="Support", webhook_url=webhook_url)
    ann = await make_agent(store, email="ann@example.test", name="Ann", role="admin")
    bob = await make_agent(store, email="bob@example.test", name="Bob")
    await add_member(store, inbox, ann)
    await add_member(store, inbox, bob)
    await make_label(store, "vip")
    async with store.transaction() as tx:
        tx.add(CannedResponse(short_code="hello", content="Hello! Thanks for reaching out."))
        tx.add(CannedResponse(short_code="thanks", content="Thank you for writing to us!"))
    return World(server, inbox, ann, bob)


async def sized_tab(browser: Any, world: World, size: dict[str, int], path: str = "/", **extra: Any) -> Any:
    tab = await agent_tab(browser, world.server, world.ann, path)
    await tab.page.set_viewport_size(size)
    return tab


async def no_horizontal_scroll(page: Any, width: int) -> None:
    scroll = await page.evaluate("document.scrollingElement.scrollWidth")
    assert scroll <= width, f"{page.url}: {scroll}px wide at {width}px"


async def axe_violations(page: Any) -> list[str]:
    """Critical and serious WCAG 2.0/2.1 A/AA violations axe-core finds on the page as it is now."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE))
    results = await page.evaluate(
        """async () => {
          const r = await axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}});
          return r.violations.filter(v => v.impact === "critical" || v.impact === "serious")
            .map(v => `${v.impact} ${v.id}: ${v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(" | ")}`);
        }"""
    )
    return list(results)


async def conversation(world: World, conversation_id: int) -> Conversation:
    async with world.server.state.store.session() as session:
        found = (
            await session.execute(select(Conversation).where(Conversation.id == conversation_id))  # type: ignore[arg-type]
        ).scalar_one()
        return found


async def test_phone_width_list_thread_back_reply_assign_resolve(
    server: LiveServer, browser: Any, webhook: Webhook
) -> None:
    world = await build(server, webhook.url)
    first = await world.deliver("m1", "Where is my order?")
    second = await world.deliver("m2", "Can I pay by invoice?", sender="dave")
    tab = await sized_tab(browser, world, PHONE)
    page = tab.page
    await live(page)
    await folder(page, "all")

    # The list view: folders, filters and the list; no thread, no horizontal scroll.
    await page.wait_for_selector(row(first), timeout=WAIT_MS)
    assert await page.is_visible("#folders [data-folder=mine]")
    assert await page.is_visible("#filter-status")
    assert not await page.is_visible("#thread")
    await no_horizontal_scroll(page, PHONE["width"])
    await screenshot(page, "ux-phone-1-list")

    # Open a conversation: the thread alone, with a way back.
    await page.click(row(first))
    await page.wait_for_selector("#messages li.incoming", timeout=WAIT_MS)
    assert not await page.is_visible("#conversation-list")
    assert await page.is_visible("#back-to-list")
    await no_horizontal_scroll(page, PHONE["width"])

    # Reply, assign, set the priority, resolve — all within reach.
    await page.fill("#composer-text", "On its way **today**.")
    await page.click("#composer-send")
    await page.wait_for_selector("#messages li.outgoing .message-body strong", timeout=WAIT_MS)
    await page.select_option("#assign-select", str(key(world.bob)))
    await page.select_option("#priority-select", "high")
    await page.click("#resolve")
    await page.wait_for_selector("#thread-status[data-status=resolved]", timeout=WAIT_MS)
    stored = await conversation(world, first)
    assert (stored.status, stored.assignee_id, stored.priority) == ("resolved", key(world.bob), "high")
    await screenshot(page, "ux-phone-2-thread")

    await page.click("#back-to-list")
    await page.wait_for_selector("#conversation-list", state="visible")
    assert not await page.is_visible("#thread")

    # Opened from a link: the thread, and the back control leads to the list.
    linked = await sized_tab(browser, world, PHONE, f"/#conversation/{second}")
    await live(linked.page)
    await linked.page.wait_for_selector("#messages li.incoming", timeout=WAIT_MS)
    assert await linked.page.is_visible("#back-to-list")
    await linked.page.click("#back-to-list")
    await linked.page.wait_for_selector("#folders", state="visible")
    assert not await linked.page.is_visible("#thread")
    assert tab.errors == [] and linked.errors == []


async def test_pages_reflow_at_phone_width_and_pass_axe_at_both_widths(
    server: LiveServer, browser: Any, webhook: Webhook
) -> None:
    world = await build(server, webhook.url)
    opened = await world.deliver("m1", "Hello there")
    async with server.state.store.transaction() as tx:
        article = Article(title="Returns", body="Send it back.", html="<p>Send it back.</p>", published=True)
        tx.add(article)
    pages = ["/reports", "/settings/inboxes", "/settings/agents", "/settings/canned_responses"]
    pages += ["/settings/health", "/settings/selfservice", f"/help/articles/{key(article)}", "/csat/not-a-token"]
    found: dict[str, list[str]] = {}
    for name, size in SIZES.items():
        tab = await sized_tab(browser, world, size)
        page = tab.page
        await live(page)
        await folder(page, "all")
        await page.wait_for_selector(row(opened), timeout=WAIT_MS)
        found[f"{name} /"] = await axe_violations(page)
        await page.click(row(opened))
        await page.wait_for_selector("#messages li.incoming", timeout=WAIT_MS)
        found[f"{name} /#conversation"] = await axe_violations(page)
        if size is PHONE:
            await no_horizontal_scroll(page, size["width"])
        for path in pages:
            await page.goto(server.url + path)
            await page.wait_for_load_state("networkidle")
            found[f"{name} {path}"] = await axe_violations(page)
            if size is PHONE:
                await no_horizontal_scroll(page, size["width"])
        await tab.context.close()
        logged_out = await browser.new_context(viewport=size)
        login = await logged_out.new_page()
        await login.goto(server.url + "/login")
        found[f"{name} /login"] = await axe_violations(login)
        if size is PHONE:
            await no_horizontal_scroll(login, size["width"])
        await logged_out.close()
    assert {where: problems for where, problems in found.items() if problems} == {}


async def test_canned_prefix_markdown_folder_counts_and_russian(
    server: LiveServer, browser: Any, webhook: Webhook
) -> None:
    world = await build(server, webhook.url)
    first = await world.deliver("m1", "Hi")
    await world.deliver("m2", "Hello again", sender="dave")
    tab = await sized_tab(browser, world, DESKTOP)
    page = tab.page
    await live(page)
    await folder(page, "all")
    await page.wait_for_selector('#folders [data-count="all"]:text("2")', timeout=WAIT_MS)
    await page.wait_for_selector('#folders [data-count="mine"]:text("0")', timeout=WAIT_MS)
    await page.click(row(first))
    await page.wait_for_selector("#messages li.incoming", timeout=WAIT_MS)

    # "/tha" + Enter: the response whose short code starts with it, not the first that mentions "tha".
    await page.click("#composer-text")
    await page.keyboard.type("/tha")
    await page.wait_for_selector("#canned-menu li.active", timeout=WAIT_MS)
    assert (await page.text_content("#canned-menu li.active strong")) == "/thanks"
    await page.keyboard.press("Enter")
    assert await page.input_value("#composer-text") == "Thank you for writing to us!"

    # The agent's Markdown as the customer sees it; raw HTML stays text.
    await page.fill(
        "#composer-text", "**Bold** and *soft*, `code`, [docs](https://example.test/d)\n- one\n- two <b>x</b>"
    )
    await page.press("#composer-text", "Control+Enter")
    body = page.locator("#messages li.outgoing .message-body")
    await body.locator("strong").wait_for(timeout=WAIT_MS)
    assert await body.locator("strong").text_content() == "Bold"
    assert await body.locator("em").text_content() == "soft"
    assert await body.locator("a").get_attribute("href") == "https://example.test/d"
    assert await body.locator("li").all_text_contents() == ["one", "two <b>x</b>"]
    assert await body.locator("b").count() == 0

    # After an assignment to me, "Mine" counts it.
    await page.select_option("#assign-select", str(key(world.ann)))
    await page.wait_for_selector('#folders [data-count="mine"]:text("1")', timeout=WAIT_MS)

    # The same inbox in Russian (the picker's cookie).
    await page.select_option(".topbar select[name=lang]", "ru")
    await page.wait_for_selector("html[lang=ru]", timeout=WAIT_MS)
    await live(page)
    assert (await page.text_content("#folders [data-folder=mine]") or "").startswith("Мои")
    await page.click(row(first))
    await page.wait_for_selector("#messages li.outgoing .delivery-status", timeout=WAIT_MS)
    assert await page.locator("#messages li.outgoing .sender").first.text_content() in ("Ann", "Оператор")
    status = await page.locator("#messages li.outgoing .delivery-status").first.text_content()
    assert status in ("Отправляется…", "Отправлено", "Доставлено", "Ошибка")
    assert tab.errors == []
