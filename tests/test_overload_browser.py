"""The widget in Chromium against an overloaded server: messages stay unsent with "Sending slowly…", are sent
again after the server's `retry_after`, and each reaches the agent exactly once, in the visitor's order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from inbox.store.models import Message
from tests.browser import artifact, browser, host_site, shop_page
from tests.overload import Gate, metric
from tests.poll import eventually
from tests.servers.app import LiveServer, live_server, make_config
from tests.test_overload import BUSY
from tests.webchat_client import admin_with_token, agent_stream, webchat_inbox, widget

__all__ = ["browser"]  # the fixture, imported for pytest

TEXTS = ["first while busy", "second while busy", "third while busy"]


@pytest.fixture
async def busy_sqlite_server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    async with live_server(
        make_config(f"sqlite+aiosqlite:///{tmp_path / 'switchboard.db'}", tmp_path, admission=BUSY)
    ) as running:
        yield running


async def visitor_messages(server: LiveServer) -> list[str]:
    async with server.state.store.session() as session:
        query = select(Message.body).where(col(Message.body).in_(TEXTS)).order_by(col(Message.id))
        return list((await session.execute(query)).scalars())


async def test_widget_sends_slowly_while_overloaded_and_delivers_every_message_once(
    busy_sqlite_server: LiveServer, browser: Any
) -> None:
    server = busy_sqlite_server
    inbox = await webchat_inbox(server)
    _, token = await admin_with_token(server.state.store)
    gate = Gate(server.state.service)
    try:
        with host_site(shop_page(server.url, inbox.public_key)) as site:
            context = await browser.new_context(locale="en-US")
            page = await context.new_page()
            async with (
                agent_stream(server, token) as stream,
                widget(server, inbox.public_key, hello={}) as other,
            ):
                # Another visitor's message is stuck in the store: it holds the only delivery slot.
                await other.expect_type("welcome")
                await other.send({"type": "message", "client_id": "o-1", "body": "holding the slot"})
                await eventually(lambda: gate.waiting == 1, what="the other visitor's message is in flight")

                await page.goto(site)
                await page.locator("button.sb-launcher").click()
                chat = page.frame_locator("iframe[title=Chat]")
                for text in TEXTS:
                    await chat.locator("#text").fill(text)
                    await chat.locator("#text").press("Enter")
                # Unsent, not failed: every message waits with "Sending slowly…" and a calm notice.
                for text in TEXTS:
                    pending = chat.locator(".sb-pending", has_text=text)
                    await pending.locator(".sb-meta", has_text="Sending slowly…").wait_for()
                await chat.locator("#notice", has_text="very busy").wait_for()
                assert await chat.locator(".sb-failed").count() == 0
                await page.screenshot(path=artifact("widget-sending-slowly.png"))
                # It keeps trying (each resend refused while the slot is held), and nothing is stored yet.
                await eventually(
                    lambda: metric(server.url, "switchboard_deliveries_refused_total"),
                    within=10,
                    what="refusals",
                )
                refused_before = await metric(server.url, "switchboard_deliveries_refused_total")
                await eventually(
                    lambda: _more(server, refused_before), within=10, what="the widget resends after retry_after"
                )
                assert await visitor_messages(server) == []

                gate.release()
                for text in TEXTS:  # stored: the bubble carries the server's id
                    await chat.locator(".sb-visitor[data-id] .sb-bubble", has_text=text).wait_for()
                await chat.locator("#notice").wait_for(state="hidden")
                assert await chat.locator(".sb-pending").count() == 0
                created: list[str] = []
                async with asyncio.timeout(10):
                    while len(created) < len(TEXTS) + 1:
                        created.append((await stream.expect_type("message.created"))["data"]["body"])
            assert sorted(created) == sorted([*TEXTS, "holding the slot"])
            assert await visitor_messages(server) == TEXTS  # each exactly once, in the order typed
            await context.close()
    finally:
        gate.close()


async def _more(server: LiveServer, than: float) -> bool:
    return await metric(server.url, "switchboard_deliveries_refused_total") > than
