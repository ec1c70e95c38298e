"""Admin CRUD over real HTTP on both databases: inboxes, agents, /me, tokens, teams, labels, canned
responses — including refusals (non-admin 403, bad bodies 4xx) that write nothing."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from inbox.service import ConversationChanges
from inbox.store.models import (
    Agent,
    ApiToken,
    CannedResponse,
    ConversationLabel,
    Event,
    Inbox,
    InboxMember,
    Label,
    Team,
)
from tests.people import People
from tests.servers.app import LiveServer


async def count(server: LiveServer, model: type) -> int:
    async with server.state.store.session() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


def error(response: httpx.Response) -> str:
    detail: str = response.json()["error"]["detail"]
    return detail


async def test_inboxes_admin_sees_secret_agent_sees_only_own(server: LiveServer, people: People) -> None:
    created = await people.admin.post(
        "/api/v1/inboxes", json={"name": "Website", "channel": "webchat", "settings": {"greeting": "Hi"}}
    )
    assert created.status_code == 201, created.text
    inbox = created.json()
    assert inbox["public_key"].startswith("pk_") and len(inbox["secret"]) >= 32
    assert inbox["agent_ids"] == [] and inbox["settings"] == {"greeting": "Hi"}
    other = (await people.admin.post("/api/v1/inboxes", json={"name": "Other", "channel": "api"})).json()

    assert (await people.agent.get("/api/v1/inboxes")).json() == {"items": []}
    assert (await people.agent.get(f"/api/v1/inboxes/{inbox['id']}")).status_code == 404

    added = await people.admin.post(f"/api/v1/inboxes/{inbox['id']}/members", json={"agent_id": people.agent_id})
    assert added.status_code == 200 and added.json()["agent_ids"] == [people.agent_id]
    mine = (await people.agent.get("/api/v1/inboxes")).json()["items"]
    assert [item["id"] for item in mine] == [inbox["id"]]
    assert "secret" not in mine[0] and "settings" not in mine[0]
    assert (await people.agent.get(f"/api/v1/inboxes/{other['id']}")).status_code == 404

    renamed = await people.admin.patch(f"/api/v1/inboxes/{inbox['id']}", json={"name": "Chat", "rotate_secret": True})
    assert renamed.json()["name"] == "Chat" and renamed.json()["secret"] != inbox["secret"]
    everything = (await people.admin.get("/api/v1/inboxes")).json()["items"]
    assert {item["name"] for item in everything} == {"Chat", "Other"}

    removed = await people.admin.delete(f"/api/v1/inboxes/{inbox['id']}/members/{people.agent_id}")
    assert removed.json()["agent_ids"] == []
    again = await people.admin.delete(f"/api/v1/inboxes/{inbox['id']}/members/{people.agent_id}")
    assert again.status_code == 404
    assert (await people.admin.delete(f"/api/v1/inboxes/{other['id']}")).status_code == 204
    assert (await people.admin.get(f"/api/v1/inboxes/{other['id']}")).status_code == 404


async def test_inbox_with_conversations_cannot_be_deleted(server: LiveServer, people: People) -> None:
    inbox = (await people.admin.post("/api/v1/inboxes", json={"name": "API", "channel": "api"})).json()
    incoming = await people.admin.post(
        f"/api/v1/inboxes/{inbox['id']}/incoming",
        headers={"Authorization": f"Bearer {inbox['secret']}"},
        json={"external_id": "e1", "sender": {"id": "c1", "name": "Cy"}, "body": "hello"},
    )
    assert incoming.status_code == 201, incoming.text
    refused = await people.admin.delete(f"/api/v1/inboxes/{inbox['id']}")
    assert refused.status_code == 409 and "has conversations" in error(refused)
    assert await count(server, Inbox) == 1


async def test_deleting_a_label_updates_its_conversations(server: LiveServer, people: People) -> None:
    inbox = (await people.admin.post("/api/v1/inboxes", json={"name": "API", "channel": "api"})).json()
    incoming = await people.admin.post(
        f"/api/v1/inboxes/{inbox['id']}/incoming",
        headers={"Authorization": f"Bearer {inbox['secret']}"},
        json={"external_id": "e1", "sender": {"id": "c1", "name": "Cy"}, "body": "hello"},
    )
    conversation_id = incoming.json()["conversation_id"]
    label = (await people.admin.post("/api/v1/labels", json={"name": "vip"})).json()
    await server.state.service.update_conversation(conversation_id, ConversationChanges(labels=["vip"]), by=None)
    assert (await people.admin.delete(f"/api/v1/labels/{label['id']}")).status_code == 204
    async with server.state.store.session() as session:
        last = (await session.execute(select(Event).order_by(Event.id.desc()).limit(1))).scalar_one()  # type: ignore[union-attr]
    assert last.type == "conversation.updated" and last.conversation_id == conversation_id
    assert last.payload["labels"] == [] and last.payload["changes"] == ["labels"]
    assert await count(server, ConversationLabel) == 0


async def test_non_admin_writes_are_refused_and_nothing_is_written(server: LiveServer, people: People) -> None:
    inbox = (
        await people.admin.post(
            "/api/v1/inboxes",
            json={"name": "Support", "channel": "email", "settings": {"address": "support@example.test"}},
        )
    ).json()
    before = {model: await count(server, model) for model in (Inbox, InboxMember, Agent, Team, Label, CannedResponse)}
    attempts = [
        ("POST", "/api/v1/inboxes", {"name": "Mine", "channel": "api"}),
        ("PATCH", f"/api/v1/inboxes/{inbox['id']}", {"name": "Hijacked"}),
        ("DELETE", f"/api/v1/inboxes/{inbox['id']}", None),
        ("POST", f"/api/v1/inboxes/{inbox['id']}/members", {"agent_id": people.agent_id}),
        ("POST", "/api/v1/agents", {"email": "eve@example.test", "name": "Eve", "password": "x" * 12}),
        ("PATCH", f"/api/v1/agents/{people.agent_id}", {"role": "admin"}),
        ("POST", "/api/v1/teams", {"name": "Mine"}),
        ("POST", "/api/v1/labels", {"name": "mine"}),
        ("POST", "/api/v1/canned_responses", {"short_code": "x", "content": "y"}),
    ]
    for method, path, body in attempts:
        response = await people.agent.request(method, path, json=body)
        assert response.status_code == 403, (method, path, response.text)
        assert error(response) == "this action needs the admin role"
    after = {model: await count(server, model) for model in before}
    assert after == before
    me = (await people.agent.get("/api/v1/me")).json()
    assert me["role"] == "agent"
    assert (await people.admin.get(f"/api/v1/inboxes/{inbox['id']}")).json()["name"] == "Support"


BAD_BODIES = [
    ("POST", "/api/v1/inboxes", {"name": "X", "channel": "sms"}, 422, "body.channel: Input should be"),
    ("POST", "/api/v1/inboxes", {"name": "X", "channel": "api", "extra": 1}, 422, "body.extra: Extra inputs"),
    ("POST", "/api/v1/inboxes", {"name": "X", "channel": "api", "settings": [1]}, 422, "body.settings"),
    ("POST", "/api/v1/inboxes", {"name": "  ", "channel": "api"}, 422, "body.name"),
    ("POST", "/api/v1/inboxes", {"channel": "api"}, 422, "body.name: Field required"),
    ("POST", "/api/v1/agents", {"email": "x@y.z", "name": "X", "password": "short"}, 422, "password: must be at"),
    ("POST", "/api/v1/agents", {"email": "nope", "name": "X", "password": "x" * 12}, 422, "email: must be an"),
    ("POST", "/api/v1/agents", {"email": "x@y.z", "name": "X", "role": "root", "password": "x" * 12}, 422, "role"),
    ("POST", "/api/v1/labels", {"name": "a", "color": "red"}, 422, "body.color"),
    ("POST", "/api/v1/teams", {"name": 5}, 422, "body.name: Input should be a valid string"),
    ("PATCH", "/api/v1/me", {}, 422, "body: nothing to change"),
    ("PATCH", "/api/v1/me", {"name": None}, 422, "body.name: must not be null"),
    ("PATCH", "/api/v1/me", {"availability": "away"}, 422, "body.availability"),
    ("POST", "/api/v1/tokens", {"name": "x", "agent_id": 1}, 422, "body.agent_id: Extra inputs"),
]


async def test_bad_bodies_get_a_clear_4xx_and_write_nothing(server: LiveServer, people: People) -> None:
    """One server for the whole table (a server per case would cost seconds for nothing)."""
    before = {model: await count(server, model) for model in (Inbox, Agent, Team, Label, ApiToken)}
    for method, path, body, status, message in BAD_BODIES:
        response = await people.admin.request(method, path, json=body)
        assert response.status_code == status, (method, path, body, response.text)
        assert message in error(response), (method, path, body, response.text)
    assert {model: await count(server, model) for model in before} == before


async def test_malformed_json_and_wrong_method(server: LiveServer, people: People) -> None:
    broken = await people.admin.post(
        "/api/v1/inboxes", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "malformed_json"
    assert (await people.admin.put("/api/v1/inboxes", json={})).status_code == 405
    assert await count(server, Inbox) == 0


async def test_agents_create_list_deactivate(server: LiveServer, people: People) -> None:
    created = await people.admin.post(
        "/api/v1/agents", json={"email": " Cleo@Example.TEST ", "name": "Cleo", "password": "cleo-password"}
    )
    assert created.status_code == 201 and created.json()["email"] == "cleo@example.test"
    cleo = created.json()
    duplicate = await people.admin.post(
        "/api/v1/agents", json={"email": "cleo@example.test", "name": "Cleo 2", "password": "cleo-password"}
    )
    assert duplicate.status_code == 409 and "already exists" in error(duplicate)

    seen_by_agent = (await people.agent.get("/api/v1/agents")).json()["items"]
    by_id = {item["id"]: item for item in seen_by_agent}
    assert "email" not in by_id[cleo["id"]] and by_id[people.agent_id]["email"] == "bob@example.test"
    assert (await people.agent.get(f"/api/v1/agents/{cleo['id']}")).status_code == 404
    assert "email" in (await people.admin.get(f"/api/v1/agents/{cleo['id']}")).json()

    off = await people.admin.patch(f"/api/v1/agents/{cleo['id']}", json={"active": False})
    assert off.status_code == 200 and off.json()["active"] is False
    assert cleo["id"] not in {item["id"] for item in (await people.agent.get("/api/v1/agents")).json()["items"]}
    assert cleo["id"] in {item["id"] for item in (await people.admin.get("/api/v1/agents")).json()["items"]}
    async with server.state.store.session() as session:
        row = await session.get(Agent, cleo["id"])
        assert row is not None and row.session_version == 1


async def test_deactivated_agent_token_stops_working(server: LiveServer, people: People) -> None:
    assert (await people.agent.get("/api/v1/me")).status_code == 200
    await people.admin.patch(f"/api/v1/agents/{people.agent_id}", json={"active": False})
    refused = await people.agent.get("/api/v1/me")
    assert refused.status_code == 401


async def test_last_admin_cannot_be_demoted_or_deactivated(server: LiveServer, people: People) -> None:
    for change in ({"role": "agent"}, {"active": False}):
        refused = await people.admin.patch(f"/api/v1/agents/{people.admin_id}", json=change)
        assert refused.status_code == 409 and "last active admin" in error(refused)
    promoted = await people.admin.patch(f"/api/v1/agents/{people.agent_id}", json={"role": "admin"})
    assert promoted.json()["role"] == "admin"
    assert (await people.admin.patch(f"/api/v1/agents/{people.admin_id}", json={"role": "agent"})).status_code == 200


async def test_me_availability_and_password_change(server: LiveServer, people: People) -> None:
    me = await people.agent.patch("/api/v1/me", json={"availability": "busy", "name": "Bobby"})
    assert me.status_code == 200 and me.json()["availability"] == "busy" and me.json()["name"] == "Bobby"
    missing = await people.agent.patch("/api/v1/me", json={"password": "new-password-1"})
    assert missing.status_code == 422 and "current_password" in error(missing)
    wrong = await people.agent.patch("/api/v1/me", json={"password": "new-password-1", "current_password": "nope"})
    assert wrong.status_code == 422 and "does not match" in error(wrong)
    authenticator = server.state.authenticator
    assert await authenticator.login("bob@example.test", "new-password-1") is None
    ok = await people.agent.patch(
        "/api/v1/me", json={"password": "new-password-1", "current_password": "agent-password-1"}
    )
    assert ok.status_code == 200
    assert await authenticator.login("bob@example.test", "new-password-1") is not None
    assert await authenticator.login("bob@example.test", "agent-password-1") is None


async def test_tokens_shown_once_listed_without_secret_revocable(server: LiveServer, people: People) -> None:
    created = await people.agent.post("/api/v1/tokens", json={"name": "zapier"})
    assert created.status_code == 201
    token = created.json()["token"]
    listed = (await people.agent.get("/api/v1/tokens")).json()["items"]
    assert {item["name"] for item in listed} == {"tests", "zapier"}
    assert all("token" not in item and "token_hash" not in item for item in listed)
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as fresh:
        assert (await fresh.get("/api/v1/me")).json()["id"] == people.agent_id
        admin_tokens = (await people.admin.get("/api/v1/tokens")).json()["items"]
        assert (await people.agent.delete(f"/api/v1/tokens/{admin_tokens[0]['id']}")).status_code == 404
        assert (await people.agent.delete(f"/api/v1/tokens/{created.json()['id']}")).status_code == 204
        assert (await fresh.get("/api/v1/me")).status_code == 401
    assert (await people.admin.get("/api/v1/me")).status_code == 200


async def test_teams_labels_canned_crud(server: LiveServer, people: People) -> None:
    team = (await people.admin.post("/api/v1/teams", json={"name": "Tier 1"})).json()
    assert (await people.admin.post("/api/v1/teams", json={"name": "Tier 1"})).status_code == 409
    joined = await people.admin.post(f"/api/v1/teams/{team['id']}/members", json={"agent_id": people.agent_id})
    assert joined.json()["agent_ids"] == [people.agent_id]
    assert (await people.admin.post(f"/api/v1/teams/{team['id']}/members", json={"agent_id": 999})).status_code == 422
    assert (await people.agent.get("/api/v1/teams")).json()["items"][0]["agent_ids"] == [people.agent_id]
    assert (await people.agent.get("/api/v1/me")).json()["team_ids"] == [team["id"]]
    renamed = await people.admin.patch(f"/api/v1/teams/{team['id']}", json={"description": "First line"})
    assert renamed.json()["description"] == "First line"
    assert (await people.admin.delete(f"/api/v1/teams/{team['id']}/members/{people.agent_id}")).status_code == 200
    assert (await people.admin.delete(f"/api/v1/teams/{team['id']}")).status_code == 204
    assert (await people.admin.get(f"/api/v1/teams/{team['id']}")).status_code == 404

    label = (await people.admin.post("/api/v1/labels", json={"name": "vip", "color": "#059669"})).json()
    assert (await people.admin.post("/api/v1/labels", json={"name": "vip"})).status_code == 409
    assert (await people.admin.patch(f"/api/v1/labels/{label['id']}", json={"name": "VIP"})).json()["name"] == "VIP"
    assert [item["name"] for item in (await people.agent.get("/api/v1/labels")).json()["items"]] == ["VIP"]
    assert (await people.admin.delete(f"/api/v1/labels/{label['id']}")).status_code == 204
    assert (await people.admin.delete(f"/api/v1/labels/{label['id']}")).status_code == 404

    for code, text in [("refund", "We refund within 30 days."), ("hello", "Hi there!")]:
        created = await people.admin.post("/api/v1/canned_responses", json={"short_code": code, "content": text})
        assert created.status_code == 201
    listed = (await people.agent.get("/api/v1/canned_responses", params={"q": "REFUND"})).json()["items"]
    assert [item["short_code"] for item in listed] == ["refund"]
    assert (await people.agent.get("/api/v1/canned_responses", params={"nope": "1"})).status_code == 422
    first = listed[0]["id"]
    assert (
        await people.admin.patch(f"/api/v1/canned_responses/{first}", json={"content": "Refunds: 30 days."})
    ).json()["content"] == "Refunds: 30 days."
    assert (await people.admin.delete(f"/api/v1/canned_responses/{first}")).status_code == 204
    assert len((await people.agent.get("/api/v1/canned_responses")).json()["items"]) == 1


async def test_openapi_describes_every_admin_route(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        paths = (await http.get("/api/v1/openapi.json")).json()["paths"]
    for path, method in [
        ("/api/v1/inboxes", "post"),
        ("/api/v1/inboxes/{inbox_id}", "patch"),
        ("/api/v1/inboxes/{inbox_id}/members/{agent_id}", "delete"),
        ("/api/v1/agents/{agent_id}", "patch"),
        ("/api/v1/me", "patch"),
        ("/api/v1/tokens/{token_id}", "delete"),
        ("/api/v1/teams/{team_id}/members", "post"),
        ("/api/v1/labels/{label_id}", "delete"),
        ("/api/v1/canned_responses", "get"),
    ]:
        assert method in paths[path], (path, method)
