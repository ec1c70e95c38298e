"""The audit log: an entry for each audited action, written with the change (none when the change fails),
secrets masked, read by admins with filters and keyset pages, and unchangeable through the API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from inbox.admin.directory import AgentChanges, Directory
from inbox.clock import iso, utcnow
from inbox.errors import Conflict
from inbox.store.models import AuditEntry
from tests.api_world import World, build_world, small_server
from tests.test_pages import login


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with small_server(db_url, tmp_path) as server:
        yield await build_world(server)


async def entries(world: World, **params: Any) -> list[dict[str, Any]]:
    async with world.client("admin") as http:
        response = await http.get("/api/v1/audit", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def count(world: World) -> int:
    async with world.store.session() as session:
        return int((await session.execute(select(func.count()).select_from(AuditEntry))).scalar_one())


async def test_each_audited_action_writes_one_entry_naming_who_and_from_where(world: World) -> None:
    async with world.client("admin") as http:
        created = await http.post(
            "/api/v1/inboxes",
            json={
                "name": "Mail",
                "channel": "phone",
                "settings": {"signing_secret": "s3cr3t-value-of-the-pbx", "default_country_code": "49"},
            },
        )
        assert created.status_code == 201, created.text
        inbox_id = created.json()["id"]
        assert (await http.patch(f"/api/v1/inboxes/{inbox_id}", json={"name": "Mail 2"})).status_code == 200
        assert (
            await http.post(f"/api/v1/inboxes/{inbox_id}/members", json={"agent_id": world.ann_id})
        ).status_code == 200
        agent = await http.post(
            "/api/v1/agents",
            json={"email": "sue@example.test", "name": "Sue", "role": "agent", "password": "a-long-password"},
        )
        assert agent.status_code == 201, agent.text
        sue = agent.json()["id"]
        assert (await http.patch(f"/api/v1/agents/{sue}", json={"role": "supervisor"})).status_code == 200
        token = await http.post("/api/v1/tokens", json={"name": "ci"})
        assert token.status_code == 201
        assert (await http.delete(f"/api/v1/tokens/{token.json()['id']}")).status_code == 204
    first = await world.deliver(sender="c1")
    second = await world.deliver(external_id="m2", sender="c2")
    async with world.client("ann") as http:
        merged = await http.post(f"/api/v1/contacts/{first.contact_id}/merge", json={"into_id": second.contact_id})
        assert merged.status_code == 200, merged.text
    async with world.client("admin") as http:
        assert (await http.get(f"/api/v1/contacts/{second.contact_id}/export")).status_code == 200
        assert (await http.post(f"/api/v1/contacts/{second.contact_id}/erase")).status_code == 200

    log = list(reversed(await entries(world)))
    assert [item["action"] for item in log] == [
        "inbox.created",
        "inbox.updated",
        "inbox.member_added",
        "agent.created",
        "agent.role_changed",
        "token.created",
        "token.revoked",
        "contact.merged",
        "contact.exported",
        "contact.erased",
    ]
    for item in log:
        expected = world.ann_id if item["action"] == "contact.merged" else world.admin_id
        assert item["actor"]["id"] == expected and item["ip"] == "127.0.0.1", item
        assert item["created_at"]
    by_action = {item["action"]: item for item in log}
    assert by_action["inbox.created"]["after"]["settings"]["signing_secret"] == "••••"
    assert by_action["inbox.created"]["after"]["settings"]["default_country_code"] == "49"
    assert by_action["inbox.updated"]["before"] == {"name": "Mail"}
    assert by_action["inbox.updated"]["after"] == {"name": "Mail 2"}
    assert by_action["agent.role_changed"]["before"] == {"role": "agent"}
    assert by_action["agent.role_changed"]["after"] == {"role": "supervisor"}
    assert by_action["agent.role_changed"]["target"] == {"type": "agent", "id": str(sue)}
    assert by_action["contact.merged"]["before"] == {"contact_id": first.contact_id}
    raw = json.dumps(log)
    assert "s3cr3t-value" not in raw and token.json()["token"] not in raw and "a-long-password" not in raw


async def test_sign_ins_are_logged_success_and_failure(world: World) -> None:
    await Directory(world.service).update_agent(world.ann_id, AgentChanges(password="ann-password-1"))
    async with httpx.AsyncClient(base_url=world.server.url) as http:
        assert (await login(http, "ann@example.test", "wrong-password")).status_code == 401
    async with httpx.AsyncClient(base_url=world.server.url) as http:
        assert (await login(http, "ann@example.test", "ann-password-1")).status_code == 303
    failed, succeeded = (await entries(world, action="auth."))[::-1]
    assert failed["action"] == "auth.sign_in_failed" and failed["actor"] == {"id": None, "name": "ann@example.test"}
    assert succeeded["action"] == "auth.signed_in" and succeeded["actor"]["id"] == world.ann_id
    assert failed["ip"] == succeeded["ip"] == "127.0.0.1"
    password_change = (await entries(world, action="agent.updated"))[0]
    assert password_change["after"] == {"password": "••••"} and password_change["actor"]["id"] is None  # system


async def test_a_change_that_fails_leaves_no_entry(world: World) -> None:
    before = await count(world)
    with pytest.raises(Conflict):  # the last admin cannot be demoted: the change and its entry roll back
        await Directory(world.service).update_agent(world.admin_id, AgentChanges(role="agent"))
    async with world.client("admin") as http:
        assert (await http.patch("/api/v1/inboxes/999999", json={"name": "x"})).status_code == 404
    assert await count(world) == before


async def test_filters_and_keyset_pages(world: World) -> None:
    directory = Directory(world.service)
    for n in range(5):
        await directory.create_token(world.ann_id if n % 2 else world.bob_id, f"t{n}")
    async with world.client("admin") as http:
        for name in ("a", "b"):
            assert (await http.post("/api/v1/tokens", json={"name": name})).status_code == 201
        seen: list[int] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2, "action": "token.created"}
            if cursor:
                params["cursor"] = cursor
            page = (await http.get("/api/v1/audit", params=params)).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == 7 and seen == sorted(seen, reverse=True) and len(set(seen)) == 7
        mine = (await http.get("/api/v1/audit", params={"actor": world.admin_id})).json()["items"]
        assert [item["after"]["name"] for item in mine] == ["b", "a"]
        later = iso(utcnow() + timedelta(minutes=1))
        assert (await http.get("/api/v1/audit", params={"from": later})).json()["items"] == []
        assert len((await http.get("/api/v1/audit", params={"to": later, "limit": 200})).json()["items"]) == 7
        assert (await http.get("/api/v1/audit_log", params={"action": "token."})).json()["items"][0]["id"] == seen[0]
        assert (await http.get("/api/v1/audit", params={"from": "yesterday"})).status_code == 422
        assert (await http.get("/api/v1/audit", params={"cursor": "bogus"})).status_code in (400, 422)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "POST"])
async def test_the_log_cannot_be_changed_through_the_api(world: World, method: str) -> None:
    await Directory(world.service).create_token(world.ann_id, "x")
    before = await entries(world)
    async with world.client("admin") as http:
        for path in ("/api/v1/audit", "/api/v1/audit_log"):
            response = await http.request(method, path, json={"id": before[0]["id"], "action": "nothing"})
            assert response.status_code == 405, (path, response.text)
        assert (await http.request(method, f"/api/v1/audit/{before[0]['id']}")).status_code in (404, 405)
    assert await entries(world) == before
