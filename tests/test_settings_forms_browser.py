# ruff: noqa: F811  (pytest fixtures imported from tests.browser_agent are parameters here)
"""Settings as forms in Chromium, at phone (390 px) and desktop (1440 px) width: the inbox form (a labelled
field per setting of each channel kind, no JSON textarea), business hours (a weekly grid with intervals and
holidays) and SLA policies. Each form saves valid input through the JSON API and shows the API's 422 error
next to the field it names; axe-core finds no critical or serious violation on any of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from inbox.store.models import Agent, BusinessHours, Inbox, SlaPolicy, key
from tests.browser_agent import WAIT_MS, agent_tab, browser, screenshot  # noqa: F401
from tests.factories import make_agent, make_inbox
from tests.servers.app import LiveServer, live_server, make_config
from tests.test_ux_browser import SIZES, axe_violations, no_horizontal_scroll

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
async def sqlite_server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    async with live_server(make_config(f"sqlite+aiosqlite:///{tmp_path / 'switchboard.db'}", tmp_path)) as running:
        yield running


async def rows(server: LiveServer, model: Any) -> list[Any]:
    async with server.state.store.session() as session:
        return list((await session.execute(select(model))).scalars())


async def admin_page(browser: Any, server: LiveServer, path: str, size: dict[str, int]) -> Any:
    admins = await rows(server, Agent)
    admin = admins[0] if admins else await make_agent(server.state.store, email="ann@example.test", role="admin")
    tab = await agent_tab(browser, server, admin, path)
    await tab.page.set_viewport_size(size)
    await tab.page.wait_for_load_state("networkidle")
    return tab


@pytest.mark.parametrize("size_name", ["phone", "desktop"])
async def test_inbox_settings_are_fields_with_errors_next_to_them(
    sqlite_server: LiveServer, browser: Any, size_name: str
) -> None:
    server, size = sqlite_server, SIZES[size_name]
    email = await make_inbox(server.state.store, channel="email", name="Mail", address="help@example.test")
    chat = await make_inbox(server.state.store, channel="webchat", name="Chat", color="#112233", locale="ru")
    others = {
        kind: await make_inbox(server.state.store, channel=kind, name=f"The {kind} inbox")
        for kind in ("whatsapp", "vk", "phone")
    }
    tab = await admin_page(browser, server, "/settings/inboxes", size)
    page = tab.page
    await page.wait_for_selector(f'details[data-id="{key(chat)}"]', timeout=WAIT_MS)
    # Not one JSON textarea on the page; every control has a label.
    assert await page.locator("textarea[name=settings]").count() == 0
    unlabelled = await page.evaluate(
        """() => [...document.querySelectorAll('#settings-list input, #settings-list select, #settings-list textarea')]
              .filter(c => c.type !== 'hidden' && !(c.labels && c.labels.length) && !c.getAttribute('aria-label'))
              .map(c => c.name)"""
    )
    assert unlabelled == []

    # The webchat inbox: widget fields filled from its settings; a valid change saves.
    row = page.locator(f'details[data-id="{key(chat)}"]')
    await row.locator("> summary").click()
    assert await row.locator("input[name=color]").input_value() == "#112233"
    await row.locator("textarea[name=greeting]").fill("Hi! How can we help?")
    # The live preview follows the fields, and warns when white text on the colour is too faint.
    assert await row.locator(".preview-bubble").inner_text() == "Hi! How can we help?"
    await row.locator("select[name=position]").select_option("left")
    assert await row.locator(".preview-frame").get_attribute("data-position") == "left"
    await row.locator("input[name=color]").fill("#fde68a")
    await row.locator(".contrast-warning").wait_for(state="visible", timeout=WAIT_MS)
    await row.locator("input[name=color]").fill("#112233")
    await row.locator(".contrast-warning").wait_for(state="hidden", timeout=WAIT_MS)
    await row.locator("select[name=prechat]").select_option("required")
    await row.locator("textarea[name=allowed_origins]").fill("https://shop.example.test\nhttps://www.example.test")
    await row.locator("select[name=email_continuity_inbox_id]").select_option(str(key(email)))
    await row.locator("input[name=csat_enabled]").check()
    await row.locator("button[type=submit]").click()
    await page.wait_for_selector(".toast-info", timeout=WAIT_MS)
    stored = {item.id: item for item in await rows(server, Inbox)}[key(chat)]
    assert stored.settings["greeting"] == "Hi! How can we help?"
    assert stored.settings["prechat"] == "required"
    assert (stored.settings["position"], stored.settings["color"]) == ("left", "#112233")
    assert stored.settings["allowed_origins"] == ["https://shop.example.test", "https://www.example.test"]
    assert stored.settings["email_continuity_inbox_id"] == key(email)
    assert stored.settings["csat_enabled"] is True
    assert stored.settings["locale"] == "ru"  # a value nobody touched stays as it was

    # Invalid: the API's error shows under the field it names, and the field is marked invalid.
    row = page.locator(f'details[data-id="{key(chat)}"]')
    await row.locator("input[name=routing_capacity]").fill("5000")
    await row.locator("button[type=submit]").click()
    error = row.locator('[data-field="routing_capacity"] .field-error')
    await error.wait_for(state="visible", timeout=WAIT_MS)
    assert "1000" in await error.inner_text()
    await screenshot(page, f"settings-inbox-error-{size_name}")
    assert await row.locator("input[name=routing_capacity]").get_attribute("aria-invalid") == "true"
    if size_name == "phone":
        await no_horizontal_scroll(page, size["width"])
    assert await axe_violations(page) == []

    # Adding an inbox: the channel's own fields appear when it is chosen.
    create = page.locator("#settings-create form")
    await create.locator("input[name=name]").fill("Bot")
    await create.locator("select[name=channel]").select_option("telegram")
    await create.locator("input[name=bot_token]").fill("123456:secret-token")
    await create.locator("select[name=mode]").select_option("webhook")
    await create.locator("button[type=submit]").click()
    await page.wait_for_selector('#settings-list summary:text-is("Bot (Telegram)")', timeout=WAIT_MS)
    bot = next(item for item in await rows(server, Inbox) if item.name == "Bot")
    assert (bot.channel, bot.settings["bot_token"], bot.settings["mode"]) == (
        "telegram",
        "123456:secret-token",
        "webhook",
    )
    # The stored token is never put back into the page.
    assert "secret-token" not in await page.locator(f'details[data-id="{key(bot)}"] form').inner_html()

    # Each channel kind shows its own keys: in the add form for the kinds it creates, and in the
    # settings of existing WhatsApp, VK and phone inboxes.
    created = {"email": ["address", "imap_host", "imap_password", "smtp_host", "smtp_security"], "api": ["webhook_url"]}
    for kind, names in created.items():
        await create.locator("select[name=channel]").select_option(kind)
        for name in names:
            assert await create.locator(f"[name={name}]").count() == 1, (kind, name)
    existing = {
        "whatsapp": ["phone_number_id", "access_token", "app_secret", "verify_token", "waba_id"],
        "vk": ["group_id", "access_token", "confirmation_code", "secret_key", "groups"],
        "phone": ["signing_secret", "dial_url", "default_country_code"],
    }
    for kind, names in existing.items():
        form = page.locator(f'details[data-id="{key(others[kind])}"] form.inbox-form')
        for name in names:
            assert await form.locator(f"[name={name}]").count() == 1, (kind, name)
    assert tab.errors == []


@pytest.mark.parametrize("size_name", ["phone", "desktop"])
async def test_business_hours_grid_and_sla_policy_forms(
    sqlite_server: LiveServer, browser: Any, size_name: str
) -> None:
    server, size = sqlite_server, SIZES[size_name]
    await make_inbox(server.state.store, channel="api", name="Support")
    tab = await admin_page(browser, server, "/settings/business_hours", size)
    page = tab.page
    create = page.locator("#settings-create form")
    await create.wait_for(timeout=WAIT_MS)
    await create.locator("input[name=name]").fill("Office")
    await create.locator("input[name=timezone]").fill("Europe/Berlin")
    # Monday: a lunch break makes two intervals; Saturday gets a short morning.
    monday = create.locator('.intervals[data-day="mon"]')
    await monday.locator(".end").first.fill("12:00")
    await create.locator('.hours-day:has([data-day="mon"]) button:text-matches("Add hours")').click()
    await monday.locator(".start").nth(1).fill("13:00")
    await monday.locator(".end").nth(1).fill("11:00")  # before its start: invalid
    await create.locator('.hours-day:has([data-day="sat"]) button:text-matches("Add hours")').click()
    await create.locator("button:text('Add a holiday')").click()
    await create.locator(".holiday input[name=date]").fill("2026-12-25")
    await create.locator(".holiday input[name=holiday_name]").fill("Christmas")
    await create.locator(".holiday input[name=yearly]").check()
    await create.locator("button[type=submit]").click()
    error = monday.locator(".field-error:visible")
    await error.wait_for(timeout=WAIT_MS)
    assert "after start" in await error.inner_text()
    assert await monday.locator(".end").nth(1).get_attribute("aria-invalid") == "true"
    assert await rows(server, BusinessHours) == []
    await screenshot(page, f"settings-hours-error-{size_name}")
    assert await axe_violations(page) == []
    if size_name == "phone":
        await no_horizontal_scroll(page, size["width"])

    await monday.locator(".end").nth(1).fill("17:30")
    await create.locator("button[type=submit]").click()
    await page.wait_for_selector('#settings-list summary:has-text("Office")', timeout=WAIT_MS)
    [hours] = await rows(server, BusinessHours)
    assert hours.calendar["timezone"] == "Europe/Berlin"
    assert hours.calendar["hours"]["mon"] == [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:30"}]
    assert hours.calendar["hours"]["sat"] == [{"start": "09:00", "end": "17:00"}]
    assert hours.calendar["hours"]["sun"] == []
    assert hours.calendar["holidays"] == [{"date": "2026-12-25", "yearly": True, "name": "Christmas"}]

    # SLA policies: minutes in the form, seconds in the API; a target under a minute is refused at its field.
    await page.goto(server.url + "/settings/sla_policies")
    create = page.locator("#settings-create form")
    await create.wait_for(timeout=WAIT_MS)
    await create.locator("input[name=name]").fill("Urgent mail")
    await create.locator("select[name=priority]").select_option("urgent")
    await create.locator("input[name=first_response_minutes]").fill("0.5")
    await create.locator("input[name=resolution_minutes]").fill("240")
    await create.locator("button[type=submit]").click()
    error = create.locator('[data-field="first_response_minutes"] .field-error')
    await error.wait_for(state="visible", timeout=WAIT_MS)
    assert await rows(server, SlaPolicy) == []
    assert await axe_violations(page) == []
    await create.locator("input[name=first_response_minutes]").fill("30")
    await create.locator("button[type=submit]").click()
    await page.wait_for_selector('#settings-list summary:has-text("Urgent mail")', timeout=WAIT_MS)
    [policy] = await rows(server, SlaPolicy)
    assert (policy.priority, policy.first_response_seconds, policy.resolution_seconds) == ("urgent", 1800, 14400)
    assert policy.next_response_seconds is None and policy.warning_seconds == 900
    if size_name == "phone":
        await no_horizontal_scroll(page, size["width"])
    assert tab.errors == []


@pytest.mark.parametrize("size_name", ["phone", "desktop"])
async def test_agents_labels_and_canned_responses_forms(
    sqlite_server: LiveServer, browser: Any, size_name: str
) -> None:
    server, size = sqlite_server, SIZES[size_name]
    tab = await admin_page(browser, server, "/settings/agents", size)
    page = tab.page
    create = page.locator("#settings-create form")
    await create.wait_for(timeout=WAIT_MS)
    assert await page.locator("#settings-create .field-help").count() == 4  # every field explains itself
    await create.locator("input[name=name]").fill("Bob")
    await create.locator("input[name=email]").fill("bob@example.test")
    await create.locator("input[name=password]").fill("short")
    await create.locator("button[type=submit]").click()
    error = create.locator('[data-field="password"] .field-error')
    await error.wait_for(state="visible", timeout=WAIT_MS)
    assert "at least" in await error.inner_text()
    assert await page.locator(".toast-error").count() == 0  # the field says it; no second message
    assert await axe_violations(page) == []
    if size_name == "phone":
        await no_horizontal_scroll(page, size["width"])
    await create.locator("input[name=password]").fill("a-long-password")
    await create.locator("button[type=submit]").click()
    await page.wait_for_selector('#settings-list summary:has-text("bob@example.test")', timeout=WAIT_MS)
    assert "bob@example.test" in [row.email for row in await rows(server, Agent)]

    await page.goto(server.url + "/settings/canned_responses")
    create = page.locator("#settings-create form")
    await create.wait_for(timeout=WAIT_MS)
    await create.locator("input[name=short_code]").fill("")
    await create.locator("textarea[name=content]").fill("Thanks!")
    await create.locator("button[type=submit]").click()
    await create.locator('[data-field="short_code"] .field-error').wait_for(state="visible", timeout=WAIT_MS)
    await create.locator("input[name=short_code]").fill("thanks")
    await create.locator("button[type=submit]").click()
    await page.wait_for_selector('#settings-list summary:text-is("/thanks")', timeout=WAIT_MS)
    assert await axe_violations(page) == []
    assert tab.errors == []
