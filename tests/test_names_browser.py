# ruff: noqa: F811  (pytest fixtures imported from tests.browser_agent are parameters here)
"""Names people cannot spoof, and automatic mail badged, in the agent inbox (issue 17 items 4 and 10): a
right-to-left override in a sender's name or a file name is isolated (`<bdi dir=auto>`) and shown visibly in
the list, the thread's author line, its title, the contact panel and attachment links; a 190-character unbroken
name wraps; auto-replies stored with `meta.email.automatic` or `meta.automatic` carry the "automatic" badge."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from channels.base import InboundAttachment
from tests.browser_agent import WAIT_MS, agent_tab, browser, folder, live, row  # noqa: F401
from tests.factories import add_member, inbound, make_agent, make_inbox
from tests.servers.app import LiveServer

pytestmark = pytest.mark.timeout(180)

SPOOF = "Ann \u202egpj.exe"
SHOWN = "Ann ⟦U+202E⟧gpj.exe⟦U+202C⟧"  # clean_name closed the override; both shown, neither acting
LONG = "W" * 190


async def overflows(page: Any, selector: str) -> list[str]:
    """The elements matching `selector` whose content is wider than their box."""
    found: list[str] = await page.eval_on_selector_all(
        selector, "els => els.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.outerHTML.slice(0, 80))"
    )
    return found


async def test_names_are_isolated_controls_visible_long_names_wrap_and_auto_replies_badged(
    server: LiveServer, browser: Any
) -> None:
    store, service = server.state.store, server.state.service
    inbox = await make_inbox(store, channel="api", name="Support")
    ann = await make_agent(store, email="ann@example.test", name="Ann", role="admin")
    await add_member(store, inbox, ann)
    spoof = dataclasses.replace(
        inbound(inbox, "s1", text="Please open the invoice", sender="spoof"),
        attachments=[InboundAttachment("invoice \u202efdp.exe", "application/octet-stream", b"MZ")],
    )
    spoof = dataclasses.replace(spoof, sender=dataclasses.replace(spoof.sender, name=SPOOF))
    first = await service.deliver(spoof)
    await service.deliver(
        dataclasses.replace(
            inbound(inbox, "s2", text="I am out of office", sender="spoof"),
            sender=spoof.sender,
            metadata={"email": {"automatic": "Auto-Submitted: auto-replied"}},  # stored before the top-level flag
        )
    )
    long = inbound(inbox, "l1", text="hello", sender="long")
    long_id = await service.deliver(dataclasses.replace(long, sender=dataclasses.replace(long.sender, name=LONG)))
    tab = await agent_tab(browser, server, ann)
    page = tab.page
    await live(page)
    await folder(page, "all")
    await page.wait_for_selector(row(first.conversation_id), timeout=WAIT_MS)
    name = page.locator(f"{row(first.conversation_id)} .contact-name bdi[dir=auto]")
    assert await name.text_content() == SHOWN

    await page.click(row(first.conversation_id))
    await page.wait_for_selector("#messages li.incoming", timeout=WAIT_MS)
    senders = page.locator("#messages li.incoming .message-head bdi.sender[dir=auto]")
    assert await senders.all_text_contents() == [SHOWN, SHOWN]
    badges = page.locator("#messages li.incoming .automatic-badge")
    assert await badges.count() == 1
    assert "Auto-Submitted: auto-replied" in (await badges.get_attribute("title") or "")
    assert await page.locator("#thread-title bdi[dir=auto]").text_content() == SHOWN
    await page.wait_for_selector("#contact-panel .contact-title bdi[dir=auto]", timeout=WAIT_MS)
    assert await page.locator("#contact-panel .contact-title bdi").text_content() == SHOWN
    link = page.locator("#messages .attachments a bdi[dir=auto]")
    assert await link.text_content() == "invoice ⟦U+202E⟧fdp.exe"

    await page.click(row(long_id.conversation_id))
    senders = page.locator("#messages li.incoming .message-head bdi.sender")
    shown: set[str] = set()
    for _ in range(200):  # the thread of the conversation clicked replaces the previous one's
        shown = set(await senders.all_text_contents())
        if shown == {LONG}:
            break
        await page.wait_for_timeout(25)
    assert shown == {LONG}
    assert await overflows(page, "#messages .message-head, #thread-title, .conversation-top, #contact-panel h2") == []
    assert tab.errors == []
