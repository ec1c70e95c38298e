# ruff: noqa: F811  (pytest fixtures imported from tests.browser_agent are parameters here)
"""The pages this work adds — contacts, business hours, SLA policies, the help center — in Russian with no
English left over, and the inbox form's fields labelled in Russian in the browser."""

from __future__ import annotations

from typing import Any

import httpx

from inbox.store.models import Article
from tests.browser_agent import WAIT_MS, agent_tab, browser  # noqa: F401
from tests.factories import make_agent, make_inbox
from tests.servers.app import LiveServer
from tests.test_i18n import english_leftovers
from tests.test_settings_forms_browser import sqlite_server  # noqa: F401


async def test_new_pages_render_in_russian(sqlite_server: LiveServer) -> None:
    server = sqlite_server
    admin = await make_agent(server.state.store, email="ann@example.test", role="admin")
    async with server.state.store.transaction() as tx:
        tx.add(Article(title="Доставка", body="Каждый день.", html="<p>Каждый день.</p>", published=True))
    cookies = {"sb_session": server.state.sessions.issue(admin)}
    headers = {"accept-language": "ru"}
    async with httpx.AsyncClient(base_url=server.url, cookies=cookies, headers=headers) as http:
        expected = {
            "/contacts": "Контакты",
            "/settings/business_hours": "Рабочие часы",
            "/settings/sla_policies": "Политики SLA",
            "/help": "Центр помощи",
            "/help?q=доставка": "Статьи по запросу",
        }
        for path, text in expected.items():
            page = await http.get(path)
            assert page.status_code == 200, path
            assert text in page.text and '<html lang="ru">' in page.text, path
            assert english_leftovers(page.text) == [], path


async def test_inbox_form_is_labelled_in_russian(sqlite_server: LiveServer, browser: Any) -> None:
    server = sqlite_server
    admin = await make_agent(server.state.store, email="ann@example.test", role="admin")
    await make_inbox(server.state.store, channel="webchat", name="Сайт")
    tab = await agent_tab(browser, server, admin, "/settings/inboxes")
    page = tab.page
    await page.context.add_cookies([{"name": "sb_lang", "value": "ru", "url": server.url}])
    await page.reload()
    await page.wait_for_selector("#settings-create form", timeout=WAIT_MS)
    labels = await page.locator("#settings-create form label").all_inner_texts()
    assert any(label.startswith("Название") for label in labels)
    assert any(label.startswith("Приветствие") for label in labels)
    assert "Add inbox" not in await page.locator("#settings-create").inner_text()
    assert tab.errors == []
