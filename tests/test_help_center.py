# ruff: noqa: F811  (pytest fixtures imported from tests.browser_agent are parameters here)
"""The public help center: `/help` lists published articles by category (inbox), searches them with the
widget's full-text search, each article links back; English and Russian; an inbox's own help center in its
name and colour; `/help/sitemap.xml`. In Chromium at 390 px and 1440 px, axe finds no critical or serious
violation."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest

from inbox.store.models import Article, key
from tests.browser_agent import WAIT_MS, browser  # noqa: F401
from tests.factories import make_inbox
from tests.servers.app import LiveServer
from tests.test_settings_forms_browser import sqlite_server  # noqa: F401
from tests.test_ux_browser import SIZES, axe_violations, no_horizontal_scroll

pytestmark = pytest.mark.timeout(240)


async def seed(server: LiveServer) -> dict[str, Article]:
    store = server.state.store
    shop = await make_inbox(store, channel="webchat", name="Shop", color="#0f766e")
    billing = await make_inbox(store, channel="email", name="Billing", address="billing@example.test")
    articles = {
        "returns": Article(title="Returning an order", body="Send the parcel back within 30 days.", published=True),
        "shipping": Article(
            title="Shipping times", body="Parcels leave the warehouse daily.", published=True, inbox_id=shop.id
        ),
        "invoice": Article(
            title="Paying by invoice", body="Invoices are due in 14 days.", published=True, inbox_id=billing.id
        ),
        "draft": Article(title="Secret draft", body="Not yet.", published=False),
        "russian": Article(title="Возврат заказа", body="Отправьте посылку обратно.", published=True, locale="ru"),
    }
    async with store.transaction() as tx:
        for article in articles.values():
            article.html = f"<p>{article.body}</p>"
            tx.add(article)
    return articles


def titles(page: str) -> list[str]:
    return re.findall(r'<a href="/help/articles/\d+"[^>]*>([^<]+)</a>', page)


async def test_index_by_category_search_article_back_link_and_sitemap(sqlite_server: LiveServer) -> None:
    server = sqlite_server
    articles = await seed(server)
    async with httpx.AsyncClient(base_url=server.url, headers={"accept-language": "en"}) as client:
        index = await client.get("/help")
        assert index.status_code == 200
        text = index.text
        # Categories: the general articles, then one per inbox; drafts never show.
        headings = re.findall(r"<h2 id=\"cat-[^\"]+\">([^<]+)</h2>", text)
        assert headings == ["General", "Billing", "Shop", "In other languages"]
        assert titles(text) == ["Returning an order", "Paying by invoice", "Shipping times", "Возврат заказа"]
        assert "Secret draft" not in text

        # Search: the same full-text search as the widget (prefix words), drafts excluded.
        found = await client.get("/help", params={"q": "invoic"})
        assert titles(found.text) == ["Paying by invoice"]
        assert "Articles about" in found.text
        nothing = await client.get("/help", params={"q": "draft"})
        assert titles(nothing.text) == [] and "No articles match" in nothing.text

        # One inbox's help center: its articles and the general ones, in its colour.
        shop = await client.get("/help", params={"inbox": str(articles["shipping"].inbox_id)})
        assert titles(shop.text) == ["Returning an order", "Shipping times", "Возврат заказа"]
        assert "#0f766e" in shop.text and "Shop · Help center" in shop.text

        # An article links back to the index (of its inbox).
        article = await client.get(f"/help/articles/{key(articles['shipping'])}")
        assert f'href="/help?inbox={articles["shipping"].inbox_id}"' in article.text
        assert "All articles" in article.text

        # Russian readers get the page in Russian, their articles first.
        russian = await client.get("/help", headers={"accept-language": "ru"})
        assert "Центр помощи" in russian.text and "Общее" in russian.text
        assert "Возврат заказа" in titles(russian.text)
        assert "На других языках" not in russian.text and "In other languages" not in russian.text

        # The sitemap: the index and every published article, absolute, with lastmod.
        sitemap = await client.get("/help/sitemap.xml")
        assert sitemap.status_code == 200 and sitemap.headers["content-type"].startswith("application/xml")
        root = ET.fromstring(sitemap.content)
        ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
        locations = [node.text or "" for node in root.findall("s:url/s:loc", ns)]
        base = server.state.config.server.base_url.rstrip("/")
        published = sorted(key(row) for row in articles.values() if row.published)
        assert locations == [f"{base}/help"] + [f"{base}/help/articles/{number}" for number in published]
        assert len(root.findall("s:url/s:lastmod", ns)) == len(published)


@pytest.mark.parametrize("size_name", ["phone", "desktop"])
async def test_help_center_in_chromium_passes_axe(sqlite_server: LiveServer, browser: Any, size_name: str) -> None:
    server, size = sqlite_server, SIZES[size_name]
    await seed(server)
    context = await browser.new_context(viewport=size)
    page = await context.new_page()
    await page.goto(server.url + "/help")
    assert await axe_violations(page) == []
    await page.fill("#help-q", "parcel")
    await page.click("form.help-search button[type=submit]")
    await page.wait_for_selector("ul.results a", timeout=WAIT_MS)
    found = await page.locator("ul.results a").all_inner_texts()
    assert set(found) == {"Returning an order", "Shipping times"}
    await page.click("ul.results a >> text=Shipping times")
    await page.wait_for_selector("article h1", timeout=WAIT_MS)
    assert await axe_violations(page) == []
    if size_name == "phone":
        await no_horizontal_scroll(page, size["width"])
    await page.click("nav.crumbs a")
    await page.wait_for_selector(".category h2", timeout=WAIT_MS)
    assert await axe_violations(page) == []
    await context.close()
