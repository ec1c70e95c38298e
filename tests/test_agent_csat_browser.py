"""The agent inbox in a real browser, live: a renamed label shows its new name at once (list, header, filter),
and a customer's survey answer appears as an activity line in the open conversation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest
from sqlmodel import col, select

from inbox.service import ConversationChanges
from inbox.store.models import CsatSurvey
from tests.factories import add_member, inbound, make_agent, make_inbox, make_label, make_token
from tests.servers.app import LiveServer

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_label_rename_and_csat_answer_show_live(page: Page, browser_server: LiveServer) -> None:
    from playwright.async_api import expect

    server = browser_server
    store, service, surveys = server.state.store, server.state.service, server.state.surveys
    inbox = await make_inbox(store, csat_enabled=True)
    bob = await make_agent(store, email="bob@example.test", name="Bob")
    admin = await make_agent(store, email="admin@example.test", name="Ann", role="admin")
    await add_member(store, inbox, bob)
    label = await make_label(store, "billing")
    delivered = await service.deliver(inbound(inbox, text="Invoice is wrong"))
    cid = delivered.conversation_id
    await service.update_conversation(cid, ConversationChanges(assignee_id=bob.id, labels=["billing"]), by=admin)

    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.context.add_cookies(
        [{"name": "sb_session", "value": server.state.sessions.issue(bob), "url": server.url}]
    )
    await page.goto(server.url + "/")
    await page.wait_for_selector("body[data-connection=live]")
    row = page.locator(f'#conversation-list li[data-id="{cid}"]')
    await expect(row.locator(".label")).to_have_text("billing")
    await row.click()
    await expect(page.locator("#current-labels .label")).to_have_text("billing")

    token = await make_token(store, admin)
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http:
        assert (await http.patch(f"/api/v1/labels/{label.id}", json={"name": "invoices"})).status_code == 200
    await expect(row.locator(".label")).to_have_text("invoices")
    await expect(page.locator("#current-labels .label")).to_have_text("invoices")
    await expect(page.locator("#filter-label option[value=invoices]")).to_have_count(1)
    await expect(page.locator("#filter-label option[value=billing]")).to_have_count(0)

    await service.reply(cid, by=bob, body="Fixed it.", client_id=None)
    await service.update_conversation(cid, ConversationChanges(status="resolved"), by=bob)
    async with store.session() as session:
        survey_id = (
            await session.execute(select(CsatSurvey.id).where(col(CsatSurvey.conversation_id) == cid))
        ).scalar_one()
    await surveys.respond(surveys.token(survey_id), 5, "thanks!")
    await expect(page.locator("#messages > li", has_text="Customer rated 5 — “thanks!”")).to_have_count(1)
    assert errors == []
