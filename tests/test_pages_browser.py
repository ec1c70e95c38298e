"""The pages in a real browser (Debian's Chromium via Playwright): first run → setup → inbox → logout →
a wrong password shows the error → the right one gets in. Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.conftest import ARTIFACTS
from tests.servers.app import LiveServer

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = pytest.mark.asyncio(loop_scope="session")

PASSWORD = "a-long-password"


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"pages-{name}.png"), full_page=True)


async def test_first_run_setup_login_logout(page: Page, browser_server: LiveServer) -> None:
    from playwright.async_api import expect

    url = browser_server.url
    await page.goto(url + "/")
    assert page.url == url + "/setup"
    await shot(page, "1-setup")
    await page.fill("input[name=name]", "Ada Lovelace")
    await page.fill("input[name=email]", "ada@example.test")
    await page.fill("input[name=password]", PASSWORD)
    await page.fill("input[name=password_confirm]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(url + "/")
    await expect(page.locator("#agent-name")).to_have_text("Ada Lovelace")
    boot = json.loads(await page.locator("#boot").text_content() or "{}")
    assert boot["email"] == "ada@example.test" and boot["role"] == "admin"
    token = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert token and len(token) == 64
    await shot(page, "2-inbox")
    cookies = {cookie["name"]: cookie for cookie in await page.context.cookies()}
    assert cookies["sb_session"]["httpOnly"] and cookies["sb_session"]["sameSite"] == "Lax"

    await page.click("text=Log out")
    await page.wait_for_url(url + "/login")
    await page.goto(url + "/")
    assert page.url == url + "/login"

    await page.fill("input[name=email]", "ada@example.test")
    await page.fill("input[name=password]", "not-the-password")
    await page.click("button[type=submit]")
    await expect(page.locator("#form-error")).to_have_text("Email or password is incorrect.")
    await expect(page.locator("input[name=email]")).to_have_value("ada@example.test")
    await shot(page, "3-login-error")

    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(url + "/")
    await expect(page.locator("#agent-name")).to_have_text("Ada Lovelace")
    await page.goto(url + "/setup")
    assert page.url == url + "/"
    await shot(page, "4-back-in")
