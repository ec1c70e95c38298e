"""The reports page in a real browser (Debian's Chromium via Playwright) over seeded data with known numbers:
every figure on the page is asserted against the arithmetic in `tests.report_seed`, then another period."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from inbox.clock import utcnow
from tests.conftest import ARTIFACTS
from tests.report_seed import seed
from tests.servers.app import LiveServer

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def metric(page: Page, path: str, within: str = "") -> str:
    text = await page.locator(f'{within} [data-metric="{path}"]'.strip()).first.text_content()
    return (text or "").strip()


async def test_reports_page_shows_the_seeded_numbers(page: Page, browser_server: LiveServer) -> None:
    from playwright.async_api import expect

    server = browser_server
    seeded = await seed(server.state.service, server.state.surveys)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    cookie = server.state.sessions.issue(seeded.cat)  # an agent, not only admins
    await page.context.add_cookies([{"name": "sb_session", "value": cookie, "url": server.url}])
    await page.goto(server.url + "/")
    await page.click("a[href='/reports']")
    await page.wait_for_url(server.url + "/reports")
    await expect(page.locator("#report")).to_be_visible()

    expected = {
        "conversations.created": "5",
        "conversations.resolved": "3",
        "conversations.unanswered": "1",
        "conversations.open_now": "2",
        "messages.incoming": "6",
        "messages.outgoing": "4",
        "first_response.count": "4",
        "first_response.average": "43m 45s",
        "first_response.median": "30m 0s",
        "first_response.p90": "1h 30m",
        "resolution.count": "3",
        "resolution.average": "2h 20m",
        "resolution.median": "2h 0m",
        "resolution.p90": "4h 0m",
        "sla.rate": "60%",
        "sla.met": "3",
        "sla.breached": "2",
        "csat.responses": "3",
        "csat.average": "3.67",
        "csat.satisfied_percent": "66.7%",
        "csat.response_rate": "100%",
        "csat.distribution.5": "1",
        "csat.distribution.3": "0",
    }
    shown = {path: await metric(page, path) for path in expected}
    assert shown == expected
    assert await page.locator('[data-metric="first_response.median"]').get_attribute("data-seconds") == "1800"

    workload = page.locator("#report-workload tbody tr")
    assert await workload.all_inner_texts() == ["Cat\t1\t1", "Bob\t0\t2"]
    labels = page.locator("#report-labels tbody tr")
    assert await labels.all_inner_texts() == ["billing\t2\t1\t▲ +1", "shipping\t2\t0\t▲ +2"]
    by_agent = page.locator("#report-csat .csat-agents tbody tr")
    assert await by_agent.all_inner_texts() == ["Bob\t2\t4.5\t100%", "Cat\t1\t2\t0%"]
    by_label = page.locator("#report-csat .csat-labels tbody tr")
    assert await by_label.all_inner_texts() == ["billing\t2\t4.5\t100%", "shipping\t1\t2\t0%"]
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "reports-page.png"), full_page=True)

    # The previous 30 days: only the old billing conversation; nothing answered, no surveys.
    today = utcnow().date()
    await page.fill("#report-from", str(today - timedelta(days=59)))
    await page.fill("#report-to", str(today - timedelta(days=30)))
    await page.click("#report-range button[type=submit]")
    await expect(page.locator('[data-metric="conversations.created"]')).to_have_text("1")
    assert await metric(page, "first_response.median") == "—"
    assert await metric(page, "csat.responses") == "0"
    assert await metric(page, "csat.average") == "—"
    assert await page.locator("#report-labels tbody tr").all_inner_texts() == ["billing\t1\t0\t▲ +1"]

    # A period that ends before it starts is refused with the server's reason.
    await page.goto(server.url + "/reports?from=2026-01-10&to=2026-01-01")
    await expect(page.locator("#report-status")).to_have_text("query.from: must be before to")
    assert errors == []
