# ruff: noqa: F811  (the `dovecot` and `user` fixtures imported from tests.email_helpers are parameters here)
"""The admin channel-health page in a real browser (Chromium via Playwright) against a real Dovecot: a healthy
mailbox shows its last fetch time, a mailbox whose IMAP server is down shows up by itself (the page polls)
as failing with the error text (one whose settings are wrong: misconfigured, with the key), quarantined mail is listed with its reason and can be discarded; agents get
403. Also the JSON behind it: outbox backlog per inbox, and 403 for agents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import pytest_asyncio

from channels.email import EmailChannel
from inbox.config import ChannelsConfig, EmailConfig
from inbox.gateway.outbox import inbox_info
from inbox.store.models import Agent, key
from tests.conftest import ARTIFACTS
from tests.email_helpers import dovecot, email_inbox, eventually, imap_settings, raw_mail, user  # noqa: F401
from tests.factories import make_agent, make_inbox, make_token
from tests.servers.app import LiveServer, free_port, live_server, make_config
from tests.servers.dovecot import Dovecot

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(120)]
DATA = Path(__file__).parent / "data" / "email"


@pytest_asyncio.fixture(loop_scope="session")
async def mail_server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    """The real app with the email channel on, SQLite, on the browser's loop; receivers refreshed quickly."""
    config = make_config(
        f"sqlite+aiosqlite:///{tmp_path / 'switchboard.db'}",
        tmp_path,
        email=EmailConfig(poll_interval_seconds=3600.0, reconnect_max_seconds=0.5, connect_timeout_seconds=3.0),
        channels=ChannelsConfig(refresh_seconds=0.2, restart_backoff_max_seconds=1.0),
    )
    async with live_server(config) as running:
        yield running


async def sign_in(page: Page, server: LiveServer, agent: Agent) -> None:
    await page.context.add_cookies(
        [{"name": "sb_session", "value": server.state.sessions.issue(agent), "url": server.url}]
    )


async def test_health_page_shows_healthy_and_failing_mailboxes_and_quarantine(
    page: Page, mail_server: LiveServer, dovecot: Dovecot, user: str
) -> None:
    from playwright.async_api import expect

    store = mail_server.state.store
    channel: EmailChannel = mail_server.state.channels["email"]
    boss = await make_agent(store, email="boss@example.test", name="Boss", role="admin")
    healthy = await email_inbox(store, address=user, **imap_settings(dovecot, user))
    reader = await eventually(lambda: _get(channel.readers, key(healthy)), lambda found: found is not None)
    await eventually(lambda: _get(reader.health.__dict__, "last_success_at"), lambda at: at is not None)
    await channel.ingest(inbox_info(healthy), (DATA / "garbage_not_mail.eml").read_bytes())

    await sign_in(page, mail_server, boss)
    await page.goto(mail_server.url + "/settings/health")
    ok_row = page.locator(f'tr.health-row[data-inbox-id="{key(healthy)}"]')
    await expect(ok_row).to_have_attribute("data-state", "ok")
    fetched = await ok_row.locator(".last-fetch time").get_attribute("datetime")
    assert fetched is not None
    assert abs(datetime.fromisoformat(fetched.replace("Z", "+00:00")).timestamp() - reader.health.last_success_at) < 1
    await expect(ok_row.locator(".backlog")).to_contain_text("outbox 0 queued, 0 retrying")
    await expect(ok_row.locator(".backlog")).to_contain_text("1 quarantined")
    await expect(page.locator(".settings-nav a.active")).to_have_text("Channel health")

    # A mailbox whose IMAP server is down, added while the page is open: it appears by itself, failing.
    down_port = free_port()
    broken = await make_inbox(
        store,
        channel="email",
        name="Broken mail",
        address="down@example.test",
        imap_host="127.0.0.1",
        imap_port=down_port,
        imap_security="plain",
        imap_password="pw",
    )
    broken_reader = await eventually(lambda: _get(channel.readers, key(broken)), lambda found: found is not None)
    error = await eventually(lambda: _get(broken_reader.health.__dict__, "last_error"), lambda text: text is not None)
    bad_row = page.locator(f'tr.health-row[data-inbox-id="{key(broken)}"]')
    await expect(bad_row).to_have_attribute("data-state", "failing")
    await expect(bad_row.locator(".last-error")).to_contain_text(error)
    await expect(bad_row.locator(".last-fetch")).to_have_text("never")
    await expect(bad_row.locator(".failing-since")).not_to_have_text("—")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "channel-health.png"), full_page=True)

    # Quarantine: listed with its reason and a download link; discarding it empties the list.
    item = page.locator("#quarantine-list .quarantined")
    await expect(item).to_have_count(1)
    await expect(item.locator(".q-reason")).to_contain_text("no header section")
    href = await item.locator("a.q-download").get_attribute("href")
    assert href is not None and href.endswith("/raw")
    await item.locator("button.q-retry").click()  # nothing was fixed: it still fails, says why, and stays
    await expect(page.locator(".toast-error")).to_contain_text("still fails: no header section")
    await expect(item).to_contain_text("2 attempt(s)")
    page.once("dialog", lambda dialog: dialog.accept())
    await item.locator("button.q-discard").click()
    await expect(page.locator("#quarantine-empty")).to_be_visible()
    await expect(ok_row.locator(".backlog")).not_to_contain_text("quarantined")


async def test_health_json_is_admin_only_and_counts_the_outbox(mail_server: LiveServer) -> None:
    store = mail_server.state.store
    service = mail_server.state.service
    boss = await make_agent(store, email="boss@example.test", name="Boss", role="admin")
    ann = await make_agent(store, email="ann@example.test", name="Ann")
    # An email inbox with an SMTP relay that refuses connections: replies wait in the outbox, retrying.
    inbox = await email_inbox(
        store, smtp_host="127.0.0.1", smtp_port=free_port(), smtp_security="plain", smtp_password="pw"
    )
    channel: EmailChannel = mail_server.state.channels["email"]
    delivered = await channel.ingest(inbox_info(inbox), raw_mail())
    assert delivered is not None
    await service.reply(delivered.conversation_id, by=boss, body="On its way.", client_id=None)
    async with httpx.AsyncClient(base_url=mail_server.url) as http:
        agent = {"Authorization": f"Bearer {await make_token(store, ann)}"}
        assert (await http.get("/api/v1/channels/status", headers=agent)).status_code == 403
        assert (await http.get("/settings/health", headers=agent)).status_code == 403
        admin = {"Authorization": f"Bearer {await make_token(store, boss)}"}

        async def row() -> dict[str, Any]:
            answer = await http.get("/api/v1/channels/status", headers=admin)
            assert answer.status_code == 200, answer.text
            return next(item for item in answer.json()["items"] if item["inbox_id"] == key(inbox))

        found = await eventually(row, lambda item: item["outbox"]["retrying"] == 1)
        # An inbox whose settings cannot be read gets no receiver: it shows misconfigured with the reason.
        unset = await make_inbox(store, channel="email", name="No address")

        async def unset_row() -> dict[str, Any]:
            answer = await http.get("/api/v1/channels/status", headers=admin)
            return next(item for item in answer.json()["items"] if item["inbox_id"] == key(unset))

        misconfigured = await eventually(unset_row, lambda item: item["state"] == "misconfigured")
    assert found["outbox"] == {"queued": 0, "retrying": 1}
    assert found["state"] == "failing" and "127.0.0.1" in (found["last_error"] or "")
    assert found["last_send_at"] is None and found["channel"] == "email" and found["inbox_name"] == "Support"
    assert "settings.address: the inbox's email address is required" in misconfigured["last_error"]


async def _get(mapping: Any, name: Any) -> Any:
    return mapping.get(name)
