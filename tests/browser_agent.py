"""Browser fixtures for the agent inbox tests: Debian's Chromium driven by Playwright, an agent signed in
by session cookie, and a real HTTP webhook receiver for API-channel replies.

Chromium missing: the tests skip with a printed reason, except in CI (`CI=true`), where they fail.
Never `playwright install`: it downloads a browser, which is neither wanted nor possible here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from inbox.store.models import Agent
from tests.chromium import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, require_chromium
from tests.servers.app import LiveServer


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A headless Chromium for one test (the async API, so it shares the loop with the live server)."""
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            await instance.close()


@dataclass
class AgentTab:
    """One signed-in browser context and its page; `errors` collects uncaught page errors."""

    context: Any
    page: Any
    errors: list[str]


async def agent_tab(browser: Any, server: LiveServer, agent: Agent, path: str = "/") -> AgentTab:
    """A new browser context signed in as `agent` (session cookie minted by the server), opened at `path`."""
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    cookie = server.state.sessions.issue(agent)
    await context.add_cookies([{"name": "sb_session", "value": cookie, "url": server.url}])
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(server.url + path)
    return AgentTab(context, page, errors)


async def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@dataclass
class Webhook:
    """An HTTP server on loopback that records API-channel deliveries.

    `gate` is set by default; clear it to hold replies in flight (the message stays `queued`).
    `status` is what it answers (e.g. 400 to make a delivery fail permanently).
    """

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    status: int = 200

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.decode("latin-1").split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length) if length else b""
            await self.gate.wait()
            status = self.status
            if status < 300:
                self.received.append(json.loads(body or b"{}"))
            reason = {200: "OK", 400: "Bad Request"}.get(status, "Status")
            writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    hook = Webhook()
    hook.gate.set()
    server = await asyncio.start_server(hook.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hook.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield hook
    finally:
        hook.gate.set()
        server.close()
        await server.wait_closed()


# ── page helpers ─────────────────────────────────────────────────────────────────────────────
WAIT_MS = 20_000  # generous: the suite shares two cores with everything else


async def live(page: Any) -> None:
    await page.wait_for_selector("body[data-connection=live]", timeout=WAIT_MS)


async def folder(page: Any, name: str) -> None:
    await page.click(f"#folders [data-folder={name}]")
    await page.wait_for_selector(f"#folders [data-folder={name}].active")


def row(conversation_id: int) -> str:
    return f'#conversation-list li[data-id="{conversation_id}"]'


async def thread_ids(page: Any) -> list[int]:
    ids: list[int] = await page.eval_on_selector_all("#messages > li", "els => els.map(e => Number(e.dataset.id))")
    return ids
