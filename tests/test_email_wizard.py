# ruff: noqa: F811  (pytest fixtures imported from tests.browser_agent and tests.email_helpers are parameters here)
"""The email "Test connection" wizard against real servers (Dovecot for IMAP, aiosmtpd for SMTP): each step
is reported — settings, IMAP connect/login/folder, SMTP connect (EHLO), STARTTLS, AUTH — and a bad password,
folder or port fails at its own step. In Chromium the inbox form lists the steps, at 390 px and 1440 px."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from channels.email.check import check_connection
from tests.browser_agent import WAIT_MS, agent_tab, browser  # noqa: F401
from tests.email_helpers import dovecot, imap_settings, user  # noqa: F401
from tests.factories import make_agent
from tests.servers.app import LiveServer, free_port
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import Sink, smtp_sink
from tests.test_settings_forms_browser import sqlite_server  # noqa: F401
from tests.test_ux_browser import SIZES, axe_violations, no_horizontal_scroll

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    async with smtp_sink() as running:
        yield running


def settings(dovecot: Dovecot, user: str, sink: Sink, **changes: Any) -> dict[str, Any]:
    base = {
        "address": user,
        **imap_settings(dovecot, user),
        "smtp_host": "127.0.0.1",
        "smtp_port": sink.port,
        "smtp_security": "plain",
    }
    return {**base, **changes}


def outcome(steps: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    return [(step["step"], step["ok"]) for step in steps]


async def test_each_step_is_reported_and_fails_where_it_breaks(dovecot: Dovecot, user: str, sink: Sink) -> None:
    good = await check_connection(settings(dovecot, user, sink))
    assert outcome(good) == [
        ("settings", True),
        ("imap.connect", True),
        ("imap.login", True),
        ("imap.select", True),
        ("smtp.connect", True),
    ]
    assert "pw" not in str(good)  # the password is never echoed

    bad_password = await check_connection(settings(dovecot, user, sink, imap_password="wrong"))
    assert outcome(bad_password)[:3] == [("settings", True), ("imap.connect", True), ("imap.login", False)]
    assert ("smtp.connect", True) in outcome(bad_password)  # SMTP is still checked

    bad_folder = await check_connection(settings(dovecot, user, sink, imap_folder="Nope"))
    assert outcome(bad_folder)[3] == ("imap.select", False)

    closed = await check_connection(settings(dovecot, user, sink, smtp_port=free_port()), seconds=3)
    assert outcome(closed)[-1] == ("smtp.connect", False)

    # AUTH asked of a server that offers none: the step fails with the server's reason.
    no_auth = await check_connection(settings(dovecot, user, sink, smtp_username="x", smtp_password="y"))
    assert outcome(no_auth)[-1] == ("smtp.auth", False)

    wrong = await check_connection({"address": "nobody"})
    assert outcome(wrong) == [("settings", False)] and "address" in wrong[0]["detail"]


@pytest.mark.parametrize("size_name", ["phone", "desktop"])
async def test_test_connection_button_lists_the_steps(
    sqlite_server: LiveServer, browser: Any, dovecot: Dovecot, user: str, sink: Sink, size_name: str
) -> None:
    server, size = sqlite_server, SIZES[size_name]
    admin = await make_agent(server.state.store, email="ann@example.test", role="admin")
    tab = await agent_tab(browser, server, admin, "/settings/inboxes")
    page = tab.page
    await page.set_viewport_size(size)
    create = page.locator("#settings-create form")
    await create.wait_for(timeout=WAIT_MS)
    await create.locator("input[name=name]").fill("Mail")
    await create.locator("select[name=channel]").select_option("email")
    values = settings(dovecot, user, sink)
    for name in ("address", "imap_host", "imap_port", "imap_username", "imap_password", "smtp_host", "smtp_port"):
        await create.locator(f"input[name={name}]").fill(str(values[name]))
    await create.locator("select[name=imap_security]").select_option("plain")
    await create.locator("select[name=smtp_security]").select_option("plain")
    await create.locator("button.wizard-check").click()
    await create.locator('.wizard-steps li[data-step="smtp.connect"]').wait_for(timeout=WAIT_MS)
    ok = await create.locator(".wizard-steps li.step-ok").count()
    assert ok == 5 and await create.locator(".wizard-steps li.step-failed").count() == 0
    assert "Every step worked" in await create.locator(".wizard-result").inner_text()
    assert await axe_violations(page) == []

    await create.locator("input[name=imap_password]").fill("wrong")
    await create.locator("button.wizard-check").click()
    await create.locator('.wizard-steps li.step-failed[data-step="imap.login"]').wait_for(timeout=WAIT_MS)
    if size_name == "phone":
        await no_horizontal_scroll(page, size["width"])
    assert await axe_violations(page) == []
    assert tab.errors == []
