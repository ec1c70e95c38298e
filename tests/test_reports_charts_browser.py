"""The reports page's charts in Chromium: an SVG per metric with its table beside, the previous period in the
table and the chart, and CSV links that download."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.report_seed import seed
from tests.servers.app import LiveServer

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_charts_with_tables_and_csv_downloads(page: Page, browser_server: LiveServer) -> None:
    from playwright.async_api import expect

    server = browser_server
    seeded = await seed(server.state.service, server.state.surveys)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    cookie = server.state.sessions.issue(seeded.admin)
    await page.context.add_cookies([{"name": "sb_session", "value": cookie, "url": server.url}])
    await page.goto(server.url + "/reports")
    created = page.locator("#chart-created")
    await expect(created.locator("svg.chart")).to_be_visible()
    for metric in ("created", "resolved", "first_response_business_median", "backlog_open"):
        figure = page.locator(f"#chart-{metric}")
        assert await figure.locator("svg.chart").count() == 1
        assert await figure.locator("table.chart-table tbody tr").count() >= 30  # one row per day, beside the chart
    values = await created.locator("td[data-value]").evaluate_all("cells => cells.map(c => Number(c.dataset.value))")
    previous = await created.locator("td[data-previous]").evaluate_all(
        "cells => cells.map(c => Number(c.dataset.previous))"
    )
    assert sum(values) == 5 and sum(previous) == 1  # the 40-day-old conversation is in the previous 30 days
    points = created.locator("svg circle")
    assert await points.count() == len(values)
    assert sorted(await points.evaluate_all("cs => cs.map(c => Number(c.dataset.value))")) == sorted(values)
    assert await created.locator("svg polyline.previous").count() == 1

    async with page.expect_download() as info:
        await page.click('#report-exports a[data-export="conversations"]')
    download = await info.value
    text = await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8")
    assert text.splitlines()[0].startswith("id,link,contact_name") and len(text.splitlines()) == 6
    assert errors == []


async def test_kpis_spikes_comments_and_heatmap_on_the_page(page: Page, browser_server: LiveServer) -> None:
    from playwright.async_api import expect

    server = browser_server
    seeded = await seed(server.state.service, server.state.surveys)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    cookie = server.state.sessions.issue(seeded.admin)
    await page.context.add_cookies([{"name": "sb_session", "value": cookie, "url": server.url}])
    await page.goto(server.url + "/reports")
    first = page.locator('#report-kpis tr[data-kpi="first_response.wall"]')
    await expect(first).to_be_visible()
    # The seed's first responses (report_seed.EXPECTED): 4 answered, median 30 min, p90 1.5 h; 24/7 inbox.
    assert await first.locator('td[data-stat="count"]').text_content() == "4"
    assert await first.locator('td[data-stat="median"]').get_attribute("data-seconds") == "1800"
    assert await first.locator('td[data-stat="p90"]').get_attribute("data-seconds") == "5400"
    business = page.locator('#report-kpis tr[data-kpi="first_response.business"] td[data-stat="median"]')
    assert await business.get_attribute("data-seconds") == "1800"
    names = await page.locator("#kpi-group-table tbody th").all_inner_texts()
    assert set(names) == {"Bob", "Cat", "(none)"}
    await page.select_option("#kpi-dimension", "label")
    await expect(page.locator("#kpi-group-table tbody th")).to_have_text(["billing", "shipping", "(none)"])
    lowest = page.locator('#report-comments ol[data-order="lowest"] li')
    assert await lowest.first.get_attribute("data-rating") == "5"  # the only comment ("thanks!") rated 5
    cells = await page.locator("#report-heatmap td[data-count]").evaluate_all(
        "cs => cs.reduce((sum, c) => sum + Number(c.dataset.count), 0)"
    )
    assert cells == 5
    await expect(page.locator("#report-spikes")).to_contain_text("No label stands out")
    assert errors == []
