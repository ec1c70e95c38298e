# ruff: noqa: F811  (pytest fixtures imported from tests.browser_agent are parameters here)
"""The contacts page in Chromium at 390 px and 1440 px: search, identities as people read them, edit (a bad
email is refused at its field by the API), and merge with a preview of what joins; axe finds no critical or
serious violation."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from sqlmodel import select

from channels.base import Identity as Sender
from channels.base import IdentityKind
from inbox.store.models import Agent, Contact, Conversation, Identity
from tests.browser_agent import WAIT_MS, agent_tab, browser, screenshot  # noqa: F401
from tests.factories import add_member, inbound, make_agent, make_inbox
from tests.servers.app import LiveServer
from tests.test_settings_forms_browser import sqlite_server  # noqa: F401
from tests.test_ux_browser import SIZES, axe_violations, no_horizontal_scroll

pytestmark = pytest.mark.timeout(240)


async def contacts(server: LiveServer) -> dict[str, Contact]:
    async with server.state.store.session() as session:
        rows = (await session.execute(select(Contact))).scalars()
        return {row.name: row for row in rows}


async def seed(server: LiveServer) -> Agent:
    store = server.state.store
    mail = await make_inbox(store, channel="api", name="Mail desk")
    chat = await make_inbox(store, channel="webchat", name="Site chat")
    agent = await make_agent(store, email="ann@example.test", name="Ann")  # an agent, not an admin
    await add_member(store, mail, agent)
    await add_member(store, chat, agent)
    service = server.state.service
    await service.deliver(inbound(mail, "m1", text="Where is my order?", sender="carol"))
    visitor = Sender(IdentityKind.WEBCHAT, f"{chat.id}:visitor:abc", name="Carol on the site")
    await service.deliver(dataclasses.replace(inbound(chat, "w1", text="Hello from the site"), sender=visitor))
    return agent


@pytest.mark.parametrize("size_name", ["phone", "desktop"])
async def test_search_edit_and_merge_contacts(sqlite_server: LiveServer, browser: Any, size_name: str) -> None:
    server, size = sqlite_server, SIZES[size_name]
    agent = await seed(server)
    people = await contacts(server)
    assert set(people) >= {"Carol on the site"}, people
    site = people["Carol on the site"]
    [mail_person] = [row for name, row in people.items() if name != "Carol on the site"]

    tab = await agent_tab(browser, server, agent, "/contacts")
    page = tab.page
    await page.set_viewport_size(size)
    await page.wait_for_selector("#contacts-list a[data-id]", timeout=WAIT_MS)
    assert await page.locator("#contacts-list a[data-id]").count() == 2

    # Search narrows the list.
    await page.fill("#contact-q", "site")
    await page.click("#contact-search button[type=submit]")
    await page.wait_for_function("document.querySelectorAll('#contacts-list a[data-id]').length === 1", timeout=WAIT_MS)

    # The identity reads like a sentence, not "1:visitor:abc".
    await page.click(f'#contacts-list a[data-id="{site.id}"]')
    await page.wait_for_selector("#contact-detail .identities li", timeout=WAIT_MS)
    identity = await page.locator("#contact-detail .identities li").first.inner_text()
    assert identity.startswith("Website visitor since"), identity
    assert "visitor:abc" not in identity

    # Invalid email: the API's 422 shows under the email field.
    form = page.locator("#contact-detail form.contact-form")
    await form.locator("input[name=email]").fill("not an email")
    await form.locator("button[type=submit]").last.click()
    error = form.locator('[data-field="email"] .field-error')
    await error.wait_for(state="visible", timeout=WAIT_MS)
    assert await form.locator("input[name=email]").get_attribute("aria-invalid") == "true"
    assert await axe_violations(page) == []
    if size_name == "phone":
        await no_horizontal_scroll(page, size["width"])

    # Valid edit: name, email, phone and an attribute.
    await form.locator("input[name=name]").fill("Carol Jones")
    await form.locator("input[name=email]").fill("carol@example.test")
    await form.locator("input[name=phone]").fill("+49 30 1234567")
    await form.locator("button:text('Add an attribute')").click()
    await form.locator("input[name=attr_name]").last.fill("plan")
    await form.locator("input[name=attr_value]").last.fill("pro")
    await form.locator("button[type=submit]").last.click()
    await page.wait_for_selector('#contact-detail h2:text("Carol Jones")', timeout=WAIT_MS)
    edited = (await contacts(server))["Carol Jones"]
    assert (edited.email, edited.phone, edited.attributes) == ("carol@example.test", "+49 30 1234567", {"plan": "pro"})

    # Merge the mail contact into the edited one: a preview first, then the merge.
    await page.fill("#contact-q", "")
    await page.click("#contact-search button[type=submit]")
    await page.wait_for_function("document.querySelectorAll('#contacts-list a[data-id]').length === 2", timeout=WAIT_MS)
    await page.click(f'#contacts-list a[data-id="{mail_person.id}"]')
    await page.wait_for_selector(f'#contact-detail h2:text("{mail_person.name}")', timeout=WAIT_MS)
    await page.click("#contact-detail details.merge > summary")
    await page.fill("#merge-q", "Carol Jones")
    await page.click("#contact-detail details.merge button[type=submit]")
    await page.click(f'.merge-pick[data-id="{site.id}"]')
    await page.wait_for_selector("#merge-confirm", timeout=WAIT_MS)
    preview = await page.locator(".merge-preview").inner_text()
    assert "joins Carol Jones" in preview and "carol@example.test" in preview and "plan: pro" in preview
    assert "identities 1, conversations 1" in preview
    await screenshot(page, f"contacts-merge-{size_name}")
    assert await axe_violations(page) == []
    await page.click("#merge-confirm")
    await page.wait_for_function("document.querySelectorAll('#contacts-list a[data-id]').length === 1", timeout=WAIT_MS)
    async with server.state.store.session() as session:
        merged = await session.get(Contact, mail_person.id)
        assert merged is not None and merged.merged_into_id == site.id
        moved = (await session.execute(select(Identity).where(Identity.contact_id == site.id))).scalars().all()  # type: ignore[arg-type]
        assert len(moved) == 2
        owners = {row.contact_id for row in (await session.execute(select(Conversation))).scalars()}
        assert owners == {site.id}
    if size_name == "phone":
        await no_horizontal_scroll(page, size["width"])
    assert tab.errors == []
