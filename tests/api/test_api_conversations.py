"""The conversations and messages API over real HTTP, on both databases: filters, keyset pages with a
constant number of statements, get/patch, mark read, messages list/post (idempotent) and retry."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any

from inbox.api import shapes
from inbox.clock import iso, utcnow
from inbox.service import ConversationChanges
from inbox.store.models import Agent, Conversation, InboxMember, Team
from tests.api_world import World, ids, statements
from tests.factories import inbound, make_agent, make_inbox, make_label, make_token


async def test_list_shows_only_the_callers_inboxes_and_filters(world: World) -> None:
    a = await world.deliver("support", "1", sender="a", text="Where is my refund?")
    b = await world.deliver("support", "2", sender="b", text="Login broken")
    c = await world.deliver("support", "3", sender="c", text="Thanks!")
    s = await world.deliver("sales", "4", sender="d", text="Pricing question")
    await make_label(world.store, "billing")
    async with world.store.transaction() as tx:
        team = Team(name="Tier 2")
        tx.add(team)
    async with world.store.session() as session:
        ann = await session.get(Agent, world.ann_id)
    assert ann is not None
    await world.service.update_conversation(
        a.conversation_id, ConversationChanges(assignee_id=world.ann_id, labels=["billing"]), by=ann
    )
    await world.service.update_conversation(
        b.conversation_id, ConversationChanges(status="resolved", team_id=team.id), by=ann
    )
    async with world.client("ann") as ann_http, world.client("bob") as bob_http, world.client("admin") as admin_http:
        mine = (await ann_http.get("/api/v1/conversations")).json()
        shapes.ConversationPage.model_validate(mine)
        assert sorted(ids(mine)) == sorted([a.conversation_id, b.conversation_id, c.conversation_id])
        assert mine["next_cursor"] is None
        assert ids((await bob_http.get("/api/v1/conversations")).json()) == [s.conversation_id]
        assert len(ids((await admin_http.get("/api/v1/conversations")).json())) == 4

        async def find(client: Any, query: str) -> list[int]:
            response = await client.get(f"/api/v1/conversations?{query}")
            assert response.status_code == 200, response.text
            return sorted(ids(response.json()))

        assert await find(ann_http, "status=resolved") == [b.conversation_id]
        assert await find(ann_http, "status=open") == sorted([a.conversation_id, c.conversation_id])
        assert await find(ann_http, "assignee=me") == [a.conversation_id]
        assert await find(ann_http, f"assignee={world.ann_id}") == [a.conversation_id]
        assert await find(ann_http, "assignee=none") == sorted([b.conversation_id, c.conversation_id])
        assert await find(ann_http, "label=billing") == [a.conversation_id]
        assert await find(ann_http, "label=nothing") == []
        assert await find(ann_http, f"team_id={team.id}") == [b.conversation_id]
        assert await find(ann_http, "q=REFUND") == [a.conversation_id]
        assert await find(ann_http, "q=carol") == sorted([a.conversation_id, b.conversation_id, c.conversation_id])
        assert await find(ann_http, "q=100%25") == []  # a literal % is not a wildcard
        assert await find(admin_http, f"inbox_id={world.sales_id}") == [s.conversation_id]
        empty = await ann_http.get(f"/api/v1/conversations?inbox_id={world.support_id}&status=")  # issue 17
        assert empty.status_code == 422 and empty.json()["error"]["detail"].startswith("query.status:"), empty.text
        other = await ann_http.get(f"/api/v1/conversations?inbox_id={world.sales_id}")
        assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
        bad = await ann_http.get("/api/v1/conversations?assignee=someone")
        assert bad.status_code == 422 and "query.assignee" in bad.json()["error"]["detail"]
        unknown = await ann_http.get("/api/v1/conversations?colour=red")
        assert unknown.status_code == 422 and "colour" in unknown.json()["error"]["detail"]
        for limit in ("0", "101", "ten"):
            response = await ann_http.get(f"/api/v1/conversations?limit={limit}")
            assert response.status_code == 422 and "query.limit" in response.json()["error"]["detail"]


async def test_keyset_pages_cover_everything_once_with_a_constant_number_of_statements(world: World) -> None:
    await make_label(world.store, "vip")
    await make_label(world.store, "billing")
    delivered = [await world.deliver("support", f"m{n}", sender=f"s{n}", text=f"question {n}") for n in range(55)]
    for item in delivered[::3]:
        await world.service.update_conversation(
            item.conversation_id, ConversationChanges(labels=["vip", "billing"]), by=None
        )
    async with world.client("ann") as http:
        seen: list[int] = []
        cursor: str | None = None
        pages = 0
        while True:
            response = await http.get(
                "/api/v1/conversations", params={"limit": 7, **({"cursor": cursor} if cursor else {})}
            )
            assert response.status_code == 200, response.text
            page = response.json()
            seen += ids(page)
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == 8 and len(seen) == 55 and len(set(seen)) == 55
        everything = (await http.get("/api/v1/conversations?limit=100")).json()
        assert ids(everything) == seen
        stamps = [(item["last_activity_at"], item["id"]) for item in everything["items"]]
        assert stamps == sorted(stamps, reverse=True)
        labelled = [item for item in everything["items"] if item["labels"]]
        assert len(labelled) == 19 and all(item["labels"] == ["billing", "vip"] for item in labelled)
        assert all(item["contact"]["name"] == "Carol Customer" for item in everything["items"])

        await http.get("/api/v1/conversations?limit=1")  # warm the pools
        with statements(world) as small:
            small_page = (await http.get("/api/v1/conversations?limit=2&q=question")).json()
        with statements(world) as large:
            large_page = (await http.get("/api/v1/conversations?limit=50&q=question")).json()
        assert len(small_page["items"]) == 2 and len(large_page["items"]) == 50
        assert len(small) == len(large), (small, large)
        # token, memberships, the page (contacts and labels in the same statement); no BEGIN on SQLite
        assert len(large) == 3 and all(s.lstrip().upper().startswith("SELECT") for s in large), large
        async with world.client("admin") as admin_http:
            await admin_http.get("/api/v1/conversations?limit=1")  # its first use records last_used_at
            with statements(world) as admin_page:
                assert len((await admin_http.get("/api/v1/conversations?limit=50")).json()["items"]) == 50
        assert len(admin_page) == 2, admin_page  # token, page: admins see every inbox


async def test_list_items_are_exactly_the_conversation_documents(world: World) -> None:
    """The list builds its JSON from plain rows; each item must equal, byte for byte, what the detail
    endpoint (which renders ORM objects through `inbox.read.views`) answers for the same conversation."""
    await make_label(world.store, "zeta")
    await make_label(world.store, 'Ünïcode, "quoted" label')
    await make_label(world.store, "alpha")
    delivered = [await world.deliver("support", f"e{n}", sender=f"e{n}", text=f"Grüße {n} 🙂") for n in range(6)]
    async with world.store.session() as session:
        ann = await session.get(Agent, world.ann_id)
    assert ann is not None
    changes = [
        ConversationChanges(labels=["zeta", 'Ünïcode, "quoted" label', "alpha"], priority="urgent"),
        ConversationChanges(status="resolved", assignee_id=world.ann_id),
        ConversationChanges(status="snoozed", snoozed_until=utcnow() + timedelta(days=1, microseconds=1)),
        ConversationChanges(labels=["alpha"]),
    ]
    for item, change in zip(delivered, changes, strict=False):
        await world.service.update_conversation(item.conversation_id, change, by=ann)
    await world.service.reply(delivered[1].conversation_id, by=ann, body="answer", client_id=None, attachment_ids=[])
    async with world.client("ann") as http, world.client("admin") as admin_http:
        for client in (http, admin_http):
            for query in ("", "&status=resolved", "&label=alpha", "&q=gr"):
                page = await client.get(f"/api/v1/conversations?limit=100{query}")
                assert page.status_code == 200, page.text
                items = page.json()["items"]
                assert items, query
                for item in items:
                    detail = await client.get(f"/api/v1/conversations/{item['id']}")
                    assert json.dumps(item) == json.dumps(detail.json()), (item, detail.json())
        labelled = (await http.get("/api/v1/conversations?label=zeta")).json()["items"]
        assert labelled[0]["labels"] == ["alpha", "zeta", 'Ünïcode, "quoted" label']


async def test_get_patch_snooze_and_read(world: World) -> None:
    delivered = await world.deliver("support", "1")
    other = await world.deliver("sales", "2", sender="x")
    await make_label(world.store, "billing")
    url = f"/api/v1/conversations/{delivered.conversation_id}"
    async with world.client("ann") as http:
        got = (await http.get(url)).json()
        shapes.ConversationOut.model_validate(got)
        assert got["contact"]["name"] == "Carol Customer" and got["status"] == "open" and got["unread_count"] == 1
        assert (await http.get(f"/api/v1/conversations/{other.conversation_id}")).status_code == 404
        assert (await http.get("/api/v1/conversations/999999")).status_code == 404

        patched = await http.patch(url, json={"assignee_id": world.ann_id, "labels": ["billing"], "priority": "high"})
        assert patched.status_code == 200, patched.text
        body = patched.json()
        shapes.ConversationOut.model_validate(body)
        assert body["assignee_id"] == world.ann_id and body["labels"] == ["billing"] and body["priority"] == "high"
        cleared = (await http.patch(url, json={"assignee_id": None, "labels": [], "priority": None})).json()
        assert cleared["assignee_id"] is None and cleared["labels"] == [] and cleared["priority"] is None

        past = iso(utcnow() - timedelta(minutes=5))
        refused = await http.patch(url, json={"status": "snoozed", "snoozed_until": past})
        assert (
            refused.status_code == 422 and "snoozed_until: must be in the future" in refused.json()["error"]["detail"]
        )
        refused = await http.patch(url, json={"status": "snoozed"})
        assert refused.status_code == 422 and "snoozed_until" in refused.json()["error"]["detail"]
        future = utcnow() + timedelta(hours=2)
        refused = await http.patch(url, json={"status": "open", "snoozed_until": iso(future)})
        assert refused.status_code == 422 and "only allowed with status snoozed" in refused.json()["error"]["detail"]
        snoozed = (await http.patch(url, json={"snoozed_until": future.replace(tzinfo=None).isoformat()})).json()
        assert snoozed["status"] == "snoozed" and snoozed["snoozed_until"] == iso(future)

        for bad, where in [
            ({"status": "closed"}, "body.status"),
            ({"priority": "extreme"}, "body.priority"),
            ({"assignee_id": world.bob_id}, "not a member of inbox"),
            ({"team_id": 424242}, "team 424242 does not exist"),
            ({"labels": ["nope"]}, "label 'nope' does not exist"),
            ({}, "give at least one of"),
        ]:
            response = await http.patch(url, json=bad)
            assert response.status_code == 422, (bad, response.text)
            assert where in response.json()["error"]["detail"], (bad, response.text)
        assert (
            await http.patch(f"/api/v1/conversations/{other.conversation_id}", json={"status": "resolved"})
        ).status_code == 404

        read = await http.post(f"{url}/read")
        assert read.status_code == 204
        assert (await http.get(url)).json()["unread_count"] == 0
        assert (await http.post(f"/api/v1/conversations/{other.conversation_id}/read")).status_code == 404


async def test_messages_list_pages_and_post_is_idempotent(world: World) -> None:
    delivered = await world.deliver("support", "1", text="first")
    for n in range(2, 6):
        await world.deliver("support", str(n), text=f"message {n}")
    url = f"/api/v1/conversations/{delivered.conversation_id}/messages"
    async with world.client("ann") as http:
        reply = await http.post(url, json={"body": "We are on it", "kind": "outgoing", "client_id": "c-1"})
        assert reply.status_code == 201, reply.text
        message = reply.json()
        shapes.MessageOut.model_validate(message)
        assert message["status"] == "queued" and message["kind"] == "outgoing" and message["sender"]["name"] == "Ann"
        again = await http.post(url, json={"body": "We are on it", "kind": "outgoing", "client_id": "c-1"})
        assert again.status_code == 200 and again.json()["id"] == message["id"]
        note = await http.post(url, json={"body": "VIP customer", "kind": "note"})
        assert note.status_code == 201 and note.json()["kind"] == "note"
        bad = await http.post(url, json={"body": "x", "kind": "incoming"})
        assert bad.status_code == 422 and "body.kind" in bad.json()["error"]["detail"]
        empty = await http.post(url, json={"body": "  "})
        assert empty.status_code == 422 and "needs text or an attachment" in empty.json()["error"]["detail"]

        newest = (await http.get(url, params={"limit": 3})).json()
        shapes.MessagePage.model_validate(newest)
        assert [item["body"] for item in newest["items"]] == ["message 5", "We are on it", "VIP customer"]
        assert newest["next_before"] == newest["items"][0]["id"]
        older = (await http.get(url, params={"limit": 3, "before": newest["next_before"]})).json()
        assert [item["body"] for item in older["items"]] == ["message 2", "message 3", "message 4"]
        oldest = (await http.get(url, params={"limit": 3, "before": older["next_before"]})).json()
        assert [item["body"] for item in oldest["items"]] == ["first"] and oldest["next_before"] is None
        ids_in_order = [item["id"] for item in oldest["items"] + older["items"] + newest["items"]]
        assert ids_in_order == sorted(ids_in_order)
        with statements(world) as small:
            assert len((await http.get(url, params={"limit": 1})).json()["items"]) == 1
        with statements(world) as large:
            assert len((await http.get(url, params={"limit": 100})).json()["items"]) == 7
        assert len(small) == len(large), large
    async with world.client("bob") as http:
        assert (await http.get(url)).status_code == 404
        refused = await http.post(url, json={"body": "hi", "client_id": "c-2"})
        assert refused.status_code == 404


async def test_retry_requeues_a_failed_reply_and_refuses_anything_else(world: World) -> None:
    delivered = await world.deliver("support", "1")
    url = f"/api/v1/conversations/{delivered.conversation_id}/messages"
    async with world.client("ann") as http:
        reply = (await http.post(url, json={"body": "answer", "client_id": "r-1"})).json()
        # The inbox has no webhook URL: the outbox fails the reply for real. Wait until it has.
        deadline = time.monotonic() + 15
        status = "queued"
        while status != "failed":
            assert time.monotonic() < deadline, "the reply never failed"
            await asyncio.sleep(0.05)
            status = next(m for m in (await http.get(url)).json()["items"] if m["id"] == reply["id"])["status"]
        await world.service.mark_failed(reply["id"], "webhook answered 500")
        retried = await http.post(f"/api/v1/messages/{reply['id']}/retry")
        assert retried.status_code == 200, retried.text
        shapes.MessageOut.model_validate(retried.json())
        assert retried.json()["status"] == "queued" and retried.json()["error"] is None

        note = (await http.post(url, json={"body": "internal", "kind": "note"})).json()
        conflict = await http.post(f"/api/v1/messages/{note['id']}/retry")
        assert (
            conflict.status_code == 409
            and f"message {note['id']} is not a failed" in conflict.json()["error"]["detail"]
        )
        assert (await http.post("/api/v1/messages/999999/retry")).status_code == 404
    async with world.client("bob") as http:
        assert (await http.post(f"/api/v1/messages/{reply['id']}/retry")).status_code == 404


async def test_pages_split_ties_on_last_activity_by_id(world: World) -> None:
    delivered = [await world.deliver("support", f"t{n}", sender=f"t{n}") for n in range(12)]
    same = utcnow().replace(microsecond=123456)
    async with world.store.transaction() as tx:  # test setup: force identical activity times
        for item in delivered:
            row = await tx.get(Conversation, item.conversation_id)
            assert row is not None
            row.last_activity_at = same
    async with world.client("ann") as http, world.client("bob") as bob:
        seen: list[int] = []
        params: dict[str, Any] = {"limit": 5}
        while True:
            page = (await http.get("/api/v1/conversations", params=params)).json()
            seen += ids(page)
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        assert seen == sorted((item.conversation_id for item in delivered), reverse=True)
        # Bob's cursor from Ann's list still only shows Bob's inboxes.
        assert ids((await bob.get("/api/v1/conversations", params=params)).json()) == []


async def test_an_agent_in_no_inbox_sees_nothing(world: World) -> None:
    delivered = await world.deliver("support", "1")
    loner = await make_agent(world.store, email="lone@example.test", name="Lone")
    world.tokens["lone"] = await make_token(world.store, loner)
    async with world.client("lone") as http:
        assert (await http.get("/api/v1/conversations")).json() == {"items": [], "next_cursor": None}
        assert (await http.get(f"/api/v1/conversations/{delivered.conversation_id}")).status_code == 404
        assert (await http.get("/api/v1/contacts")).json() == {"items": [], "next_cursor": None}
        assert (await http.get(f"/api/v1/contacts/{delivered.contact_id}")).status_code == 404


async def test_an_agent_in_several_inboxes_pages_through_all_of_them_in_order(world: World) -> None:
    # The list for several inboxes is read inbox by inbox and merged (inbox.read.queries._page_ids): pages must
    # still cover every visible conversation once, newest first, and nothing from an inbox not visible.
    hidden = await make_inbox(world.store, name="Hidden")
    assert hidden.id is not None
    both = await make_agent(world.store, email="both@example.test", name="Both")
    for inbox_id in (world.support_id, world.sales_id):
        async with world.store.transaction() as tx:
            tx.add(InboxMember(inbox_id=inbox_id, agent_id=both.id))
    world.tokens["both"] = await make_token(world.store, both)
    names = {world.support_id: "support", world.sales_id: "sales"}
    visible = []
    for n in range(17):
        inbox_id = [world.support_id, world.sales_id, world.support_id][n % 3]
        visible.append(await world.deliver(names[inbox_id], f"v{n}", sender=f"v{n}", text=f"ticket {n}"))
        await world.service.deliver(inbound(hidden, f"h{n}", sender=f"h{n}"))
    resolved = visible[4].conversation_id
    await world.service.update_conversation(resolved, ConversationChanges(status="resolved"), by=None)
    expected = [item.conversation_id for item in reversed(visible)]
    async with world.client("both") as http:
        for params, wanted in (
            ({}, expected),
            ({"status": "open"}, [cid for cid in expected if cid != resolved]),
            ({"q": "ticket 1"}, [visible[n].conversation_id for n in reversed(range(17)) if str(n).startswith("1")]),
        ):
            seen: list[int] = []
            query: dict[str, Any] = {"limit": 4, **params}
            while True:
                page = (await http.get("/api/v1/conversations", params=query)).json()
                seen += ids(page)
                if page["next_cursor"] is None:
                    break
                query["cursor"] = page["next_cursor"]
            activity = {item.conversation_id: n for n, item in enumerate(visible)}
            assert sorted(seen, key=lambda cid: -activity[cid]) == seen, params
            assert seen == wanted, params
        with statements(world) as small:
            await http.get("/api/v1/conversations?limit=2")
        with statements(world) as large:
            await http.get("/api/v1/conversations?limit=15")
        assert len(small) == len(large), (small, large)
