"""KPIs against hand-computed figures: conversations written through the real service under a controlled
clock, across business hours (Europe/Berlin, Mon–Fri 09:00–17:00), a weekend and a 24/7 inbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from inbox.reports.facts import timeline
from inbox.service import ConversationChanges, InboxService
from inbox.store.models import Agent, BusinessHours, Inbox, Team
from inbox.workflow.hours import calendar_from
from tests.factories import add_member, inbound, make_agent, make_inbox, make_label, make_token
from tests.report_clock import controlled
from tests.servers.app import LiveServer

BERLIN_OFFICE = {
    "name": "Berlin office",
    "timezone": "Europe/Berlin",
    "hours": {day: [{"start": "09:00", "end": "17:00"}] for day in ("mon", "tue", "wed", "thu", "fri")},
}


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)  # 6 March 2026 is a Friday; Berlin is UTC+1


def test_timeline_counts_waits_replies_and_reopenings() -> None:
    messages = [
        ("incoming", "contact", utc(9, 8), ""),
        ("outgoing", "agent", utc(9, 9), ""),  # first response: not a reply wait
        ("incoming", "contact", utc(9, 10), ""),
        ("incoming", "contact", utc(9, 10, 30), ""),  # still the same wait
        ("note", "agent", utc(9, 10, 40), ""),
        ("outgoing", "system", utc(9, 10, 50), ""),  # a survey is not a reply
        ("outgoing", "agent", utc(9, 11), ""),
        ("activity", "agent", utc(9, 12), "Resolved by Bob"),
        ("activity", "agent", utc(9, 13), "Reopened by Bob"),
        ("activity", "agent", utc(9, 14), "Resolved by Bob"),
        ("incoming", "contact", utc(9, 15), ""),
    ]
    found = timeline(messages)
    assert found.replies == 2
    assert found.reply_waits == [(utc(9, 10), utc(9, 11))]
    assert found.reopened_at == [utc(9, 13), utc(9, 15)]
    assert found.waiting_since == utc(9, 15)


async def world(service: InboxService) -> tuple[Inbox, Inbox, Agent, Agent, Team]:
    store = service.store
    async with store.transaction() as tx:
        hours = BusinessHours(name="Berlin office", calendar=calendar_from(BERLIN_OFFICE).to_dict())
        tx.add(hours)
    office = await make_inbox(store, name="Office", business_hours_id=hours.id)
    always = await make_inbox(store, name="Always", channel="webchat")
    admin = await make_agent(store, email="ann@example.test", name="Ann", role="admin")
    bob = await make_agent(store, email="bob@example.test", name="Bob")
    for inbox in (office, always):
        await add_member(store, inbox, bob)
    await make_label(store, "billing")
    async with store.transaction() as tx:
        team = Team(name="Tier 1")
        tx.add(team)
    with controlled(utc(6, 15)) as clock:  # Friday 16:00 in Berlin: one office hour left
        a = (await service.deliver(inbound(office, "a1", sender="a"))).conversation_id
        await service.update_conversation(
            a, ConversationChanges(assignee_id=bob.id, team_id=team.id, labels=["billing"]), by=admin
        )
        clock.at = utc(7, 10)  # Saturday, 24/7 inbox
        b = (await service.deliver(inbound(always, "b1", sender="b"))).conversation_id
        clock.at = utc(7, 10, 20)
        await service.reply(b, by=admin, body="On it", client_id=None)
        clock.at = utc(9, 8, 30)  # Monday 09:30 Berlin
        await service.reply(a, by=bob, body="Hello", client_id=None)
        clock.at = utc(9, 9)
        await service.deliver(inbound(office, "a2", sender="a"))
        clock.at = utc(9, 10)
        await service.reply(a, by=bob, body="Done", client_id=None)
        clock.at = utc(9, 11)
        await service.update_conversation(a, ConversationChanges(status="resolved"), by=bob)
        clock.at = utc(9, 12)
        await service.deliver(inbound(office, "a3", sender="a"))  # reopens
        clock.at = utc(9, 12, 30)
        await service.reply(a, by=bob, body="Again", client_id=None)
        clock.at = utc(9, 13)
        await service.update_conversation(a, ConversationChanges(status="resolved"), by=bob)
    return office, always, admin, bob, team


def durations(count: int, average: float | None, median: float | None, p90: float | None) -> dict[str, Any]:
    return {"count": count, "average_seconds": average, "median_seconds": median, "p90_seconds": p90}


async def test_kpis_in_business_hours_and_wall_clock(server: LiveServer) -> None:
    admin = (await world(server.state.service))[2]
    token = await make_token(server.state.store, admin)
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http:
        response = await http.get(
            "/api/v1/reports/summary", params={"from": "2026-03-02", "to": "2026-03-16", "tz": "Europe/Berlin"}
        )
    assert response.status_code == 200, response.text
    data = response.json()
    kpis = data["kpis"]
    assert (kpis["created"], kpis["resolved"], kpis["reopened"]) == (2, 1, 1)
    assert kpis["replies_per_resolution"] == 3.0
    # First response: A Fri 15:00 → Mon 08:30 UTC = 65.5 h wall, 1 h Friday + 30 min Monday in office hours;
    # B 20 min on a Saturday in a 24/7 inbox.
    assert kpis["first_response"]["wall"] == durations(2, 118500.0, 1200.0, 235800.0)
    assert kpis["first_response"]["business"] == durations(2, 3300.0, 1200.0, 5400.0)
    # Reply waits of A: 09:00 → 10:00 and 12:00 → 12:30 on Monday, all inside office hours.
    assert kpis["next_response"]["wall"] == durations(2, 2700.0, 1800.0, 3600.0)
    assert kpis["next_response"]["business"] == kpis["next_response"]["wall"]
    # Resolution of A (latest): Fri 15:00 → Mon 13:00 UTC = 70 h; in office hours 1 h + Mon 09:00–14:00 Berlin.
    assert kpis["resolution"]["wall"] == durations(1, 252000.0, 252000.0, 252000.0)
    assert kpis["resolution"]["business"] == durations(1, 21600.0, 21600.0, 21600.0)
    by_agent = {row["name"]: row for row in kpis["by"]["agent"]}
    assert set(by_agent) == {"Bob", "(none)"}
    assert by_agent["Bob"]["first_response"]["business"]["median_seconds"] == 5400.0
    assert by_agent["Bob"]["reopened"] == 1
    assert {row["name"]: row["created"] for row in kpis["by"]["team"]} == {"Tier 1": 1, "(none)": 1}
    by_channel = {row["key"]: row["created"] for row in kpis["by"]["channel"]}
    assert by_channel == {"api": 1, "webchat": 1}
    by_label = {row["name"]: row["resolved"] for row in kpis["by"]["label"]}
    assert by_label == {"billing": 1, "(none)": 0}
    by_inbox = {row["name"]: row["resolution"]["business"]["count"] for row in kpis["by"]["inbox"]}
    assert by_inbox == {"Office": 1, "Always": 0}
    # Volume in Berlin time: Friday 16:00 and Saturday 11:00.
    weekdays = data["volume_by_hour"]["weekdays"]
    assert data["volume_by_hour"]["timezone"] == "Europe/Berlin"
    assert weekdays[4][16] == 1 and weekdays[5][11] == 1 and sum(map(sum, weekdays)) == 2
    # The old keys are kept.
    assert data["conversations"]["created"] == 2 and "first_response" in data and "csat" in data


async def test_timeseries_buckets_in_the_time_zone_with_the_previous_period(server: LiveServer) -> None:
    admin = (await world(server.state.service))[2]
    token = await make_token(server.state.store, admin)
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http:
        created = await http.get(
            "/api/v1/reports/timeseries",
            params={
                "metric": "created",
                "bucket": "day",
                "from": "2026-03-06",
                "to": "2026-03-08",
                "tz": "Europe/Berlin",
            },
        )
        tokyo = await http.get(
            "/api/v1/reports/timeseries",
            params={"metric": "created", "bucket": "day", "from": "2026-03-06", "to": "2026-03-08", "tz": "Asia/Tokyo"},
        )
        weekly = await http.get(
            "/api/v1/reports/timeseries",
            params={
                "metric": "first_response_business_median",
                "bucket": "week",
                "from": "2026-03-02",
                "to": "2026-03-16",
                "group_by": "inbox",
            },
        )
        backlog = await http.get(
            "/api/v1/reports/timeseries",
            params={"metric": "backlog_open", "bucket": "day", "from": "2026-03-06", "to": "2026-03-10"},
        )
        svg = await http.get(
            "/api/v1/reports/timeseries.svg",
            params={"metric": "created", "bucket": "day", "from": "2026-03-06", "to": "2026-03-08"},
        )
    assert created.status_code == 200, created.text
    series = created.json()
    assert series["timezone"] == "Europe/Berlin" and series["previous_from"] == "2026-03-04T00:00:00+01:00"
    assert [(p["start"], p["value"], p["previous"]) for p in series["series"][0]["points"]] == [
        ("2026-03-06T00:00:00+01:00", 1, 0),
        ("2026-03-07T00:00:00+01:00", 1, 0),
    ]
    # In Tokyo (UTC+9) Friday 15:00 UTC is already Saturday: both conversations fall on the 7th.
    assert [p["value"] for p in tokyo.json()["series"][0]["points"]] == [0, 2]
    groups = {s["name"]: [p["value"] for p in s["points"]] for s in weekly.json()["series"]}
    assert groups == {"Office": [5400.0, None], "Always": [1200.0, None]}  # both created in the first week
    # Open at the end of each UTC day: A from Friday to its resolution on Monday, B from Saturday on.
    assert [p["value"] for p in backlog.json()["series"][0]["points"]] == [1, 2, 2, 1]
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.count("<circle") == 2 and 'data-value="1"' in svg.text


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"metric": "nope"}, "query.metric"),
        ({"metric": "created", "bucket": "hour"}, "query.bucket"),
        ({"metric": "created", "group_by": "planet"}, "query.group_by"),
        ({"metric": "created", "tz": "Mars/Olympus"}, "query.tz"),
        ({"metric": "created", "from": "soon"}, "query.from"),
        ({"metric": "created", "from": "2020-01-01", "to": "2026-01-01"}, "query.bucket"),
        ({"metric": "created", "organization_id": "x"}, "query.organization_id"),
        ({"metric": "created", "colour": "red"}, "query.colour"),
    ],
)
async def test_timeseries_refuses_bad_input_naming_the_parameter(
    server: LiveServer, params: dict[str, str], named: str
) -> None:
    admin = await make_agent(server.state.store, role="admin")
    token = await make_token(server.state.store, admin)
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http:
        response = await http.get("/api/v1/reports/timeseries", params=params)
    assert response.status_code == 422, response.text
    assert named in response.json()["error"]["detail"]


async def test_csat_comments_newest_and_lowest_first(server: LiveServer) -> None:
    from inbox.store.models import CsatSurvey

    office, _always, admin, bob, _team = await world(server.state.service)
    store = server.state.store
    async with store.session() as session:
        from sqlmodel import select

        from inbox.store.models import Conversation

        a = (await session.execute(select(Conversation.id).order_by(Conversation.id))).scalars().first()
    answers = [(4, "fine", 1), (1, "awful", 2), (5, "", 3), (2, "slow", 4)]  # (rating, comment, hours after)
    async with store.transaction() as tx:
        for number, (rating, comment, hours) in enumerate(answers):
            at = utc(9, 14) + timedelta(hours=hours)
            tx.add(
                CsatSurvey(
                    conversation_id=a, inbox_id=office.id, agent_id=bob.id, rating=rating, comment=comment,
                    created_at=at, responded_at=at, incoming_at=utc(9, number),
                )
            )  # fmt: skip
    token = await make_token(store, admin)
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http:
        data = (await http.get("/api/v1/reports/summary", params={"from": "2026-03-02", "to": "2026-03-16"})).json()
    comments = data["csat_comments"]
    assert [c["comment"] for c in comments["newest"]] == ["slow", "awful", "fine"]  # no empty comments
    assert [c["rating"] for c in comments["lowest"]] == [1, 2, 4]
    assert comments["lowest"][0]["agent"] == "Bob" and comments["lowest"][0]["contact"] == "Carol Customer"


async def test_a_calendar_passed_in_applies_to_every_inbox(service: InboxService) -> None:
    from inbox.reports import kpi
    from inbox.reports.facts import Scope
    from inbox.workflow.hours import calendar_from

    await world(service)
    start, end = utc(2, 0), utc(16, 0)
    own = await kpi.report(service.store, start=start, end=end, scope=Scope())
    office = await kpi.report(service.store, start=start, end=end, scope=Scope(), calendar=calendar_from(BERLIN_OFFICE))
    assert own["kpis"]["first_response"]["business"]["average_seconds"] == 3300.0  # B's inbox is 24/7
    # With the office calendar everywhere, B's Saturday answer took no business time at all.
    assert office["kpis"]["first_response"]["business"] == durations(2, 2700.0, 0.0, 5400.0)
    assert office["kpis"]["calendar"] == "Berlin office"
