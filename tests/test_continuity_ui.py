# ruff: noqa: F811  (pytest fixtures imported from tests.browser_agent are parameters here)
"""Email continuity in the browser: an admin links a chat inbox to an email inbox on the settings page, and the
agent inbox shows a continuity mail's delivery status (Failed with the reason and a working Retry button)."""

from __future__ import annotations

from typing import Any

import pytest

from inbox.store.models import Inbox, Message, MessageKind, MessageStatus, Outbox, key
from tests.browser_agent import WAIT_MS, agent_tab, browser, folder, live, row  # noqa: F401
from tests.email_helpers import eventually
from tests.factories import inbound, make_agent, make_inbox
from tests.servers.app import LiveServer

pytestmark = pytest.mark.timeout(180)


async def test_admin_links_chat_to_email_and_agent_sees_the_mail_status(server: LiveServer, browser: Any) -> None:
    store = server.state.store
    admin = await make_agent(store, email="root@example.test", name="Root", role="admin")
    chat = await make_inbox(store, channel="webchat", name="Website")
    mail = await make_inbox(store, channel="email", name="Mail", address="support@example.test")
    tab = await agent_tab(browser, server, admin, "/settings/inboxes")
    page = tab.page
    await page.wait_for_selector(".settings-row", timeout=WAIT_MS)
    website = page.locator(f'.settings-row[data-id="{key(chat)}"]')
    await website.locator("summary").first.click()
    await website.locator("select[name=email_continuity_inbox_id]").select_option(str(key(mail)))
    await website.locator("input[name=email_continuity_chat_url]").fill("https://shop.example.test/help")
    await website.locator("form.inbox-form > button[type=submit]").click()

    async def settings() -> dict[str, Any]:
        async with store.session() as session:
            found = await session.get(Inbox, key(chat))
        return dict(found.settings) if found else {}

    saved = await eventually(settings, lambda value: "email_continuity_inbox_id" in value)
    assert saved == {
        "email_continuity_inbox_id": key(mail),
        "email_continuity_chat_url": "https://shop.example.test/help",
    }

    # A continuity mail that failed: the activity line shows why, and Retry queues it again.
    delivered = await server.state.service.deliver(inbound(chat, "v1", text="Hello?"))
    async with store.transaction() as tx:
        emailed = Message(
            conversation_id=delivered.conversation_id,
            inbox_id=key(chat),
            kind=MessageKind.OUTGOING,
            body="Your parcel left today.",
            sender_type="agent",
            sender_name="Root",
            status=MessageStatus.SENT,
        )
        tx.add(emailed)
        await tx.flush()
        tx.add(
            Message(
                conversation_id=delivered.conversation_id,
                inbox_id=key(mail),
                kind=MessageKind.ACTIVITY,
                body="Sent by email to vera@customer.test (1 reply the visitor had not seen)",
                sender_type="system",
                sender_name="Switchboard",
                status=MessageStatus.SENT,
                meta={"continuity": {"to": "vera@customer.test", "text": "Hi", "replies": [key(emailed)]}},
            )
        )
        line = Message(
            conversation_id=delivered.conversation_id,
            inbox_id=key(mail),
            kind=MessageKind.ACTIVITY,
            body="Sent by email to vera@customer.test (1 reply the visitor had not seen)",
            sender_type="system",
            sender_name="Switchboard",
            status=MessageStatus.FAILED,
            error="550 mailbox unavailable",
            meta={"continuity": {"to": "vera@customer.test", "text": "Hi", "replies": []}},
        )
        tx.add(line)
        await tx.flush()
        tx.add(Outbox(message_id=key(line), delivery_id="d1", done=True, last_error="550 mailbox unavailable"))
    await page.goto(server.url + "/")
    await live(page)
    await folder(page, "all")
    await page.click(row(delivered.conversation_id))
    reply = page.locator(f'#messages li.outgoing[data-id="{key(emailed)}"]')
    await reply.locator(".sent-by-email >> text=Sent by email").wait_for(timeout=WAIT_MS)
    assert await page.locator("#messages .sent-by-email").count() == 1  # the failed mail marks nothing
    activity = page.locator(f'#messages li.activity[data-id="{key(line)}"]')
    await activity.locator(".delivery-status >> text=Failed").wait_for(timeout=WAIT_MS)
    assert "550 mailbox unavailable" in (await activity.locator(".delivery-error").text_content() or "")
    await activity.locator("button.retry").click()
    # The test server has no [email] section: the retried mail fails again, with the new reason shown.
    await activity.locator(".delivery-error >> text=channel 'email' is not enabled").wait_for(timeout=WAIT_MS)
    assert tab.errors == []
    await tab.context.close()
