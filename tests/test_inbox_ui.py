# ruff: noqa: F811  (pytest fixtures imported from tests.browser_agent are parameters here)
"""The agent inbox in a real browser against the real server: live arrival, reply and note from the
composer, actions, shortcuts, review-before-send, typing/viewing notices, resume after a dropped socket,
and a reload that shows the same thread."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import pytest
from sqlmodel import select

from inbox.realtime import events
from inbox.service import ConversationChanges
from inbox.store.models import Agent, CannedResponse, Cursor, Inbox, InboxMember, Message, Team, TeamMember

# The fixtures `browser` and `webhook` are imported so pytest finds them.
from tests.browser_agent import (  # noqa: F401
    WAIT_MS,
    Webhook,
    agent_tab,
    browser,
    folder,
    live,
    row,
    screenshot,
    thread_ids,
    webhook,
)
from tests.factories import add_member, inbound, make_agent, make_inbox, make_label, make_token
from tests.servers.app import LiveServer
from tests.streams import StreamClient
from tests.webchat_client import webchat_inbox, widget

pytestmark = pytest.mark.timeout(180)


@dataclass
class World:
    server: LiveServer
    inbox: Inbox
    ann: Agent  # admin, the agent under test
    bob: Agent  # agent, member of the inbox

    async def deliver(
        self,
        external_id: str,
        text: str,
        sender: str = "carol",
        thread: str | None = None,
        name: str | None = None,
        html: str | None = None,
    ) -> int:
        message = dataclasses.replace(
            inbound(self.inbox, external_id, text=text, sender=sender, thread=thread), html=html
        )
        if name is not None:
            message = dataclasses.replace(message, sender=dataclasses.replace(message.sender, name=name))
        delivered = await self.server.state.service.deliver(message)
        return int(delivered.conversation_id)


async def build(server: LiveServer, webhook_url: str) -> World:
    store = server.state.store
    inbox = await make_inbox(store, channel="api", name="Support", webhook_url=webhook_url)
    ann = await make_agent(store, email="ann@example.test", name="Ann", role="admin")
    bob = await make_agent(store, email="bob@example.test", name="Bob")
    await add_member(store, inbox, ann)
    await add_member(store, inbox, bob)
    await make_label(store, "vip")
    async with store.transaction() as tx:
        team = Team(name="Tier 2")
        tx.add(team)
        await tx.flush()
        tx.add(TeamMember(team_id=team.id, agent_id=bob.id))  # type: ignore[arg-type]
        tx.add(CannedResponse(short_code="thanks", content="Thank you for writing to us!"))
    return World(server, inbox, ann, bob)


async def test_live_message_reply_note_actions_and_reload(server: LiveServer, browser: Any, webhook: Webhook) -> None:
    world = await build(server, webhook.url)
    tab = await agent_tab(browser, server, world.ann)
    page = tab.page
    await live(page)
    await folder(page, "all")

    # A customer message arrives live; hostile text renders as text.
    hostile = 'Hello <img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    earlier = await world.deliver("old-1", "An older question", thread="earlier")
    await server.state.service.update_conversation(earlier, ConversationChanges(status="resolved"), by=None)
    conversation = await world.deliver("m1", hostile)
    await page.wait_for_selector(row(conversation), timeout=WAIT_MS)
    assert await page.text_content(f"{row(conversation)} .preview") == hostile
    await page.click(row(conversation))
    incoming = page.locator("#messages li.incoming .message-body")
    await incoming.wait_for(timeout=WAIT_MS)
    assert await incoming.text_content() == hostile
    assert await page.evaluate("window.pwned") is None
    assert await page.locator("#messages img").count() == 0
    await page.wait_for_selector("#contact-panel .identity-value", timeout=WAIT_MS)
    assert "carol" in (await page.text_content("#contact-panel .identities") or "")
    previous = page.locator("#contact-panel .previous a")
    assert await previous.count() == 1
    assert "An older question" in (await previous.text_content() or "")

    # Reply with Ctrl+Enter: queued while the webhook holds it, then sent.
    webhook.gate.clear()
    await page.fill("#composer-text", "We are on it.")
    await page.press("#composer-text", "Control+Enter")
    outgoing = page.locator("#messages li.outgoing")
    await page.wait_for_selector("#messages li.outgoing[data-status=queued]", timeout=WAIT_MS)
    assert await outgoing.locator(".delivery-status").text_content() == "Sending…"
    assert await page.input_value("#composer-text") == ""
    webhook.gate.set()
    await page.wait_for_selector("#messages li.outgoing[data-status=sent]", timeout=WAIT_MS)
    assert [item["message"]["body"] for item in webhook.received] == ["We are on it."]

    # A private note via the toggle: set apart, never sent.
    await page.check("input[name=kind][value=note]")
    await page.fill("#composer-text", "Customer is a VIP, be nice")
    await page.press("#composer-text", "Control+Enter")
    note = page.locator("#messages li.note")
    await note.wait_for(timeout=WAIT_MS)
    assert await note.locator(".note-badge").text_content() == "Private note"
    assert len(webhook.received) == 1

    # An attachment (its hostile name stays text) goes out with the next note.
    name = "<img src=x onerror=alert(1)>.txt"
    await page.set_input_files("#composer-files", files=[{"name": name, "mimeType": "text/plain", "buffer": b"hi"}])
    await page.wait_for_selector("#composer-pending li", timeout=WAIT_MS)
    await page.fill("#composer-text", "See attached")
    await page.press("#composer-text", "Control+Enter")
    link = page.locator("#messages li.note .attachments a")
    await link.wait_for(timeout=WAIT_MS)
    assert await link.text_content() == name
    assert await page.locator("#messages li.note .attachments img").count() == 0
    assert await page.locator("#composer-pending li").count() == 0

    # Canned response on "/".
    await page.check("input[name=kind][value=outgoing]")
    await page.fill("#composer-text", "")
    await page.type("#composer-text", "/than")
    await page.wait_for_selector("#canned-menu li", timeout=WAIT_MS)
    await page.press("#composer-text", "Enter")
    assert await page.input_value("#composer-text") == "Thank you for writing to us!"
    await page.fill("#composer-text", "")
    await page.press("#composer-text", "Escape")

    # Actions: assign to Bob, team, a label; each leaves an activity line.
    await page.select_option("#assign-select", str(world.bob.id))
    await page.wait_for_selector("#messages li.activity >> text=Assigned to Bob by Ann", timeout=WAIT_MS)
    await page.select_option("#team-select", label="Tier 2")
    await page.wait_for_selector("#messages li.activity >> text=Assigned to team Tier 2 by Ann", timeout=WAIT_MS)
    await page.click("#label-menu summary")
    await page.check('#label-options input[value="vip"]')
    await page.wait_for_selector(f"{row(conversation)} .label >> text=vip", timeout=WAIT_MS)
    await page.click("#label-menu summary")

    # Keyboard: "e" resolves (the open list drops it), then snooze from the menu.
    await page.click("#thread-title")
    await page.keyboard.press("e")
    await page.wait_for_selector("#messages li.activity >> text=Resolved by Ann", timeout=WAIT_MS)
    await page.wait_for_selector(row(conversation), state="detached", timeout=WAIT_MS)
    await page.click("#snooze-menu summary")
    await page.click("[data-snooze-hours='4']")
    await page.wait_for_selector("#thread-status[data-status=snoozed]", timeout=WAIT_MS)
    await page.wait_for_selector("#messages li.activity >> text=/Snoozed until .* by Ann/", timeout=WAIT_MS)
    await screenshot(page, "inbox-thread")

    # Reload: the same thread, in the same order.
    before = await thread_ids(page)
    await page.reload()
    await live(page)
    await page.wait_for_function(
        f"document.querySelectorAll('#messages > li').length === {len(before)}", timeout=WAIT_MS
    )
    assert await thread_ids(page) == before
    assert tab.errors == []
    await tab.context.close()


async def test_failed_reply_retry(server: LiveServer, browser: Any, webhook: Webhook) -> None:
    world = await build(server, webhook.url)
    html = "<p>Is <b>anyone</b> there?</p><script>parent.pwned = 1</script>"
    conversation = await world.deliver("m1", "Is anyone there?", html=html)
    webhook.status = 400
    tab = await agent_tab(browser, server, world.ann, f"/#conversation/{conversation}")
    page = tab.page
    await live(page)
    # Email HTML only inside a sandboxed iframe: no scripts, no access to the inbox page.
    frame = page.locator('#messages li.incoming iframe[sandbox=""]')
    await frame.wait_for(timeout=WAIT_MS)
    assert await frame.get_attribute("srcdoc") == html
    assert await page.frame_locator("#messages li.incoming iframe").locator("b").text_content() == "anyone"
    assert await page.evaluate("window.pwned") is None
    await page.fill("#composer-text", "Yes!")
    await page.press("#composer-text", "Control+Enter")
    await page.wait_for_selector("#messages li.outgoing[data-status=failed]", timeout=WAIT_MS)
    assert "400" in (await page.text_content("#messages li.outgoing .delivery-error") or "")
    webhook.status = 200
    await page.click("#messages li.outgoing button.retry")
    await page.wait_for_selector("#messages li.outgoing[data-status=sent]", timeout=WAIT_MS)
    assert await page.locator("#messages li.outgoing").count() == 1
    assert len(webhook.received) == 1
    assert tab.errors == []
    await tab.context.close()


async def test_shortcuts_help_review_and_other_agents(server: LiveServer, browser: Any, webhook: Webhook) -> None:
    world = await build(server, webhook.url)
    first = await world.deliver("a1", "First customer", sender="dave")
    second = await world.deliver("b1", "Second customer", sender="erin")
    tab = await agent_tab(browser, server, world.ann)
    page = tab.page
    await live(page)
    await folder(page, "all")
    await page.wait_for_selector(row(first), timeout=WAIT_MS)
    assert await page.text_content(f"{row(first)} .unread-count") == "1"
    # Newest first: j opens `second`, j again `first`, k back to `second`.
    await page.evaluate("document.activeElement.blur()")  # shortcuts act when no field has focus
    await page.keyboard.press("j")
    await page.wait_for_selector(f"{row(second)}.selected", timeout=WAIT_MS)
    await page.keyboard.press("j")
    await page.wait_for_selector(f"{row(first)}.selected", timeout=WAIT_MS)
    await page.keyboard.press("k")
    await page.wait_for_selector(f"{row(second)}.selected", timeout=WAIT_MS)
    await page.keyboard.press("?")
    await page.wait_for_selector("#help", state="visible")
    assert "resolve" in (await page.text_content("#help") or "")
    await page.keyboard.press("Escape")
    await page.wait_for_selector("#help", state="hidden")
    await page.keyboard.press("/")
    assert await page.evaluate("document.activeElement.id") == "search"
    await page.keyboard.press("Escape")
    await page.keyboard.press("a")
    assert await page.evaluate("document.activeElement.id") == "assign-select"
    await page.keyboard.press("Escape")
    await page.click("#thread-title")

    # Bob, on his own stream, views and types in the same conversation: Ann sees both notices;
    # Ann typing reaches Bob as a typing frame.
    token = await make_token(server.state.store, world.bob)
    bob = await StreamClient.open(server.ws_url, token)
    try:
        await bob.until("ready")
        # Presence both ways: Bob goes busy, Ann goes busy.
        await bob.connection.send(json.dumps({"type": "presence", "availability": "busy"}))
        await page.wait_for_selector(f'#presence-list li[data-agent="{world.bob.id}"][data-availability=busy]')
        await page.select_option("#availability", "busy")
        presence = await _frame(bob, "presence")
        assert presence == {"type": "presence", "agent_id": world.ann.id, "availability": "busy"}
        await bob.connection.send(json.dumps({"type": "viewing", "conversation_id": second, "active": True}))
        await page.wait_for_selector("#others >> text=Bob is viewing this conversation", timeout=WAIT_MS)
        await bob.connection.send(json.dumps({"type": "typing", "conversation_id": second, "active": True}))
        await page.wait_for_selector("#others >> text=Bob is typing…", timeout=WAIT_MS)
        await page.type("#composer-text", "Let me check")
        typing = await _frame(bob, "typing")
        assert typing["conversation_id"] == second and typing["agent_name"] == "Ann" and typing["active"] is True

        # The thread changes while Ann writes: the first send asks her to review, the second sends.
        await world.deliver("b2", "Actually, never mind", sender="erin")
        await page.wait_for_selector("#messages li.incoming >> text=Actually, never mind", timeout=WAIT_MS)
        await page.press("#composer-text", "Control+Enter")
        await page.wait_for_selector("#review-notice", state="visible", timeout=WAIT_MS)
        assert await page.locator("#messages li.fresh").count() == 1
        assert await page.locator("#messages li.outgoing").count() == 0
        await page.press("#composer-text", "Control+Enter")
        await page.wait_for_selector("#messages li.outgoing", timeout=WAIT_MS)
        await page.wait_for_selector("#review-notice", state="hidden")
        assert await page.locator("#messages li.outgoing").count() == 1
    finally:
        await bob.close()
    await screenshot(page, "inbox-shortcuts")
    assert tab.errors == []
    await tab.context.close()


async def _frame(client: StreamClient, type_: str) -> dict[str, Any]:
    frame = await client.until(type_)
    return frame


async def test_reconnecting_resumes_without_reload(server: LiveServer, browser: Any, webhook: Webhook) -> None:
    world = await build(server, webhook.url)
    conversation = await world.deliver("m1", "Before the drop")
    tab = await agent_tab(browser, server, world.ann, f"/#conversation/{conversation}")
    page = tab.page
    await live(page)
    await page.wait_for_selector("#messages li.incoming >> text=Before the drop", timeout=WAIT_MS)
    await page.evaluate("window.sameDocument = true")

    await tab.context.set_offline(True)
    for subscription in list(server.state.hub._subscriptions):
        subscription.cut_off()
    await page.wait_for_selector("#connection >> text=Reconnecting…", timeout=WAIT_MS)
    await screenshot(page, "inbox-reconnecting")
    await world.deliver("m2", "Missed while offline")
    hostile = '<img src=x onerror="window.pwned=1">Frank'
    other = await world.deliver("x1", "A new conversation meanwhile", sender="frank", name=hostile)
    # Reconnect attempts fail while offline: these two can only arrive by the replay after `after=`.
    await page.wait_for_function("window.switchboard.stream.attempt >= 2", timeout=WAIT_MS)
    assert await page.get_attribute("body", "data-connection") == "reconnecting"
    await tab.context.set_offline(False)

    await live(page)
    await page.wait_for_selector("#connection", state="hidden", timeout=WAIT_MS)
    await page.wait_for_selector("#messages li.incoming >> text=Missed while offline", timeout=WAIT_MS)
    await folder(page, "all")
    await page.wait_for_selector(row(other), timeout=WAIT_MS)
    assert await page.text_content(f"{row(other)} .contact-name") == hostile
    assert await page.locator("#conversation-list img").count() == 0
    assert await page.evaluate("window.sameDocument") is True
    texts = await page.eval_on_selector_all("#messages li.incoming .message-body", "els => els.map(e => e.textContent)")
    assert texts == ["Before the drop", "Missed while offline"]

    # Away longer than the retained log: the server answers `resync` and the page reloads its state in place.
    await tab.context.set_offline(True)
    for subscription in list(server.state.hub._subscriptions):
        subscription.cut_off()
    await page.wait_for_function("window.switchboard.stream.attempt >= 2", timeout=WAIT_MS)
    await world.deliver("m3", "After the log was pruned")
    async with server.state.store.transaction() as tx:
        tx.add(Cursor(key=events.PRUNE_MARK, value=str(await events.latest_id(tx))))
    await tab.context.set_offline(False)
    await live(page)
    await page.wait_for_selector("#messages li.incoming >> text=After the log was pruned", timeout=WAIT_MS)
    assert await page.evaluate("window.sameDocument") is True
    assert tab.errors == []
    await tab.context.close()


async def test_settings_pages_show_snippet_and_create_a_label(server: LiveServer, browser: Any) -> None:
    store = server.state.store
    admin = await make_agent(store, email="root@example.test", name="Root", role="admin")
    webchat = await make_inbox(store, channel="webchat", name="Website")
    tab = await agent_tab(browser, server, admin, "/settings/inboxes")
    page = tab.page
    await page.wait_for_selector(".settings-row", timeout=WAIT_MS)
    await page.click(".settings-row summary")
    snippet = await page.text_content(".snippet")
    assert snippet == f'<script src="{server.url}/widget.js" data-key="{webchat.public_key}" async></script>'
    await screenshot(page, "settings-inboxes")

    await page.goto(server.url + "/settings/labels")
    await page.fill("#settings-create input[name=name]", "<b>urgent</b>")
    await page.click("#settings-create button[type=submit]")
    await page.wait_for_selector(".settings-row summary >> text=<b>urgent</b>", timeout=WAIT_MS)
    assert await page.locator(".settings-row summary b").count() == 0
    assert tab.errors == []

    # A canned response created here is offered by the composer's "/".
    await page.goto(server.url + "/settings/canned_responses")
    await page.fill("#settings-create input[name=short_code]", "hello")
    await page.fill("#settings-create textarea[name=content]", "Hi there, how can we help?")
    await page.click("#settings-create button[type=submit]")
    await page.wait_for_selector(".settings-row summary >> text=/hello", timeout=WAIT_MS)
    async with store.session() as session:
        stored = (await session.execute(select(CannedResponse))).scalars().all()
    assert [(row.short_code, row.content) for row in stored] == [("hello", "Hi there, how can we help?")]

    # Inbox membership toggles through the members API.
    await page.goto(server.url + "/settings/inboxes")
    await page.click(".settings-row summary")
    await page.check(".settings-row .members input[type=checkbox]")
    await page.wait_for_selector("#toasts >> text=Root added.", timeout=WAIT_MS)
    async with store.session() as session:
        members = (await session.execute(select(InboxMember.agent_id))).scalars().all()
    assert members == [admin.id]

    agent = await make_agent(store, email="zed@example.test", name="Zed")
    response = await tab.context.new_page()
    await response.context.clear_cookies()
    await response.context.add_cookies(
        [{"name": "sb_session", "value": server.state.sessions.issue(agent), "url": server.url}]
    )
    answer = await response.goto(server.url + "/settings/labels")
    assert answer is not None and answer.status == 403
    await tab.context.close()


async def test_list_pages_filters_and_notifies(server: LiveServer, browser: Any, webhook: Webhook) -> None:
    world = await build(server, webhook.url)
    ids = [await world.deliver(f"p{n}", f"Question {n}", sender=f"c{n}") for n in range(32)]
    await server.state.service.update_conversation(ids[0], ConversationChanges(labels=["vip"]), by=None)
    tab = await agent_tab(browser, server, world.ann)
    page = tab.page
    await live(page)
    await folder(page, "all")
    rows = page.locator("#conversation-list li.conversation")
    # The first page holds 30; a live event that reached the stream just after the page was read may bring one
    # more row in early (the oldest, relabelled conversation), so wait for at least a page, then page on.
    await page.wait_for_function("document.querySelectorAll('#conversation-list li.conversation').length >= 30")
    await page.click("#load-more")
    await page.wait_for_function("document.querySelectorAll('#conversation-list li.conversation').length === 32")
    listed = await page.eval_on_selector_all("#conversation-list li.conversation", "els => els.map(e => +e.dataset.id)")
    assert sorted(listed) == sorted(ids)
    await page.wait_for_selector("#load-more", state="hidden")

    await page.select_option("#filter-label", "vip")
    await page.wait_for_function("document.querySelectorAll('#conversation-list li.conversation').length === 1")
    assert await rows.first.get_attribute("data-id") == str(ids[0])
    await page.select_option("#filter-label", "")
    await folder(page, "mine")
    await page.wait_for_selector("#list-empty")

    # Opt in to notifications; a conversation assigned to me jumps into Mine live and a new message sounds.
    await tab.context.grant_permissions(["notifications"])
    await page.check("#notify-toggle")
    await server.state.service.update_conversation(ids[5], ConversationChanges(assignee_id=world.ann.id), by=world.bob)
    await page.wait_for_selector(row(ids[5]), timeout=WAIT_MS)
    assert await page.get_attribute("body", "data-sounds") is None
    await world.deliver("p5-again", "Me again", sender="c5")
    await page.wait_for_selector("body[data-sounds='1']", timeout=WAIT_MS)
    # Someone else's conversation makes no sound (events arrive in order: "Third" comes after it).
    await world.deliver("p6-again", "Not yours", sender="c6")
    await world.deliver("p5-third", "Third", sender="c5")
    await page.wait_for_function(
        f"document.querySelector('{row(ids[5])} .preview').textContent === 'Third'", timeout=WAIT_MS
    )
    assert await page.get_attribute("body", "data-sounds") == "2"
    assert await page.locator(row(ids[6])).count() == 0
    assert tab.errors == []
    await tab.context.close()


async def test_webchat_customer_typing_and_seen_both_ways(server: LiveServer, browser: Any) -> None:
    inbox = await webchat_inbox(server)
    ann = await make_agent(server.state.store, email="ann@example.test", name="Ann", role="admin")
    tab = await agent_tab(browser, server, ann)
    page = tab.page
    await live(page)
    await folder(page, "all")
    async with widget(server, inbox.public_key, hello={}) as customer:
        await customer.expect_type("welcome")
        await customer.send({"type": "contact", "name": "Grace", "email": "grace@example.test"})
        await customer.send({"type": "message", "client_id": "c-1", "body": "Hi from the widget"})
        ack = await customer.expect_type("ack")
        conversation = await _conversation_of(server, ack["message"]["id"])
        await page.click(row(conversation))
        await page.wait_for_selector("#messages li.incoming >> text=Hi from the widget", timeout=WAIT_MS)
        # Opening the thread tells the widget it was seen.
        seen = await customer.expect_type("seen")
        assert seen["message_id"] == ack["message"]["id"]

        await customer.send({"type": "typing", "active": True})
        await page.wait_for_selector("#others >> text=/is typing…/", timeout=WAIT_MS)
        await customer.send({"type": "typing", "active": False})
        await page.wait_for_selector("#others", state="hidden", timeout=WAIT_MS)

        await page.type("#composer-text", "Hello Grace")
        typing = await customer.expect_type("typing")
        assert typing["active"] is True and typing["name"] == "Ann"
        await page.press("#composer-text", "Control+Enter")
        pushed = await customer.expect(lambda f: f.get("type") == "message" and f["message"]["body"] == "Hello Grace")
        await page.wait_for_selector("#messages li.outgoing[data-status=sent]", timeout=WAIT_MS)
        await customer.send({"type": "seen", "message_id": pushed["message"]["id"]})
        await page.wait_for_selector("#messages li.outgoing .delivery-status >> text=Seen", timeout=WAIT_MS)
    assert tab.errors == []
    await tab.context.close()


async def _conversation_of(server: LiveServer, message_id: int) -> int:
    async with server.state.store.session() as session:
        message = await session.get(Message, message_id)
    assert message is not None
    return message.conversation_id
