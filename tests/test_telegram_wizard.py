# ruff: noqa: F811  (pytest fixtures imported from tests.browser_agent are parameters here)
"""The Telegram wizard in the inbox form, against the local Bot API server: paste the token, "Check the token"
asks getMe through `POST /api/v1/wizards/telegram`, shows the bot's name and says how updates will arrive; a
refused token shows Telegram's answer at the token field. Then the inbox saves and the channel starts."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from inbox.api.wizards import updates_mode
from inbox.config import TelegramConfig
from inbox.store.models import Inbox
from tests.browser_agent import WAIT_MS, agent_tab, browser  # noqa: F401
from tests.factories import make_agent
from tests.servers.app import LiveServer, live_server, make_config
from tests.servers.telegram import BOT_USER, TOKEN, FakeTelegram, telegram_server
from tests.test_ux_browser import SIZES, axe_violations, no_horizontal_scroll

pytestmark = pytest.mark.timeout(240)


@pytest.mark.parametrize(
    ("url", "mode"),
    [
        ("https://support.example.com", "webhook"),
        ("https://support.example.com:8443/sb", "webhook"),
        ("http://support.example.com", "polling"),
        ("https://localhost:8000", "polling"),
        ("https://127.0.0.1", "polling"),
        ("https://192.168.1.5", "polling"),
        ("", "polling"),
    ],
)
def test_updates_arrive_by_webhook_only_at_a_public_https_address(url: str, mode: str) -> None:
    assert updates_mode(url) == mode


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with telegram_server() as running:
        yield running


@pytest.fixture
async def telegram_app(tmp_path: Path, fake: FakeTelegram) -> AsyncIterator[LiveServer]:
    config = make_config(f"sqlite+aiosqlite:///{tmp_path / 'switchboard.db'}", tmp_path)
    telegram = TelegramConfig(api_base_url=fake.api_base_url, file_base_url=fake.file_base_url, poll_timeout_seconds=1)
    async with live_server(dataclasses.replace(config, telegram=telegram)) as running:
        yield running


@pytest.mark.parametrize("size_name", ["phone", "desktop"])
async def test_paste_token_check_bot_name_and_save(
    telegram_app: LiveServer, fake: FakeTelegram, browser: Any, size_name: str
) -> None:
    server, size = telegram_app, SIZES[size_name]
    admin = await make_agent(server.state.store, email="ann@example.test", role="admin")
    tab = await agent_tab(browser, server, admin, "/settings/inboxes")
    page = tab.page
    await page.set_viewport_size(size)
    create = page.locator("#settings-create form")
    await create.wait_for(timeout=WAIT_MS)
    await create.locator("input[name=name]").fill("Bot desk")
    await create.locator("select[name=channel]").select_option("telegram")

    # A token Telegram refuses: its answer at the token field.
    await create.locator("input[name=bot_token]").fill("999:wrong")
    await create.locator("button.wizard-check").click()
    error = create.locator('[data-field="bot_token"] .field-error')
    await error.wait_for(state="visible", timeout=WAIT_MS)
    assert "Unauthorized" in await error.inner_text()
    assert await axe_violations(page) == []

    # The right token: the bot's name, and polling (this test server is not public over https).
    await create.locator("input[name=bot_token]").fill(TOKEN)
    await create.locator("button.wizard-check").click()
    result = create.locator(".wizard-result")
    await page.wait_for_function(
        "document.querySelector('#settings-create .wizard-result').textContent.includes('@')", timeout=WAIT_MS
    )
    text = await result.inner_text()
    assert f"@{BOT_USER['username']}" in text and "poll" in text
    assert await create.locator("select[name=mode]").input_value() == "polling"
    assert [call.method for call in fake.calls].count("getMe") >= 1
    if size_name == "phone":
        await no_horizontal_scroll(page, size["width"])
    assert await axe_violations(page) == []

    await create.locator("button[type=submit]").last.click()
    await page.wait_for_selector('#settings-list summary:text-is("Bot desk (Telegram)")', timeout=WAIT_MS)
    async with server.state.store.session() as session:
        [inbox] = (await session.execute(select(Inbox))).scalars().all()
    assert inbox.settings == {"bot_token": TOKEN}  # defaults (polling, no groups, …) are not written
    assert tab.errors == []
