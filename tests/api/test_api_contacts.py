"""The contacts API over real HTTP, on both databases: list and search with keyset pages, get with
identities and conversations, patch, merge, and who may see or change which contact."""

from __future__ import annotations

from typing import Any

from inbox.api import shapes
from tests.api_world import World, ids, row_counts, statements


async def test_list_pages_search_and_visibility(world: World) -> None:
    support = [await world.deliver("support", f"m{n}", sender=f"s{n}") for n in range(7)]
    sales = await world.deliver("sales", "x", sender="sales-only")
    async with world.client("ann") as http:
        seen: list[int] = []
        params: dict[str, Any] = {"limit": 3}
        while True:
            page = (await http.get("/api/v1/contacts", params=params)).json()
            shapes.ContactPage.model_validate(page)
            seen += ids(page)
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        assert seen == sorted((item.contact_id for item in support), reverse=True)
        assert sales.contact_id not in seen
        found = (await http.get("/api/v1/contacts", params={"q": f"{world.support_id}:s3"})).json()
        assert ids(found) == [support[3].contact_id]  # matched through the identity value
        assert found["items"][0]["identities"][0]["value"] == f"{world.support_id}:s3"
        bad = await http.get("/api/v1/contacts", params={"cursor": "!!not-a-cursor!!"})
        assert bad.status_code == 422 and "cursor" in bad.json()["error"]["detail"]
        assert (await http.get(f"/api/v1/contacts/{sales.contact_id}")).status_code == 404
    async with world.client("admin") as http:
        everyone = ids((await http.get("/api/v1/contacts?limit=100")).json())
        assert sales.contact_id in everyone and len(everyone) == 8
    async with world.client("ann") as http:
        with statements(world) as small:
            assert len((await http.get("/api/v1/contacts?limit=2&q=carol")).json()["items"]) == 2
        with statements(world) as large:
            assert len((await http.get("/api/v1/contacts?limit=50&q=carol")).json()["items"]) == 7
        selects = [s for s in large if s.lstrip().upper().startswith("SELECT")]
        assert len(small) == len(large) and len(selects) == 4, large  # token, memberships, page, identities


async def test_get_lists_conversations_on_every_visible_channel(world: World) -> None:
    first = await world.deliver("support", "1", sender="a")
    second = await world.deliver("sales", "2", sender="b")
    async with world.client("admin") as http:
        merged = await http.post(f"/api/v1/contacts/{second.contact_id}/merge", json={"into_id": first.contact_id})
        assert merged.status_code == 200, merged.text
        shapes.ContactOut.model_validate(merged.json())
        assert len(merged.json()["identities"]) == 2
        detail = (await http.get(f"/api/v1/contacts/{first.contact_id}")).json()
        shapes.ContactDetail.model_validate(detail)
        assert sorted(c["id"] for c in detail["conversations"]) == sorted(
            [first.conversation_id, second.conversation_id]
        )
        gone = (await http.get(f"/api/v1/contacts/{second.contact_id}")).json()
        assert gone["merged_into_id"] == first.contact_id
        again = await http.post(f"/api/v1/contacts/{second.contact_id}/merge", json={"into_id": first.contact_id})
        assert again.status_code == 409
    async with world.client("ann") as http:
        detail = (await http.get(f"/api/v1/contacts/{first.contact_id}")).json()
        assert [c["id"] for c in detail["conversations"]] == [first.conversation_id]  # not the sales one
        assert len(detail["identities"]) == 2


async def test_patch_validates_and_only_visible_contacts_change(world: World) -> None:
    mine = await world.deliver("support", "1", sender="a")
    theirs = await world.deliver("sales", "2", sender="b")
    url = f"/api/v1/contacts/{mine.contact_id}"
    async with world.client("ann") as http:
        patched = await http.patch(
            url,
            json={
                "name": " Carol Q. ",
                "email": "Carol@Example.TEST",
                "phone": "+1 555 0100",
                "attributes": {"plan": "pro"},
            },
        )
        assert patched.status_code == 200, patched.text
        body = patched.json()
        shapes.ContactOut.model_validate(body)
        assert (body["name"], body["email"], body["phone"], body["attributes"]) == (
            "Carol Q.",
            "carol@example.test",
            "+1 555 0100",
            {"plan": "pro"},
        )
        cleared = (await http.patch(url, json={"phone": None})).json()
        assert cleared["phone"] is None and cleared["email"] == "carol@example.test"
        before = await row_counts(world.store)
        for bad, where in [
            ({"email": "not-an-email"}, "body.email"),
            ({"phone": "call me"}, "body.phone"),
            ({"attributes": None}, "use {}"),
            ({"attributes": ["a"]}, "body.attributes"),
            ({"name": 5}, "body.name"),
            ({"nickname": "C"}, "body.nickname"),
            ({}, "give at least one of"),
        ]:
            response = await http.patch(url, json=bad)
            assert response.status_code == 422, (bad, response.text)
            assert where in response.json()["error"]["detail"], (bad, response.text)
        assert (await http.patch(f"/api/v1/contacts/{theirs.contact_id}", json={"name": "X"})).status_code == 404
        into_hidden = await http.post(f"{url}/merge", json={"into_id": theirs.contact_id})
        assert into_hidden.status_code == 422 and "into_id: contact" in into_hidden.json()["error"]["detail"]
        itself = await http.post(f"{url}/merge", json={"into_id": mine.contact_id})
        assert itself.status_code == 422 and "merged into itself" in itself.json()["error"]["detail"]
        assert (await http.post(f"{url}/merge", json={"into_id": "2"})).status_code == 422
        assert await row_counts(world.store) == before
