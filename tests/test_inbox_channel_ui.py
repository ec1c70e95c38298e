# ruff: noqa: F811  (pytest fixtures imported from tests.browser_agent are parameters here)
"""What the inbox shows about channels: a banner while a channel of one of my inboxes has been failing for
minutes (and the health endpoint scoped to my inboxes), why an email was threaded, an "edited" mark, and
remote images in email that load only after "Show images"."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx
import pytest

from channels.base import ChannelHealth
from tests.browser_agent import agent_tab, browser  # noqa: F401
from tests.factories import add_member, make_agent, make_inbox, make_token
from tests.servers.app import LiveServer

pytestmark = pytest.mark.timeout(120)


class ReportingChannel:
    """The smallest channel that reports health (only what the health readers look at)."""

    name: ClassVar[str] = "fakemail"

    def __init__(self, rows: Sequence[ChannelHealth]) -> None:
        self.rows = list(rows)

    def health(self) -> Sequence[ChannelHealth]:
        return self.rows


async def test_health_is_scoped_and_failing_channels_show_a_banner(server: LiveServer, browser: Any) -> None:
    store = server.state.store
    mine = await make_inbox(store, name="Support mail")
    other = await make_inbox(store, name="Sales mail")
    ann = await make_agent(store, email="ann@example.test", name="Ann")
    await add_member(store, mine, ann)
    long_ago = time.time() - 900
    server.state.channels["fakemail"] = ReportingChannel(
        [
            ChannelHealth(
                inbox_id=mine.id, last_error_at=time.time(), last_error="IMAP login refused", failing_since=long_ago
            ),
            ChannelHealth(
                inbox_id=other.id, last_error_at=time.time(), last_error="secret other", failing_since=long_ago
            ),
        ]
    )
    try:
        token = await make_token(store, ann)
        async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http:
            items = (await http.get("/api/v1/channels/health")).json()["items"]
        assert [(item["inbox_id"], item["failing"]) for item in items] == [(mine.id, True)]

        tab = await agent_tab(browser, server, ann)
        banner = tab.page.locator("#channel-health")
        await banner.wait_for(state="visible")
        text = await banner.inner_text()
        assert f"fakemail inbox {mine.id} has been failing" in text and "IMAP login refused" in text
        assert "secret other" not in text
        await tab.context.close()
    finally:
        del server.state.channels["fakemail"]


async def test_thread_shows_why_a_mail_was_threaded_and_edits(server: LiveServer, browser: Any) -> None:
    import dataclasses

    from tests.factories import inbound

    store = server.state.store
    inbox = await make_inbox(store, name="Mail")
    ann = await make_agent(store, email="ann@example.test", name="Ann", role="admin")
    first = await server.state.service.deliver(
        dataclasses.replace(inbound(inbox, "m1", text="Order 7?"), thread_reason="new conversation")
    )
    await server.state.service.deliver(
        dataclasses.replace(
            inbound(inbox, "m2", text="Any news?"),
            thread_reason="threaded by References",
            metadata={"edited_at": "2026-11-22T10:00:00Z"},
        )
    )
    tab = await agent_tab(browser, server, ann, f"/#conversation/{first.conversation_id}")
    reasons = tab.page.locator(".message .thread-reason")
    await reasons.nth(1).wait_for()
    assert await reasons.all_inner_texts() == ["new conversation", "threaded by References"]
    assert await tab.page.locator(".message .edited").count() == 1
    assert tab.errors == []
    await tab.context.close()


async def test_remote_images_load_only_after_show_images(server: LiveServer, browser: Any) -> None:
    import dataclasses

    from tests.factories import inbound

    store = server.state.store
    inbox = await make_inbox(store, name="Mail")
    ann = await make_agent(store, email="ann@example.test", name="Ann", role="admin")
    pixel = f"{server.url}/static/pixel-that-does-not-exist.png"
    html = f'<p>Hi</p><img src="" data-blocked-src="{pixel}" alt="logo">'
    delivered = await server.state.service.deliver(dataclasses.replace(inbound(inbox, "h1", text="Hi"), html=html))
    tab = await agent_tab(browser, server, ann, f"/#conversation/{delivered.conversation_id}")
    image = tab.page.frame_locator("iframe.email-html").locator("img")
    await image.wait_for(state="attached")
    assert await image.get_attribute("src") == ""
    await tab.page.locator("button.show-images").click()
    await tab.page.frame_locator("iframe.email-html").locator(f'img[src="{pixel}"]').wait_for(state="attached")
    assert await tab.page.locator("button.show-images").count() == 0
    await tab.context.close()
