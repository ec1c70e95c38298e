"""Self-service answers and proactive messages over real HTTP, on SQLite and PostgreSQL: the articles API
(admins write, agents read what their inboxes allow), full-text search, the widget's endpoints (authorised
by the welcome's upload token, published articles only, rate-limited), proactive rules, and the numbers
in `GET /api/v1/reports/summary`."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select
from sqlmodel import col

from inbox.store.models import Article, Conversation, Message, ProactiveRule, SelfServeEvent
from tests.factories import make_inbox
from tests.people import People
from tests.servers.app import LiveServer
from tests.webchat_client import admin_with_token, agent_stream, widget


async def count(server: LiveServer, model: type) -> int:
    async with server.state.store.session() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def visitor(server: LiveServer, key: str) -> tuple[httpx.AsyncClient, str]:
    """A widget visitor: says hello over the socket, then speaks HTTP with the welcome's upload token."""
    async with widget(server, key, hello={}) as socket:
        welcome = await socket.expect_type("welcome")
    client = httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {welcome['upload_token']}"}, timeout=10
    )
    return client, welcome["visitor_token"]


async def article(people: People, **fields: Any) -> dict[str, Any]:
    created = await people.admin.post("/api/v1/articles", json={"body": "Text", **fields})
    assert created.status_code == 201, created.text
    data: dict[str, Any] = created.json()
    return data


async def test_admin_writes_agents_read_their_inboxes(server: LiveServer, people: People) -> None:
    store = server.state.store
    mine = await make_inbox(store, channel="webchat", name="Mine")
    other = await make_inbox(store, channel="webchat", name="Other")
    await people.admin.post(f"/api/v1/inboxes/{mine.id}/members", json={"agent_id": people.agent_id})
    body = "# Reset\n\nGo to [settings](https://example.com/s).\n\n<script>alert(1)</script>\n\n<b>raw</b>"
    created = await article(people, title="Reset your password", body=body, inbox_id=mine.id, published=True)
    assert "<h1>Reset</h1>" in created["html"] and 'rel="noopener noreferrer"' in created["html"]
    assert "<script" not in created["html"] and "<b>" not in created["html"]
    global_one = await article(people, title="Opening hours", body="We open at nine.")
    hidden = await article(people, title="Other inbox", inbox_id=other.id)

    listed = (await people.agent.get("/api/v1/articles")).json()["items"]
    assert {item["id"] for item in listed} == {created["id"], global_one["id"]}
    assert (await people.agent.get(f"/api/v1/articles/{hidden['id']}")).status_code == 404
    assert (await people.agent.get(f"/api/v1/articles/{created['id']}")).json()["body"] == body

    before = await count(server, Article)
    refused = [
        await people.agent.post("/api/v1/articles", json={"title": "x", "body": "y"}),
        await people.agent.patch(f"/api/v1/articles/{created['id']}", json={"title": "x"}),
        await people.agent.delete(f"/api/v1/articles/{created['id']}"),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403]
    bad = [
        await people.admin.post("/api/v1/articles", json={"title": "", "body": "y"}),
        await people.admin.post("/api/v1/articles", json={"title": "t", "body": "y", "locale": "English"}),
        await people.admin.post("/api/v1/articles", json={"title": "t", "body": "y", "inbox_id": 999}),
        await people.admin.post("/api/v1/articles", json={"title": "t", "body": "y", "extra": 1}),
        await people.admin.post("/api/v1/articles", content=b"{not json", headers={"content-type": "application/json"}),
    ]
    assert [r.status_code for r in bad] == [422, 422, 422, 422, 400], [r.text for r in bad]
    assert "inbox 999 does not exist" in bad[2].json()["error"]["detail"]
    assert await count(server, Article) == before

    changed = await people.admin.patch(f"/api/v1/articles/{created['id']}", json={"body": "**new**"})
    assert changed.json()["html"] == "<p><strong>new</strong></p>\n"
    assert (await people.admin.patch(f"/api/v1/articles/{created['id']}", json={"title": None})).status_code == 422
    assert (await people.admin.delete(f"/api/v1/articles/{hidden['id']}")).status_code == 204
    assert (await people.admin.get(f"/api/v1/articles/{hidden['id']}")).status_code == 404
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        assert (await anonymous.get("/api/v1/articles")).status_code == 401


async def test_full_text_search_ranks_and_matches_prefixes(server: LiveServer, people: People) -> None:
    refund = await article(people, title="Refunds", body="How to get your money back after a purchase.", published=True)
    shipping = await article(people, title="Shipping times", body="Parcels arrive in 3 days; refunds are rare.")
    await article(people, title="Colours", body="Nothing about money.")
    found = (await people.agent.get("/api/v1/articles", params={"q": "refund"})).json()["items"]
    assert [item["id"] for item in found] == [refund["id"], shipping["id"]]  # title weighs more than body
    assert (await people.agent.get("/api/v1/articles", params={"q": "parc"})).json()["items"][0]["id"] == shipping["id"]
    assert (await people.agent.get("/api/v1/articles", params={"q": '"*) OR (-'})).json()["items"] == []
    published = (await people.agent.get("/api/v1/articles", params={"q": "refund", "published": "true"})).json()
    assert [item["id"] for item in published["items"]] == [refund["id"]]


async def test_visibility_is_part_of_the_search_not_applied_after_ranking(server: LiveServer, people: People) -> None:
    async with server.state.store.transaction() as tx:  # many drafts that rank above the one published match
        tx.add_all(Article(title=f"Warranty draft {n}", body="warranty warranty") for n in range(60))
    repairs = await article(people, title="Repairs", body="Broken? Your warranty covers it.", published=True)
    found = await people.agent.get("/api/v1/articles", params={"q": "warranty", "published": "true", "limit": 3})
    assert [item["id"] for item in found.json()["items"]] == [repairs["id"]]
    everything = await people.agent.get("/api/v1/articles", params={"q": "warranty", "limit": 200})
    assert len(everything.json()["items"]) == 61 and everything.json()["items"][-1]["id"] == repairs["id"]


async def test_widget_reads_only_published_articles_and_counts(server: LiveServer, people: People) -> None:
    store = server.state.store
    site = await make_inbox(store, channel="webchat", name="Site")
    elsewhere = await make_inbox(store, channel="webchat", name="Elsewhere")
    live = await article(people, title="Password reset", body="Click *forgot password*.", published=True)
    draft = await article(people, title="Password policy (draft)", body="Secret plans.")
    foreign = await article(people, title="Password for elsewhere", inbox_id=elsewhere.id, published=True)
    russian = await article(people, title="Password по-русски", locale="ru", published=True)
    client, _ = await visitor(server, site.public_key)
    async with client:
        key = {"key": site.public_key}
        found = (await client.get("/widget/answers", params={**key, "q": "password", "locale": "en-GB"})).json()
        assert [item["id"] for item in found["items"]] == [live["id"]]
        assert set(found["items"][0]) == {"id", "title", "excerpt", "html", "url"}
        suggested = (await client.get("/widget/answers", params=key)).json()["items"]
        assert {item["id"] for item in suggested} == {live["id"], russian["id"]}
        for hidden in (draft, foreign):
            assert (await client.get(f"/widget/answers/{hidden['id']}", params=key)).status_code == 404
            feedback = await client.post(f"/widget/answers/{hidden['id']}/feedback", params=key, json={"helpful": True})
            assert feedback.status_code == 404
        opened = await client.get(f"/widget/answers/{live['id']}", params=key)
        assert opened.status_code == 200 and "<em>forgot password</em>" in opened.json()["html"]
        helpful = await client.post(f"/widget/answers/{live['id']}/feedback", params=key, json={"helpful": True})
        assert helpful.json() == {"recorded": "deflected"}
        assert (
            await client.post(f"/widget/answers/{live['id']}/feedback", params=key, json={"helpful": "yes"})
        ).status_code == 422
        for query in ("invoice pdf", "Invoice PDF", "warranty"):
            assert (await client.get("/widget/answers", params={**key, "q": query})).json()["items"] == []
        await client.get("/widget/answers", params={**key, "q": "nothing here", "count": "0"})  # typing: not counted

    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        assert (await anonymous.get("/widget/answers", params={"key": site.public_key})).status_code == 401
        forged = await anonymous.get(
            "/widget/answers", params={"key": site.public_key}, headers={"Authorization": "Bearer abc.def"}
        )
        assert forged.status_code == 401
        assert (await anonymous.get("/widget/answers", params={"key": "nope"})).status_code == 404
        page = await anonymous.get(f"/help/articles/{live['id']}")
        assert page.status_code == 200 and "<em>forgot password</em>" in page.text
        assert (await anonymous.get(f"/help/articles/{draft['id']}")).status_code == 404
    other_client, _ = await visitor(server, elsewhere.public_key)
    async with other_client:  # a token of one inbox does not open another
        crossed = await other_client.get("/widget/answers", params={"key": site.public_key})
        assert crossed.status_code == 401

    summary = (await people.admin.get("/api/v1/reports/summary")).json()["self_service"]
    assert summary["article_views"] == 1 and summary["deflections"] == 1 and summary["deflection_rate"] == 1.0
    assert summary["searches"] == 4 and summary["searches_without_result"] == 3
    assert summary["top_queries_without_result"] == [
        {"query": "invoice pdf", "count": 2},
        {"query": "warranty", "count": 1},
    ]
    assert summary["top_articles"] == [{"article_id": live["id"], "title": "Password reset", "views": 1}]
    scoped = (await people.admin.get("/api/v1/reports/summary", params={"inbox_id": elsewhere.id})).json()
    assert scoped["self_service"]["article_views"] == 0
    assert (await people.agent.get("/api/v1/reports/summary")).json()["self_service"]["searches"] == 0  # no inboxes


async def test_widget_requests_are_rate_limited(server: LiveServer) -> None:
    site = await make_inbox(server.state.store, channel="webchat", name="Site")
    client, _ = await visitor(server, site.public_key)
    async with client:
        statuses = [
            (await client.get("/widget/answers", params={"key": site.public_key})).status_code for _ in range(61)
        ]
        assert statuses[:60] == [200] * 60 and statuses[60] == 429
        last = await client.get("/widget/answers", params={"key": site.public_key})
        assert last.json()["error"]["code"] == "rate_limited" and int(last.headers["retry-after"]) >= 1


async def test_proactive_rules_and_a_reply_opens_a_conversation(server: LiveServer, people: People) -> None:
    store = server.state.store
    site = await make_inbox(store, channel="webchat", name="Site")
    api_inbox = await make_inbox(store, channel="api", name="API")
    rule = {"inbox_id": site.id, "message": "Need help with pricing?", "url_pattern": "https://shop.test/pricing*"}
    created = await people.admin.post("/api/v1/proactive_rules", json={**rule, "min_seconds_on_page": 5})
    assert created.status_code == 201, created.text
    other = await people.admin.post(
        "/api/v1/proactive_rules", json={"inbox_id": site.id, "message": "Hello!", "max_per_visitor": 2}
    )
    assert (await people.agent.post("/api/v1/proactive_rules", json=rule)).status_code == 403
    bad = [
        await people.admin.post("/api/v1/proactive_rules", json={**rule, "inbox_id": api_inbox.id}),
        await people.admin.post("/api/v1/proactive_rules", json={**rule, "min_seconds_on_page": -1}),
        await people.admin.post("/api/v1/proactive_rules", json={**rule, "message": " "}),
        await people.admin.post("/api/v1/proactive_rules", json={**rule, "max_per_visitor": 0}),
    ]
    assert [r.status_code for r in bad] == [422] * 4
    assert "not a webchat inbox" in bad[0].json()["error"]["detail"]
    assert await count(server, ProactiveRule) == 2
    assert (await people.agent.get("/api/v1/proactive_rules")).json()["items"] == []  # not a member
    rule_id, other_id = created.json()["id"], other.json()["id"]
    assert (await people.agent.get(f"/api/v1/proactive_rules/{rule_id}")).status_code == 404
    await people.admin.post(f"/api/v1/inboxes/{site.id}/members", json={"agent_id": people.agent_id})
    readable = (await people.agent.get("/api/v1/proactive_rules")).json()["items"]
    assert [item["id"] for item in readable] == [rule_id, other_id]
    assert (await people.agent.patch(f"/api/v1/proactive_rules/{rule_id}", json={"enabled": False})).status_code == 403
    paused = await people.admin.patch(f"/api/v1/proactive_rules/{other_id}", json={"enabled": False})
    assert paused.json()["enabled"] is False
    assert (await people.admin.patch(f"/api/v1/proactive_rules/{other_id}", json={"enabled": True})).status_code == 200

    client, _ = await visitor(server, site.public_key)
    async with client:
        key = {"key": site.public_key}
        on_pricing = (
            await client.get("/widget/proactive", params={**key, "url": "https://shop.test/pricing/pro"})
        ).json()
        assert [item["id"] for item in on_pricing["items"]] == [rule_id, other_id]
        assert on_pricing["items"][0]["min_seconds_on_page"] == 5 and on_pricing["agents_online"] is False
        _, token = await admin_with_token(store, email="online@example.test")
        async with agent_stream(server, token):  # an agent who may answer this inbox is connected
            online = (await client.get("/widget/proactive", params={**key, "url": "https://shop.test/"})).json()
            assert online["agents_online"] is True
        elsewhere = (await client.get("/widget/proactive", params={**key, "url": "https://shop.test/"})).json()
        assert [item["id"] for item in elsewhere["items"]] == [other_id]
        assert (await client.post(f"/widget/proactive/{rule_id}/shown", params=key)).status_code == 200
        capped = (await client.get("/widget/proactive", params={**key, "url": "https://shop.test/pricing"})).json()
        assert [item["id"] for item in capped["items"]] == [other_id]  # shown once: its cap is reached
        assert (await client.post("/widget/proactive/999/shown", params=key)).status_code == 404

        replied = await client.post(f"/widget/proactive/{rule_id}/reply", params=key, json={"greeting_id": "g-1"})
        assert replied.status_code == 201, replied.text
        again = await client.post(f"/widget/proactive/{rule_id}/reply", params=key, json={"greeting_id": "g-1"})
        assert again.status_code == 200 and again.json() == replied.json()  # idempotent per greeting
        assert (
            await client.post(f"/widget/proactive/{rule_id}/reply", params=key, json={"greeting_id": "no spaces"})
        ).status_code == 422
    conversation_id = replied.json()["conversation_id"]

    async with server.state.store.session() as session:
        messages = list(
            (await session.execute(select(Message).where(col(Message.conversation_id) == conversation_id))).scalars()
        )
        assert await count(server, Conversation) == 1
    assert [(m.kind, m.body, m.status, m.meta.get("automatic")) for m in messages] == [
        ("outgoing", "Need help with pricing?", "sent", True)
    ]
    summary = (await people.admin.get("/api/v1/reports/summary")).json()["proactive"]
    assert summary["shown"] == 1 and summary["replied"] == 1 and summary["conversion_rate"] == 1.0
    assert summary["rules"] == [
        {"rule_id": rule_id, "message": "Need help with pricing?", "shown": 1, "replied": 1, "conversion_rate": 1.0}
    ]
    assert await count(server, SelfServeEvent) == 2


async def test_visitor_reply_after_greeting_lands_after_it(server: LiveServer, people: People) -> None:
    site = await make_inbox(server.state.store, channel="webchat", name="Site")
    rule = (
        await people.admin.post("/api/v1/proactive_rules", json={"inbox_id": site.id, "message": "Hi there!"})
    ).json()
    async with widget(server, site.public_key, hello={}) as socket:
        welcome = await socket.expect_type("welcome")
        headers = {"Authorization": f"Bearer {welcome['upload_token']}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
            path, key = f"/widget/proactive/{rule['id']}", {"key": site.public_key}
            unseen = await client.post(f"{path}/reply", params=key, json={"greeting_id": "g"})
            assert unseen.status_code == 409 and "was not shown" in unseen.json()["error"]["detail"]
            assert (await client.post(f"{path}/shown", params=key)).status_code == 200
            started = await client.post(
                f"/widget/proactive/{rule['id']}/reply", params={"key": site.public_key}, json={"greeting_id": "g"}
            )
        await socket.send({"type": "message", "client_id": "c-1", "body": "Yes, what does Pro cost?"})
        await socket.expect_type("ack")
    assert await count(server, Conversation) == 1
    conversation_id = started.json()["conversation_id"]
    messages = (await people.admin.get(f"/api/v1/conversations/{conversation_id}/messages")).json()
    assert [(m["kind"], m["body"]) for m in messages["items"]] == [
        ("outgoing", "Hi there!"),
        ("incoming", "Yes, what does Pro cost?"),
    ]
    assert messages["items"][0]["meta"]["automatic"] is True
