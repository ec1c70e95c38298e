# ruff: noqa: F811  (pytest fixtures imported from tests.browser_agent are parameters here)
"""The API inbox's "Send test event" in the settings form, against a real local webhook receiver: a signed
`{"event": "test"}` arrives and the form shows the status; a receiver that refuses shows its answer. At 390 px
and 1440 px, with axe."""

from __future__ import annotations

from typing import Any

import pytest

from inbox.store.models import key
from tests.browser_agent import WAIT_MS, Webhook, agent_tab, browser, webhook  # noqa: F401
from tests.factories import make_agent, make_inbox
from tests.servers.app import LiveServer
from tests.test_settings_forms_browser import sqlite_server  # noqa: F401
from tests.test_ux_browser import SIZES, axe_violations, no_horizontal_scroll

pytestmark = pytest.mark.timeout(240)


@pytest.mark.parametrize("size_name", ["phone", "desktop"])
async def test_send_test_event_to_the_webhook(
    sqlite_server: LiveServer, browser: Any, webhook: Webhook, size_name: str
) -> None:
    server, size = sqlite_server, SIZES[size_name]
    admin = await make_agent(server.state.store, email="ann@example.test", role="admin")
    inbox = await make_inbox(server.state.store, channel="api", name="Shop backend", webhook_url="http://127.0.0.1:9/x")
    tab = await agent_tab(browser, server, admin, "/settings/inboxes")
    page = tab.page
    await page.set_viewport_size(size)
    row = page.locator(f'details[data-id="{key(inbox)}"]')
    await row.wait_for(timeout=WAIT_MS)
    await row.locator("> summary").click()
    assert await row.locator("details.secret > summary").inner_text() == "Inbox secret"

    # The address as typed is used, before it is saved.
    await row.locator("input[name=webhook_url]").fill(webhook.url)
    await row.locator("button.wizard-check").click()
    result = row.locator(".wizard-result")
    await page.wait_for_function(
        "document.querySelector('.wizard-result').textContent.startsWith('✓')", timeout=WAIT_MS
    )
    assert "200" in await result.inner_text()
    assert webhook.received[-1]["event"] == "test" and webhook.received[-1]["inbox_id"] == key(inbox)
    assert await axe_violations(page) == []

    webhook.status = 400
    await row.locator("button.wizard-check").click()
    await page.wait_for_function(
        "document.querySelector('.wizard-result').textContent.startsWith('✗')", timeout=WAIT_MS
    )
    assert "400" in await result.inner_text()
    if size_name == "phone":
        await no_horizontal_scroll(page, size["width"])
    assert tab.errors == []
