"""The audit-log page in a real browser (Debian's Chromium via Playwright): entries newest first, the agent
and action filters, the "Older entries" page; a supervisor sees no Settings link and gets 403 on the page."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from inbox.admin.directory import AgentChanges, Directory
from inbox.store import audit
from inbox.store.models import key
from tests.servers.app import LiveServer

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_audit_page_lists_filters_and_pages(page: Page, browser_server: LiveServer) -> None:
    from playwright.async_api import expect

    server = browser_server
    directory = Directory(server.state.service)
    root = await directory.create_agent(
        email="root@example.test", name="Root", role="admin", password="a-long-password"
    )
    sam = await directory.create_agent(email="sam@example.test", name="Sam", role="agent", password="a-long-password")
    audit.acting.set(audit.Actor(key(root), root.email, "192.0.2.7"))  # as if Root did these over HTTP
    await directory.update_agent(key(sam), AgentChanges(role="supervisor"))
    for n in range(55):
        await directory.create_token(key(root), f"token {n}")
    audit.acting.set(audit.SYSTEM)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    await page.context.add_cookies(
        [{"name": "sb_session", "value": server.state.sessions.issue(root), "url": server.url}]
    )
    await page.goto(server.url + "/settings/inboxes")
    await page.click("a[href='/settings/audit']")
    await page.wait_for_url(server.url + "/settings/audit")
    rows = page.locator("#audit-table tr.audit-entry")
    await expect(rows).to_have_count(50)
    await expect(rows.first.locator(".audit-action")).to_have_text("token.created")
    await expect(rows.first).to_contain_text("192.0.2.7")

    await page.click("#audit-older")
    await expect(rows).to_have_count(8)  # 58 entries: 2 agents created, a role change, 55 tokens
    await expect(rows.last.locator(".audit-action")).to_have_text("agent.created")

    await page.goto(server.url + "/settings/audit")
    await page.fill("input[name=action]", "agent.role_changed")
    await page.click(".audit-filters button[type=submit]")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text('"supervisor"')
    await page.select_option("select[name=actor]", str(key(sam)))
    await page.click(".audit-filters button[type=submit]")
    await expect(rows).to_have_count(0)
    await expect(page.locator("#audit-table")).to_contain_text("No entries.")
    assert errors == []

    supervisor = server.state.sessions.issue(await directory.update_agent(key(sam), AgentChanges(active=True)))
    await page.context.clear_cookies()
    await page.context.add_cookies([{"name": "sb_session", "value": supervisor, "url": server.url}])
    await page.goto(server.url + "/")
    await expect(page.locator("a[href='/reports']")).to_be_visible()
    await expect(page.locator("a[href='/settings/inboxes']")).to_have_count(0)
    async with httpx.AsyncClient(base_url=server.url, cookies={"sb_session": supervisor}) as http:
        assert (await http.get("/settings/audit")).status_code == 403
        assert (await http.get("/settings/inboxes")).status_code == 403
