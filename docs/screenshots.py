# ruff: noqa: E402  (imports follow the sys.path line that makes the repo importable)
"""Regenerate the README screenshots of the agent inbox from the demo data:
`.venv/bin/python docs/screenshots.py` (needs Debian's Chromium and the dev extra)."""

import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from playwright.async_api import async_playwright
from sqlmodel import col, select

from inbox.demo.seed import seed
from inbox.admin.directory import Directory
from inbox.store.models import Agent
from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.servers.app import live_server, make_config


async def main():
    tmp = Path(tempfile.mkdtemp())
    config = make_config(f"sqlite+aiosqlite:///{tmp}/demo.db", tmp)
    async with live_server(config) as server:
        email, _ = await seed(Directory(server.state.service))
        async with server.state.store.session() as s:
            agent = (await s.execute(select(Agent).where(col(Agent.email) == email))).scalar_one()
        async with async_playwright() as p:
            b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            ctx = await b.new_context(viewport={"width": 1440, "height": 860})
            await ctx.add_cookies(
                [{"name": "sb_session", "value": server.state.sessions.issue(agent), "url": server.url}]
            )
            page = await ctx.new_page()
            await page.goto(server.url + "/")
            await page.wait_for_selector("body[data-connection=live]")
            await page.click("#folders [data-folder=all]")
            await page.wait_for_selector("#conversation-list li.conversation")
            await page.wait_for_timeout(500)
            await page.click("#conversation-list li.conversation >> nth=1")
            await page.wait_for_selector("#messages li")
            await page.wait_for_selector("#contact-panel h2")
            await page.wait_for_timeout(800)
            await page.screenshot(path=str(ROOT / "docs" / "inbox.png"))
            await page.goto(server.url + "/settings/inboxes")
            await page.wait_for_load_state("networkidle")
            await page.wait_for_timeout(500)
            await page.screenshot(path=str(ROOT / "docs" / "settings-inboxes.png"))
            await page.goto(server.url + "/reports")
            await page.wait_for_load_state("networkidle")
            await page.wait_for_timeout(800)
            await page.screenshot(path=str(ROOT / "docs" / "reports.png"), full_page=True)
            phone = await b.new_context(viewport={"width": 390, "height": 844})
            await phone.add_cookies(
                [{"name": "sb_session", "value": server.state.sessions.issue(agent), "url": server.url}]
            )
            small = await phone.new_page()
            await small.goto(server.url + "/")
            await small.wait_for_selector("body[data-connection=live]")
            await small.wait_for_timeout(800)
            await small.screenshot(path=str(ROOT / "docs" / "inbox-phone.png"))
            await b.close()


asyncio.run(main())
