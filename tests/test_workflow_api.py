"""The workflow API over real HTTP on both databases: business-hours calendars (validation naming the field,
in-use refusal), inbox workflow settings, agent capacity, and routing in the running app — a new conversation
auto-assigned with its reason, the queue visible at /api/v1/routing/queue and /metrics."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from inbox.admin.directory import AgentChanges, Directory
from inbox.store.models import Conversation, Message, MessageKind
from tests.factories import inbound, make_inbox
from tests.people import People
from tests.poll import eventually
from tests.servers.app import LiveServer

WEEKDAYS = {day: [{"start": "09:00", "end": "17:00"}] for day in ("mon", "tue", "wed", "thu", "fri")}
CALENDAR = {"timezone": "Europe/Berlin", "hours": WEEKDAYS, "holidays": [{"date": "2026-12-25", "yearly": True}]}


def error(response: httpx.Response) -> str:
    detail: str = response.json()["error"]["detail"]
    return detail


async def test_business_hours_crud(server: LiveServer, people: People) -> None:
    created = await people.admin.post("/api/v1/business_hours", json={"name": "Berlin", "calendar": CALENDAR})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["calendar"]["hours"]["mon"] == [{"start": "09:00", "end": "17:00"}]
    assert body["calendar"]["hours"]["sat"] == [] and body["inbox_ids"] == []
    hours_id = body["id"]
    assert (await people.agent.get(f"/api/v1/business_hours/{hours_id}")).json()["name"] == "Berlin"
    listed = (await people.agent.get("/api/v1/business_hours")).json()["items"]
    assert [item["id"] for item in listed] == [hours_id]
    changed = await people.admin.patch(f"/api/v1/business_hours/{hours_id}", json={"name": "Berlin office"})
    assert changed.status_code == 200 and changed.json()["name"] == "Berlin office"
    again = await people.admin.post("/api/v1/business_hours", json={"name": "Berlin office", "calendar": CALENDAR})
    assert again.status_code == 409 and error(again).startswith("name:")
    assert (
        await people.agent.post("/api/v1/business_hours", json={"name": "X", "calendar": CALENDAR})
    ).status_code == 403
    assert (await people.admin.delete(f"/api/v1/business_hours/{hours_id}")).status_code == 204
    assert (await people.admin.get(f"/api/v1/business_hours/{hours_id}")).status_code == 404


@pytest.mark.parametrize(
    ("calendar", "field"),
    [
        ({"hours": WEEKDAYS}, "body.calendar.timezone:"),
        ({"timezone": "Mars/Olympus"}, "body.calendar.timezone:"),
        (
            {"timezone": "UTC", "hours": {"mon": [{"start": "17:00", "end": "09:00"}]}},
            "body.calendar.hours.mon[0].end:",
        ),
        ({"timezone": "UTC", "hours": {"mon": [{"start": "9", "end": "17:00"}]}}, "body.calendar.hours.mon[0].start:"),
        ({"timezone": "UTC", "hours": {"funday": []}}, "body.calendar.hours.funday:"),
        ({"timezone": "UTC", "holidays": [{"date": "2026-02-30"}]}, "body.calendar.holidays[0].date:"),
    ],
)
async def test_bad_calendars_are_422_naming_the_field(
    server: LiveServer, people: People, calendar: dict[str, Any], field: str
) -> None:
    response = await people.admin.post("/api/v1/business_hours", json={"name": "Bad", "calendar": calendar})
    assert response.status_code == 422, response.text
    assert error(response).startswith(field), error(response)


async def test_ids_out_of_range_and_bad_bodies(server: LiveServer, people: People) -> None:
    for path in (
        "/api/v1/business_hours/0",
        "/api/v1/business_hours/99999999999",
        "/api/v1/agents/99999999999/capacity",
    ):
        assert (await people.admin.get(path)).status_code == 404, path
    no_name = await people.admin.post("/api/v1/business_hours", json={"calendar": CALENDAR})
    assert no_name.status_code == 422 and error(no_name).startswith("body.name")
    capacity = await people.admin.put(f"/api/v1/agents/{people.agent_id}/capacity", json={"capacity": 0})
    assert capacity.status_code == 422 and error(capacity).startswith("body.capacity")
    capacity = await people.admin.put(f"/api/v1/agents/{people.agent_id}/capacity", json={"capacity": "5"})
    assert capacity.status_code == 422 and error(capacity).startswith("body.capacity")


async def test_inbox_settings_are_checked_and_calendar_in_use_cannot_go(server: LiveServer, people: People) -> None:
    hours_id = (await people.admin.post("/api/v1/business_hours", json={"name": "B", "calendar": CALENDAR})).json()[
        "id"
    ]
    bad = [
        ({"business_hours_id": 999}, "settings.business_hours_id:"),
        ({"business_hours_id": "1"}, "settings.business_hours_id:"),
        ({"routing": "random"}, "settings.routing:"),
        ({"routing_capacity": 0}, "settings.routing_capacity:"),
    ]
    for settings, field in bad:
        response = await people.admin.post(
            "/api/v1/inboxes", json={"name": "S", "channel": "api", "settings": settings}
        )
        assert response.status_code == 422, settings
        assert error(response).startswith(field), error(response)
    good = {"business_hours_id": hours_id, "routing": "least_loaded", "routing_capacity": 4}
    created = await people.admin.post("/api/v1/inboxes", json={"name": "S", "channel": "api", "settings": good})
    assert created.status_code == 201, created.text
    inbox_id = created.json()["id"]
    assert (await people.admin.get(f"/api/v1/business_hours/{hours_id}")).json()["inbox_ids"] == [inbox_id]
    refused = await people.admin.delete(f"/api/v1/business_hours/{hours_id}")
    assert refused.status_code == 409 and f"inbox {inbox_id}" in error(refused)
    patched = await people.admin.patch(f"/api/v1/inboxes/{inbox_id}", json={"settings": {"routing": "sideways"}})
    assert patched.status_code == 422 and error(patched).startswith("settings.routing:")


async def test_capacity_set_and_cleared(server: LiveServer, people: People) -> None:
    path = f"/api/v1/agents/{people.agent_id}/capacity"
    assert (await people.agent.get(path)).json() == {
        "agent_id": people.agent_id,
        "capacity": None,
        "default_capacity": 10,
    }
    assert (await people.agent.put(path, json={"capacity": 3})).status_code == 403
    assert (await people.admin.put(path, json={"capacity": 3})).json()["capacity"] == 3
    assert (await people.agent.get(path)).json()["capacity"] == 3
    assert (await people.admin.put(path, json={"capacity": None})).json()["capacity"] is None


async def test_the_running_app_routes_and_shows_its_queue(server: LiveServer, people: People) -> None:
    store, service = server.state.store, server.state.service
    created = await people.admin.post(
        "/api/v1/inboxes", json={"name": "Routed", "channel": "api", "settings": {"routing": "least_loaded"}}
    )
    inbox_id = created.json()["id"]
    await people.admin.post(f"/api/v1/inboxes/{inbox_id}/members", json={"agent_id": people.agent_id})
    await people.admin.put(f"/api/v1/agents/{people.agent_id}/capacity", json={"capacity": 1})
    from inbox.store.models import Inbox

    async with store.session() as session:
        inbox = await session.get(Inbox, inbox_id)
    assert inbox is not None
    first = await service.deliver(inbound(inbox, "a", sender="one"))
    second = await service.deliver(inbound(inbox, "b", sender="two"))
    # Bob is offline: both wait.
    queue = (await people.agent.get("/api/v1/routing/queue")).json()["items"]
    assert queue[0]["inbox_id"] == inbox_id and queue[0]["length"] == 2
    metrics = (await people.admin.get("/metrics")).text
    assert f'switchboard_routing_queue_length{{inbox_id="{inbox_id}"}} 2.0' in metrics
    await Directory(service).update_agent(people.agent_id, AgentChanges(availability="online"))

    async def assigned() -> list[int | None]:
        async with store.session() as session:
            rows = (await session.execute(select(Conversation).order_by(col(Conversation.id)))).scalars()
            return [row.assignee_id for row in rows]

    await eventually(lambda: _equals(assigned(), [people.agent_id, None]), what="the oldest goes to Bob")
    async with store.session() as session:
        line = (
            await session.execute(
                select(Message.body).where(
                    col(Message.conversation_id) == first.conversation_id, col(Message.kind) == MessageKind.ACTIVITY
                )
            )
        ).scalar_one()
    assert line == "Auto-assigned to Bob Agent: least loaded, 1 of 1 open"
    # Bob resolves it: capacity frees, the second is assigned without anyone asking.
    resolved = await people.agent.patch(f"/api/v1/conversations/{first.conversation_id}", json={"status": "resolved"})
    assert resolved.status_code == 200, resolved.text
    await eventually(lambda: _equals(assigned(), [people.agent_id, people.agent_id]), what="the second follows")
    assert second.conversation_id != first.conversation_id
    queue = (await people.agent.get("/api/v1/routing/queue")).json()["items"]
    assert queue == [{"inbox_id": inbox_id, "length": 0, "oldest_wait_seconds": 0.0}]


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def test_sla_policies_and_clocks(server: LiveServer, people: People) -> None:
    bad = [
        ({"name": "P"}, "body.first_response_seconds:"),
        ({"name": "P", "first_response_seconds": 10}, "body.first_response_seconds"),
        ({"name": "P", "first_response_seconds": 600, "priority": "whenever"}, "body.priority"),
        ({"name": "P", "first_response_seconds": 600, "inbox_id": 99999}, "body.inbox_id:"),
        ({"name": "P", "first_response_seconds": 600, "inbox_id": 99999999999}, "body.inbox_id"),
        ({"name": "P", "first_response_seconds": "600"}, "body.first_response_seconds"),
    ]
    for body, field in bad:
        response = await people.admin.post("/api/v1/sla_policies", json=body)
        assert response.status_code == 422, (body, response.text)
        assert error(response).startswith(field), error(response)
    created = await people.admin.post(
        "/api/v1/sla_policies", json={"name": "Standard", "first_response_seconds": 3600, "warning_seconds": 600}
    )
    assert created.status_code == 201, created.text
    policy_id = created.json()["id"]
    clash = await people.admin.post("/api/v1/sla_policies", json={"name": "Again", "first_response_seconds": 600})
    assert clash.status_code == 409
    patched = await people.admin.patch(f"/api/v1/sla_policies/{policy_id}", json={"resolution_seconds": 86400})
    assert patched.json()["resolution_seconds"] == 86400 and patched.json()["first_response_seconds"] == 3600
    assert (await people.agent.patch(f"/api/v1/sla_policies/{policy_id}", json={"name": "X"})).status_code == 403
    assert (await people.admin.get("/api/v1/sla_policies/99999999999")).status_code == 404

    inbox = await make_inbox(server.state.store, name="SLA")
    delivered = await server.state.service.deliver(inbound(inbox))

    async def listed() -> list[dict[str, Any]]:
        response = await people.admin.get("/api/v1/sla/clocks", params={"conversation_id": delivered.conversation_id})
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    await eventually(lambda: _count(listed(), 2), what="the running app starts both clocks")
    items = {item["target"]: item for item in await listed()}
    assert items["first_response"]["state"] == "on_track" and items["first_response"]["due_at"] is not None
    assert (await people.admin.get("/api/v1/sla/clocks", params={"state": "breached"})).json()["items"] == []
    assert (await people.admin.get("/api/v1/sla/clocks", params={"state": "late"})).status_code == 422
    assert (await people.admin.get("/api/v1/sla/clocks", params={"limit": "0"})).status_code == 422
    assert (await people.admin.delete(f"/api/v1/sla_policies/{policy_id}")).status_code == 204


async def _count(value: Any, expected: int) -> bool:
    return len(await value) == expected
