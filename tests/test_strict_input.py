"""Strict input over real HTTP (issue 17): ids beyond what a row can have are a 404 (path) or a 422 (query,
body), never a 500; repeated or empty query parameters are a 422 naming the parameter; the OpenAPI document
resolves everywhere; an inbox's channel settings are checked by its channel on create and on update (422
naming the key, nothing stored), and stored settings that no longer pass show on the channel-health JSON
instead of a receiver restarting forever."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from inbox.config import ChannelsConfig
from inbox.store.models import Inbox, key
from tests.factories import make_inbox
from tests.people import People, make_people
from tests.servers.app import LiveServer, live_server, make_config

HUGE = [2**31, 2**63 - 1, 2**63, 99999999999999999999]


@pytest.fixture
async def people(server: LiveServer) -> AsyncIterator[People]:
    found = await make_people(server)
    yield found
    await found.admin.aclose()
    await found.agent.aclose()


async def inbox_count(server: LiveServer) -> int:
    async with server.state.store.session() as session:
        return int((await session.execute(select(func.count()).select_from(Inbox))).scalar_one())


# ── ids ─────────────────────────────────────────────────────────────────────────────────────
@pytest.mark.parametrize("huge", HUGE)
async def test_huge_path_ids_are_404_with_or_without_a_login(server: LiveServer, people: People, huge: int) -> None:
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        assert (await anonymous.post(f"/channels/telegram/{huge}", json={"update_id": 1})).status_code == 404
        assert (await anonymous.get(f"/help/articles/{huge}")).status_code == 404
        assert (await anonymous.post(f"/api/v1/inboxes/{huge}/incoming", json={})).status_code == 404
    for method, path in [
        ("GET", "/api/v1/agents/{}"),
        ("PATCH", "/api/v1/agents/{}"),
        ("GET", "/api/v1/inboxes/{}"),
        ("DELETE", "/api/v1/inboxes/{}"),
        ("GET", "/api/v1/conversations/{}"),
        ("GET", "/api/v1/conversations/{}/messages"),
        ("GET", "/api/v1/contacts/{}"),
        ("GET", "/api/v1/teams/{}"),
        ("DELETE", "/api/v1/labels/{}"),
        ("GET", "/api/v1/articles/{}"),
        ("DELETE", "/api/v1/tokens/{}"),
        ("GET", "/api/v1/quarantine/{}/raw"),
    ]:
        response = await people.admin.request(method, path.format(huge), json={"name": "x"})
        assert response.status_code == 404, (method, path, response.status_code, response.text)


@pytest.mark.parametrize("huge", [2**31, 2**63])
async def test_huge_ids_in_a_query_or_a_body_are_422_naming_the_field(
    server: LiveServer, people: People, huge: int
) -> None:
    inbox = (await people.admin.post("/api/v1/inboxes", json={"name": "API", "channel": "api"})).json()
    cases: list[tuple[str, str, Any, str]] = [
        ("GET", f"/api/v1/conversations?inbox_id={huge}", None, "query.inbox_id"),
        ("GET", f"/api/v1/conversations?team_id={huge}", None, "query.team_id"),
        ("GET", f"/api/v1/quarantine?inbox_id={huge}", None, "query.inbox_id"),
        ("GET", f"/api/v1/reports/summary?inbox_id={huge}", None, "query.inbox_id"),
        ("GET", f"/api/v1/articles?inbox_id={huge}", None, "query.inbox_id"),
        ("POST", f"/api/v1/inboxes/{inbox['id']}/members", {"agent_id": huge}, "body.agent_id"),
        ("POST", "/api/v1/articles", {"title": "T", "body": "B", "inbox_id": huge}, "body.inbox_id"),
    ]
    for method, path, body, field in cases:
        response = await people.admin.request(method, path, json=body)
        assert response.status_code == 422, (path, response.status_code, response.text)
        assert response.json()["error"]["detail"].startswith(field), (path, response.text)


async def test_a_whole_number_written_with_a_fraction_is_that_number(server: LiveServer, people: People) -> None:
    """JSON has one number type: `{"agent_id": 2.0}` is agent 2 (schemathesis sends such values as integers)."""
    inbox = (await people.admin.post("/api/v1/inboxes", json={"name": "API", "channel": "api"})).json()
    added = await people.admin.post(f"/api/v1/inboxes/{inbox['id']}/members", json={"agent_id": float(people.agent_id)})
    assert added.status_code == 200 and people.agent_id in added.json()["agent_ids"], added.text
    half = await people.admin.post(f"/api/v1/inboxes/{inbox['id']}/members", json={"agent_id": 1.5})
    assert half.status_code == 422 and half.json()["error"]["detail"].startswith("body.agent_id"), half.text


# ── query parameters ────────────────────────────────────────────────────────────────────────
@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("/api/v1/conversations?team_id=abc&team_id=", "team_id"),
        ("/api/v1/conversations?team_id=1&team_id=2", "team_id"),
        ("/api/v1/conversations?status=open&status=open", "status"),
        ("/api/v1/conversations?inbox_id=", "inbox_id"),
        ("/api/v1/conversations?q=", "q"),
        ("/api/v1/quarantine?inbox_id=", "inbox_id"),
        ("/api/v1/quarantine?inbox_id=1&inbox_id=1", "inbox_id"),
        ("/api/v1/contacts?q=a&q=b", "q"),
        ("/api/v1/reports/summary?from=", "from"),
        ("/api/v1/articles?limit=5&limit=6", "limit"),
    ],
)
async def test_repeated_or_empty_query_parameters_are_422_naming_the_parameter(
    server: LiveServer, people: People, query: str, name: str
) -> None:
    before = await people.admin.get(query.split("?")[0])
    assert before.status_code == 200, before.text
    response = await people.admin.get(query)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["detail"].startswith(f"query.{name}:"), response.text


# ── the document ────────────────────────────────────────────────────────────────────────────
async def test_every_reference_in_the_openapi_document_resolves(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        document = (await http.get("/api/v1/openapi.json")).json()
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    assert "#/components/schemas/Status" in refs  # the one that did not resolve (`#/$defs/Status`)
    for ref in set(refs):
        assert ref.startswith("#/"), ref
        target: Any = document
        for part in ref[2:].split("/"):
            assert isinstance(target, dict) and part in target, f"{ref} does not resolve"
            target = target[part]


# ── channel settings ────────────────────────────────────────────────────────────────────────
BAD_SETTINGS = [
    ("telegram", {}, "settings.bot_token"),
    ("telegram", {"bot_token": "123:abc", "groups": "yes"}, "settings.groups"),
    ("telegram", {"bot_token": "123:abc", "webhook": True}, "settings.webhook"),
    ("api", {"is_admin": True}, "settings.is_admin"),
    ("api", {"webhook_url": 5}, "settings.webhook_url"),
    ("email", {}, "settings.address"),
    ("email", {"address": "help@example.test", "imap_port": "993"}, "settings.imap_port"),
    ("email", {"address": "help@example.test", "imap_server": "x"}, "settings.imap_server"),
    ("webchat", {"colour": "#ffffff"}, "settings.colour"),
    ("webchat", {"prechat": "always"}, "settings.prechat"),
    ("webchat", {"require_identity_verification": "true"}, "settings.require_identity_verification"),
]


@pytest.mark.parametrize(("channel", "settings", "key_name"), BAD_SETTINGS)
async def test_bad_channel_settings_are_refused_on_create_and_nothing_is_stored(
    server: LiveServer, people: People, channel: str, settings: dict[str, Any], key_name: str
) -> None:
    before = await inbox_count(server)
    response = await people.admin.post("/api/v1/inboxes", json={"name": "X", "channel": channel, "settings": settings})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["detail"].startswith(key_name + ":"), response.text
    assert await inbox_count(server) == before


GOOD_SETTINGS = {
    "telegram": {"bot_token": "env:SOME_BOT_TOKEN", "mode": "webhook", "csat_enabled": True},
    "api": {"webhook_url": "https://example.test/hook", "sla_first_response_minutes": 30},
    "email": {"address": "help@example.test", "imap_password": "env:UNSET_VARIABLE", "imap_port": 993},
    "webchat": {"color": "#112233", "prechat": "required", "allowed_origins": ["https://shop.example.test"]},
}


@pytest.mark.parametrize("channel", sorted(GOOD_SETTINGS))
async def test_good_settings_are_stored_and_a_bad_update_changes_nothing(
    server: LiveServer, people: People, channel: str
) -> None:
    good = GOOD_SETTINGS[channel]
    created = await people.admin.post("/api/v1/inboxes", json={"name": "X", "channel": channel, "settings": good})
    assert created.status_code == 201, created.text
    inbox_id = created.json()["id"]
    refused = await people.admin.patch(f"/api/v1/inboxes/{inbox_id}", json={"settings": {**good, "is_admin": True}})
    assert refused.status_code == 422 and "settings.is_admin" in refused.json()["error"]["detail"], refused.text
    stored = (await people.admin.get(f"/api/v1/inboxes/{inbox_id}")).json()
    assert stored["settings"] == good


@pytest.fixture
async def fast_runners(tmp_path: Path) -> AsyncIterator[LiveServer]:
    config = make_config(f"sqlite+aiosqlite:///{tmp_path / 'switchboard.db'}", tmp_path)
    config = dataclasses.replace(config, channels=ChannelsConfig(refresh_seconds=0.1, restart_backoff_max_seconds=0.2))
    async with live_server(config) as running:
        yield running


async def test_stored_settings_that_no_longer_pass_show_as_an_error_not_a_restart_loop(
    fast_runners: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = fast_runners
    people = await make_people(server)
    # Stored before the check existed (written straight to the database): no bot token at all.
    broken = await make_inbox(server.state.store, channel="telegram", name="Old bot")
    await make_inbox(server.state.store, channel="api", name="Fine")
    with caplog.at_level(logging.INFO, logger="inbox.gateway.runners"):
        server.state.runners.wake()
        for _ in range(100):
            rows = (await people.admin.get("/api/v1/channels/status")).json()["items"]
            row = next(item for item in rows if item["inbox_id"] == key(broken))
            if row["state"] == "misconfigured":
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # several refreshes and what would have been several restarts
    assert row["state"] == "misconfigured", row
    assert row["last_error"].startswith("settings.bot_token:"), row
    restarts = [record for record in caplog.records if "restarting" in record.getMessage()]
    assert restarts == [], [record.getMessage() for record in restarts]
    refusals = [record for record in caplog.records if "settings are invalid" in record.getMessage()]
    assert len(refusals) == 1, [record.getMessage() for record in refusals]
    # Fixing the settings (through the API, which checks them) clears the error.
    fixed = await people.admin.patch(
        f"/api/v1/inboxes/{key(broken)}", json={"settings": {"bot_token": "123:abc", "mode": "webhook"}}
    )
    assert fixed.status_code == 200, fixed.text
    for _ in range(100):
        rows = (await people.admin.get("/api/v1/channels/status")).json()["items"]
        row = next(item for item in rows if item["inbox_id"] == key(broken))
        if row["state"] != "misconfigured":
            break
        await asyncio.sleep(0.05)
    assert row["state"] != "misconfigured", row
    await people.admin.aclose()
    await people.agent.aclose()
