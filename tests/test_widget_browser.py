"""The widget in a real browser (Chromium via Playwright) on a page from another origin, against the real
server: pre-chat form, live messages both ways, typing, offline queue, reload, text-only rendering."""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from channels.webchat.protocol import identity_hash
from inbox.config import WebchatConfig
from inbox.store.models import Contact, Identity, Message
from tests.browser import artifact, browser, host_site, shop_page
from tests.servers.app import LiveServer, live_server, make_config
from tests.webchat_client import admin_with_token, agent_stream, webchat_inbox

__all__ = ["browser"]  # the fixture, imported for pytest

PAYLOAD = '<img src=x onerror="window.pwned=1">'


def incoming(frame: dict[str, Any]) -> bool:
    return frame.get("type") == "message.created" and frame["data"]["kind"] == "incoming"


async def messages_with_body(server: LiveServer, body: str) -> int:
    async with server.state.store.session() as session:
        return len(list((await session.execute(select(Message).where(Message.body == body))).scalars()))


async def test_customer_and_agent_chat_live_through_the_widget(server: LiveServer, browser: Any) -> None:
    inbox = await webchat_inbox(server, prechat="required", color="#0f766e", reply_time="minutes")
    agent, token = await admin_with_token(server.state.store)
    with host_site(shop_page(server.url, inbox.public_key)) as site:
        assert not site.startswith(server.url)  # another origin than the server
        context = await browser.new_context(locale="en-US", viewport={"width": 1100, "height": 800})
        page = await context.new_page()
        async with agent_stream(server, token) as stream:
            await page.goto(site)
            launcher = page.locator("button.sb-launcher")
            await launcher.wait_for(state="visible")
            assert await launcher.get_attribute("aria-label") == "Open chat"
            await launcher.click()
            chat = page.frame_locator("iframe[title=Chat]")
            # The pre-chat form (required mode) comes first.
            await chat.locator("#prechat-name").fill("Carol <b>Customer</b>")
            await chat.locator("#prechat-email").fill("carol@example.test")
            await chat.locator("#prechat-start").click()
            text = chat.locator("#text")
            await text.fill("Hello, is the blue widget in stock?")
            await text.press("Enter")
            created = await stream.expect(incoming)
            assert created["data"]["body"] == "Hello, is the blue widget in stock?"
            conversation_id = created["data"]["conversation_id"]
            await chat.locator(".sb-visitor .sb-meta", has_text="Sent").wait_for()

            # Typing shows on both sides.
            await text.press_sequentially("one more thing")
            typing = await stream.expect(lambda f: f.get("type") == "typing" and f.get("sender") == "contact")
            assert typing["conversation_id"] == conversation_id and typing["active"] is True
            await stream.send({"type": "typing", "conversation_id": conversation_id, "active": True})
            await chat.locator("#typing", has_text="Ann Agent is typing…").wait_for()
            await page.screenshot(path=artifact("widget-typing.png"))

            # The agent's reply appears in the widget; the customer's earlier message now reads "Seen".
            await server.state.service.reply(conversation_id, by=agent, body="Yes! We have 12.", client_id="r-1")
            await chat.locator(".sb-agent .sb-bubble", has_text="Yes! We have 12.").wait_for()
            assert await chat.locator("#typing").is_hidden()
            await text.fill("")

            # Offline: two messages wait in the queue; back online, each reaches the agent exactly once.
            await context.set_offline(True)
            await chat.locator("#notice", has_text="You're offline").wait_for()
            for body in ("first while offline", PAYLOAD):
                await text.fill(body)
                await text.press("Enter")
            await chat.locator(".sb-pending .sb-meta", has_text="Will be sent when you're back online").first.wait_for()
            assert await chat.locator(".sb-pending").count() == 2
            await page.screenshot(path=artifact("widget-offline.png"))
            await context.set_offline(False)
            bodies: list[str] = []
            while len(bodies) < 2:
                frame = await stream.expect(incoming)
                bodies.append(frame["data"]["body"])
            assert bodies == ["first while offline", PAYLOAD]
            await chat.locator(".sb-pending").first.wait_for(state="detached")
            await stream.nothing(incoming, within=0.5)
            assert await messages_with_body(server, "first while offline") == 1
            assert await messages_with_body(server, PAYLOAD) == 1

            # Untrusted text renders as text, in the widget too.
            payload_bubble = chat.locator(".sb-visitor .sb-bubble", has_text=PAYLOAD)
            await payload_bubble.wait_for()
            assert await payload_bubble.locator("img").count() == 0
            assert await page.frames[1].evaluate("window.pwned === undefined")
            await page.screenshot(path=artifact("widget-chat.png"))

            # A reload keeps the thread (visitor token and history come back from the server).
            await page.reload()
            await page.locator("button.sb-launcher").click()
            chat = page.frame_locator("iframe[title=Chat]")
            await chat.locator(".sb-agent .sb-bubble", has_text="Yes! We have 12.").wait_for()
            bubbles = await chat.locator(".sb-msg:not(.sb-greeting) .sb-bubble").all_inner_texts()
            assert bubbles == [
                "Hello, is the blue widget in stock?",
                "Yes! We have 12.",
                "first while offline",
                PAYLOAD,
            ]
            assert await chat.locator("#prechat").is_hidden()
        await context.close()
    async with server.state.store.session() as session:
        contact = (await session.execute(select(Contact))).scalar_one()
    assert (contact.name, contact.email) == ("Carol <b>Customer</b>", "carol@example.test")


async def test_away_notice_russian_strings_phone_width_and_keyboard(server: LiveServer, browser: Any) -> None:
    inbox = await webchat_inbox(server, reply_time="day", position="left")
    # A site with a strict Content-Security-Policy (no inline style at all) that allows the Switchboard origin.
    html = shop_page(server.url, inbox.public_key, strict_csp=True).replace("data-key=", 'data-locale="ru" data-key=')
    with host_site(html) as site:
        context = await browser.new_context(locale="en-US", viewport={"width": 375, "height": 700}, is_mobile=True)
        page = await context.new_page()
        await page.goto(site)
        launcher = page.locator("button.sb-launcher")
        await launcher.wait_for(state="visible")
        assert await launcher.get_attribute("aria-label") == "Открыть чат"
        await launcher.focus()
        await page.keyboard.press("Enter")
        chat = page.frame_locator("iframe[title=Chat]")
        # No agent is online: the expected reply time and an email field.
        await chat.locator("#away-text", has_text="в течение дня").wait_for()
        box = await page.locator(".sb-window").bounding_box()
        assert box is not None and box["width"] == 375  # full width on a phone
        await page.screenshot(path=artifact("widget-phone-ru.png"))
        await chat.locator("#away-email").fill("ivan@example.test")
        await chat.locator("#away-email").press("Enter")
        await chat.locator("#away-text", has_text="ivan@example.test").wait_for()
        await chat.locator("#text").fill("Здравствуйте")
        await chat.locator("#text").press("Enter")
        await chat.locator(".sb-visitor .sb-meta", has_text="Отправлено").wait_for()
        await chat.locator("#text").press("Escape")  # Escape closes the window and gives focus back
        await page.locator(".sb-window").wait_for(state="hidden")
        await context.close()
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        async with server.state.store.session() as session:
            contact = (await session.execute(select(Contact))).scalar_one_or_none()
        if contact is not None and contact.email == "ivan@example.test":
            break
        assert asyncio.get_running_loop().time() < deadline, "the away email never reached the contact"
        await asyncio.sleep(0.05)


def tiny_png() -> bytes:
    """A real 2x2 PNG (the widget shows images inline)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@pytest.fixture
async def strict_server(db_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    config = make_config(db_url, tmp_path, webchat=WebchatConfig(visitor_messages_per_minute=4))
    async with live_server(config) as running:
        yield running


async def test_verified_identity_attachments_unread_badge_and_flood_notice(
    strict_server: LiveServer, browser: Any
) -> None:
    server = strict_server
    inbox = await webchat_inbox(server, require_identity_verification=True)
    agent, _ = await admin_with_token(server.state.store)
    good = identity_hash(inbox.secret, "u-1")
    identify = (
        "<script>window.addEventListener('load', () => Switchboard.identify("
        "{id: 'u-1', name: 'Vera', email: 'vera@example.test', hash: '%s'}))</script>"
    )
    with host_site(shop_page(server.url, inbox.public_key, extra=identify % good)) as site:
        context = await browser.new_context(locale="en-US")
        page = await context.new_page()
        await page.goto(site)
        await page.locator("button.sb-launcher").click()
        chat = page.frame_locator("iframe[title=Chat]")
        await chat.locator("#text").fill("Hi, it's Vera")
        await chat.locator("#text").press("Enter")
        await chat.locator(".sb-visitor .sb-meta", has_text="Sent").wait_for()
        async with server.state.store.session() as session:
            identity = (await session.execute(select(Identity))).scalar_one()
        assert identity.value == f"{inbox.id}:user:u-1" and identity.verified

        # A file goes up over HTTP with the visitor's upload token and shows inline.
        await chat.locator("#file").set_input_files(
            files=[{"name": "photo.png", "mimeType": "image/png", "buffer": tiny_png()}]
        )
        image = chat.locator(".sb-visitor img[alt='photo.png']")
        await image.wait_for()
        frame = next(f for f in page.frames if "/widget/frame" in f.url)
        await frame.wait_for_function(
            "() => { const i = document.querySelector('.sb-visitor img'); return i && i.complete && i.naturalWidth === 2; }"
        )
        # A file name is text, never markup.
        await chat.locator("#file").set_input_files(
            files=[{"name": PAYLOAD + ".txt", "mimeType": "text/plain", "buffer": b"order 555"}]
        )
        # (Chromium sends the quotes of a multipart file name as %22.)
        await chat.locator(".sb-visitor .sb-file", has_text="<img src=x onerror=").wait_for()
        assert await frame.evaluate("window.pwned === undefined && !document.querySelector('.sb-file img[src=x]')")
        # A file the inbox does not accept is refused in the widget, before any upload.
        await chat.locator("#file").set_input_files(
            files=[{"name": "page.html", "mimeType": "text/html", "buffer": b"<script>1</script>"}]
        )
        await chat.locator("#notice", has_text="This type of file is not accepted.").wait_for()

        # With the window closed, an agent reply raises the unread badge; opening clears it.
        await page.locator("button.sb-launcher").click()
        await page.locator(".sb-window").wait_for(state="hidden")
        conversation_id = (await _conversation(server)).id
        await server.state.service.reply(conversation_id, by=agent, body="Got the photo", client_id="r-1")
        badge = page.locator(".sb-badge")
        await badge.wait_for(state="visible")
        assert await badge.inner_text() == "1"
        await page.screenshot(path=artifact("widget-badge.png"))
        await page.locator("button.sb-launcher").click()
        await badge.wait_for(state="hidden")

        # A flood is throttled with a visible notice; the throttled message stays queued, not lost.
        for index in range(2):
            await chat.locator("#text").fill(f"flood {index}")
            await chat.locator("#text").press("Enter")
        await chat.locator("#notice", has_text="too fast").wait_for()
        await chat.locator(".sb-pending", has_text="flood 1").locator(".sb-meta", has_text="in a moment").wait_for()
        assert await chat.locator("#away").is_hidden() is False
        assert "vera@example.test" in await chat.locator("#away-text").inner_text()  # known from identify()
        await page.screenshot(path=artifact("widget-rate-limited.png"))
        await context.close()

    # A forged hash on an inbox that enforces verification: the widget explains, and nothing is readable.
    with host_site(shop_page(server.url, inbox.public_key, extra=identify % ("0" * 64))) as site:
        context = await browser.new_context(locale="en-US")
        page = await context.new_page()
        await page.goto(site)
        await page.locator("button.sb-launcher").click()
        chat = page.frame_locator("iframe[title=Chat]")
        await chat.locator("#notice", has_text="could not verify your account").wait_for()
        assert await chat.locator(".sb-msg:not(.sb-greeting)").count() == 0
        await context.close()


async def _conversation(server: LiveServer) -> Any:
    from inbox.store.models import Conversation

    async with server.state.store.session() as session:
        return (await session.execute(select(Conversation))).scalar_one()


async def test_two_tabs_of_one_visitor_show_the_same_thread_live(server: LiveServer, browser: Any) -> None:
    inbox = await webchat_inbox(server, prechat="optional")
    agent, _ = await admin_with_token(server.state.store)
    with host_site(shop_page(server.url, inbox.public_key)) as site:
        context = await browser.new_context(locale="en-US")
        first = await context.new_page()
        await first.goto(site)
        await first.locator("button.sb-launcher").click()
        chat_a = first.frame_locator("iframe[title=Chat]")
        await chat_a.locator("#prechat-skip").click()  # optional pre-chat form: skipped
        await chat_a.locator("#text").fill("from the first tab")
        await chat_a.locator("#text").press("Enter")
        await chat_a.locator(".sb-visitor .sb-meta", has_text="Sent").wait_for()
        second = await context.new_page()  # same browser, same visitor token
        await second.goto(site)
        await second.locator("button.sb-launcher").click()
        chat_b = second.frame_locator("iframe[title=Chat]")
        await chat_b.locator(".sb-visitor .sb-bubble", has_text="from the first tab").wait_for()
        await chat_b.locator("#text").fill("from the second tab")
        await chat_b.locator("#text").press("Enter")
        # Stored (it has an id), not just the pending copy the tabs share through localStorage.
        await chat_a.locator(".sb-visitor[data-id] .sb-bubble", has_text="from the second tab").wait_for()
        conversation_id = (await _conversation(server)).id
        await server.state.service.reply(conversation_id, by=agent, body="Hello to both tabs", client_id="r-1")
        for chat in (chat_a, chat_b):
            await chat.locator(".sb-agent .sb-bubble", has_text="Hello to both tabs").wait_for()
            texts = await chat.locator(".sb-msg:not(.sb-greeting) .sb-bubble").all_inner_texts()
            assert texts == ["from the first tab", "from the second tab", "Hello to both tabs"]
        await context.close()
