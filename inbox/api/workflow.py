"""HTTP API of the team workflow: business-hours calendars, agents' routing capacity, the routing queue, SLA
policies and the running SLA clocks.

Calendars are reference data (like labels): written here, validated by `inbox.workflow.hours.calendar_from`
(errors name the field: `body.calendar.hours.mon[1].end: …`); an inbox uses one through its settings
(`PATCH /api/v1/inboxes/{id}` with `settings.business_hours_id`). Every agent may read; admins write.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response

from inbox.api.common import Id, Query, path_id
from inbox.clock import iso, utcnow
from inbox.errors import Conflict, Invalid, NotFound
from inbox.http.routing import Api, admin, caller, json, parse_body, parse_query
from inbox.http.schema import Body, provided
from inbox.http.services import services
from inbox.read import access
from inbox.store.models import Agent, AgentCapacity, BusinessHours, Inbox, SlaClock, SlaPolicy, key
from inbox.workflow import clocks, routing, sla
from inbox.workflow import settings as workflow_settings
from inbox.workflow.hours import CalendarError, calendar_from

api = Api()

CalendarName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Capacity = Annotated[int, Field(ge=1, le=workflow_settings.MAX_CAPACITY)]


class HoursBody(Body):
    name: CalendarName
    calendar: dict[str, Any]


class HoursUpdate(Body):
    name: CalendarName | None = None
    calendar: dict[str, Any] | None = None


class CapacityBody(Body):
    capacity: Capacity | None


def _calendar(raw: dict[str, Any]) -> dict[str, Any]:
    """The calendar in its normal form; a bad one is a 422 naming the field."""
    try:
        return calendar_from(raw).to_dict()
    except CalendarError as exc:
        raise Invalid(f"body.calendar.{exc}") from exc


def _hours_view(row: BusinessHours, inbox_ids: list[int]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "calendar": row.calendar,
        "inbox_ids": inbox_ids,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


async def _users(session: AsyncSession) -> dict[int, list[int]]:
    """Which inboxes use each calendar."""
    found: dict[int, list[int]] = {}
    for inbox in (await session.execute(select(Inbox).order_by(col(Inbox.id)))).scalars():
        hours_id = workflow_settings.of(inbox.settings).business_hours_id
        if hours_id is not None:
            found.setdefault(hours_id, []).append(key(inbox))
    return found


@asynccontextmanager
async def _writing(request: Request, name: str | None) -> AsyncIterator[AsyncSession]:
    try:
        async with services(request).store.transaction() as tx:
            yield tx
    except IntegrityError as exc:
        raise Conflict(f"name: business hours named {name!r} already exist") from exc


async def _hours(session: AsyncSession, hours_id: int) -> BusinessHours:
    row = await session.get(BusinessHours, hours_id)
    if row is None:
        raise NotFound(f"business hours {hours_id} not found")
    return row


# ── business hours ──────────────────────────────────────────────────────────────────────────
@api.route("GET", "/api/v1/business_hours", summary="List business-hours calendars", tag="workflow")
async def list_hours(request: Request) -> Response:
    await caller(request)
    async with services(request).store.session() as session:
        rows = list((await session.execute(select(BusinessHours).order_by(col(BusinessHours.name)))).scalars())
        users = await _users(session)
    return json({"items": [_hours_view(row, users.get(key(row), [])) for row in rows]})


@api.route(
    "POST",
    "/api/v1/business_hours",
    summary="Create a business-hours calendar",
    tag="workflow",
    body=HoursBody,
    status=201,
    auth="admin",
)
async def create_hours(request: Request) -> Response:
    await admin(request)
    body = await parse_body(request, HoursBody)
    calendar = _calendar(body.calendar)
    async with _writing(request, body.name) as tx:
        row = BusinessHours(name=body.name, calendar=calendar)
        tx.add(row)
        await tx.flush()
    return json(_hours_view(row, []), 201)


@api.route("GET", "/api/v1/business_hours/{hours_id:int}", summary="Get a business-hours calendar", tag="workflow")
async def get_hours(request: Request) -> Response:
    await caller(request)
    hours_id = path_id(request, "hours_id", "business hours")
    async with services(request).store.session() as session:
        row = await _hours(session, hours_id)
        users = await _users(session)
    return json(_hours_view(row, users.get(hours_id, [])))


@api.route(
    "PATCH",
    "/api/v1/business_hours/{hours_id:int}",
    summary="Rename a business-hours calendar or replace its hours",
    tag="workflow",
    body=HoursUpdate,
    auth="admin",
)
async def update_hours(request: Request) -> Response:
    await admin(request)
    hours_id = path_id(request, "hours_id", "business hours")
    changes = provided(await parse_body(request, HoursUpdate))
    if "calendar" in changes:
        changes["calendar"] = _calendar(changes["calendar"])
    async with _writing(request, changes.get("name")) as tx:
        row = await _hours(tx, hours_id)
        for name, value in changes.items():
            setattr(row, name, value)
        row.updated_at = utcnow()
        await tx.flush()
        users = await _users(tx)
    return json(_hours_view(row, users.get(hours_id, [])))


@api.route(
    "DELETE",
    "/api/v1/business_hours/{hours_id:int}",
    summary="Delete a business-hours calendar no inbox uses",
    tag="workflow",
    status=204,
    auth="admin",
)
async def delete_hours(request: Request) -> Response:
    await admin(request)
    hours_id = path_id(request, "hours_id", "business hours")
    async with services(request).store.transaction() as tx:
        row = await _hours(tx, hours_id)
        used = (await _users(tx)).get(hours_id)
        if used:
            raise Conflict(f"business hours {hours_id} are used by inbox {used[0]}; choose other hours there first")
        await tx.delete(row)
    return Response(status_code=204)


# ── routing ─────────────────────────────────────────────────────────────────────────────────
@api.route("GET", "/api/v1/agents/{agent_id:int}/capacity", summary="An agent's routing capacity", tag="workflow")
async def get_capacity(request: Request) -> Response:
    await caller(request)
    agent_id = path_id(request, "agent_id", "agent")
    async with services(request).store.session() as session:
        if await session.get(Agent, agent_id) is None:
            raise NotFound(f"agent {agent_id} not found")
        row = await session.get(AgentCapacity, agent_id)
    return json(_capacity_view(agent_id, row))


@api.route(
    "PUT",
    "/api/v1/agents/{agent_id:int}/capacity",
    summary="Set an agent's routing capacity (null: the default)",
    tag="workflow",
    body=CapacityBody,
    auth="admin",
)
async def set_capacity(request: Request) -> Response:
    await admin(request)
    agent_id = path_id(request, "agent_id", "agent")
    body = await parse_body(request, CapacityBody)
    async with services(request).store.transaction() as tx:
        if await tx.get(Agent, agent_id) is None:
            raise NotFound(f"agent {agent_id} not found")
        row = await tx.get(AgentCapacity, agent_id)
        if body.capacity is None:
            if row is not None:
                await tx.delete(row)
            row = None
        elif row is None:
            row = AgentCapacity(agent_id=agent_id, capacity=body.capacity)
            tx.add(row)
        else:
            row.capacity = body.capacity
    services(request).router.wake()  # more room: the queue may move
    return json(_capacity_view(agent_id, row))


def _capacity_view(agent_id: int, row: AgentCapacity | None) -> dict[str, Any]:
    return {
        "agent_id": agent_id,
        "capacity": row.capacity if row is not None else None,
        "default_capacity": workflow_settings.DEFAULT_CAPACITY,
    }


@api.route(
    "GET",
    "/api/v1/routing/queue",
    summary="Conversations waiting for an agent, per routing inbox (length, oldest wait)",
    tag="workflow",
)
async def routing_queue(request: Request) -> Response:
    me = (await caller(request)).agent
    store = services(request).store
    visible = await access.inbox_ids(store, me)
    async with store.session() as session:
        stats = await routing.queue_stats(session, utcnow())
    return json(
        {
            "items": [
                {
                    "inbox_id": stat.inbox_id,
                    "length": stat.length,
                    "oldest_wait_seconds": round(stat.oldest_wait_seconds, 3),
                }
                for stat in stats
                if visible is None or stat.inbox_id in visible
            ]
        }
    )


# ── SLA policies and clocks ─────────────────────────────────────────────────────────────────
Seconds = Annotated[int, Field(ge=60, le=366 * 86400)]
WarningSeconds = Annotated[int, Field(ge=0, le=7 * 86400)]
Priority = Literal["low", "medium", "high", "urgent"]


class PolicyBody(Body):
    name: CalendarName
    inbox_id: Id | None = None
    priority: Priority | None = None
    first_response_seconds: Seconds | None = None
    next_response_seconds: Seconds | None = None
    resolution_seconds: Seconds | None = None
    warning_seconds: WarningSeconds = 900


class PolicyUpdate(Body):
    name: CalendarName | None = None
    first_response_seconds: Seconds | None = None
    next_response_seconds: Seconds | None = None
    resolution_seconds: Seconds | None = None
    warning_seconds: WarningSeconds | None = None


class ClockQuery(Query):
    state: Literal["on_track", "breaching_soon", "breached"] | None = None
    inbox_id: Id | None = None
    conversation_id: Id | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50


def _policy_view(row: SlaPolicy) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "inbox_id": row.inbox_id,
        "priority": row.priority,
        "first_response_seconds": row.first_response_seconds,
        "next_response_seconds": row.next_response_seconds,
        "resolution_seconds": row.resolution_seconds,
        "warning_seconds": row.warning_seconds,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


async def _policy(session: AsyncSession, policy_id: int) -> SlaPolicy:
    row = await session.get(SlaPolicy, policy_id)
    if row is None:
        raise NotFound(f"SLA policy {policy_id} not found")
    return row


@api.route("GET", "/api/v1/sla_policies", summary="List SLA policies", tag="workflow")
async def list_policies(request: Request) -> Response:
    await caller(request)
    async with services(request).store.session() as session:
        rows = (await session.execute(select(SlaPolicy).order_by(col(SlaPolicy.id)))).scalars()
        return json({"items": [_policy_view(row) for row in rows]})


@api.route(
    "POST",
    "/api/v1/sla_policies",
    summary="Create an SLA policy",
    tag="workflow",
    body=PolicyBody,
    status=201,
    auth="admin",
)
async def create_policy(request: Request) -> Response:
    await admin(request)
    body = await parse_body(request, PolicyBody)
    if body.first_response_seconds is None and body.next_response_seconds is None and body.resolution_seconds is None:
        raise Invalid("body.first_response_seconds: a policy needs at least one target")
    async with services(request).store.transaction() as tx:
        if body.inbox_id is not None and await tx.get(Inbox, body.inbox_id) is None:
            raise Invalid(f"body.inbox_id: inbox {body.inbox_id} does not exist")
        clash = select(SlaPolicy.id).where(
            col(SlaPolicy.inbox_id).is_(None) if body.inbox_id is None else col(SlaPolicy.inbox_id) == body.inbox_id,
            col(SlaPolicy.priority).is_(None) if body.priority is None else col(SlaPolicy.priority) == body.priority,
        )
        if (await tx.execute(clash)).first() is not None:
            raise Conflict("inbox_id: a policy for this inbox and priority exists already")
        row = SlaPolicy(**body.model_dump())
        tx.add(row)
        await tx.flush()
    return json(_policy_view(row), 201)


@api.route("GET", "/api/v1/sla_policies/{policy_id:int}", summary="Get an SLA policy", tag="workflow")
async def get_policy(request: Request) -> Response:
    await caller(request)
    async with services(request).store.session() as session:
        return json(_policy_view(await _policy(session, path_id(request, "policy_id", "SLA policy"))))


@api.route(
    "PATCH",
    "/api/v1/sla_policies/{policy_id:int}",
    summary="Change an SLA policy (applies to promises started from then on)",
    tag="workflow",
    body=PolicyUpdate,
    auth="admin",
)
async def update_policy(request: Request) -> Response:
    await admin(request)
    policy_id = path_id(request, "policy_id", "SLA policy")
    changes = provided(
        await parse_body(request, PolicyUpdate),
        nullable=frozenset({"first_response_seconds", "next_response_seconds", "resolution_seconds"}),
    )
    async with services(request).store.transaction() as tx:
        row = await _policy(tx, policy_id)
        for name, value in changes.items():
            setattr(row, name, value)
        row.updated_at = utcnow()
    return json(_policy_view(row))


@api.route(
    "DELETE",
    "/api/v1/sla_policies/{policy_id:int}",
    summary="Delete an SLA policy",
    tag="workflow",
    status=204,
    auth="admin",
)
async def delete_policy(request: Request) -> Response:
    await admin(request)
    policy_id = path_id(request, "policy_id", "SLA policy")
    async with services(request).store.transaction() as tx:
        await tx.delete(await _policy(tx, policy_id))
    return Response(status_code=204)


@api.route(
    "GET",
    "/api/v1/sla/clocks",
    summary="Running SLA promises, soonest due first (filter: state=breaching_soon|breached)",
    tag="workflow",
    query=ClockQuery,
)
async def list_clocks(request: Request) -> Response:
    me = (await caller(request)).agent
    query = parse_query(request, ClockQuery)
    store = services(request).store
    visible = await access.inbox_ids(store, me)
    now = utcnow()
    conditions: list[Any] = [col(SlaClock.met_at).is_(None)]
    if query.conversation_id is None:
        conditions.append(col(SlaClock.due_at).is_not(None))
    else:
        conditions.append(col(SlaClock.conversation_id) == query.conversation_id)
    if query.inbox_id is not None:
        conditions.append(col(SlaClock.inbox_id) == query.inbox_id)
    if visible is not None:
        conditions.append(col(SlaClock.inbox_id).in_(sorted(visible)))
    if query.state == "breached":
        conditions.append(col(SlaClock.due_at) <= now)
    elif query.state is not None:
        conditions.append(col(SlaClock.due_at) > now)
    async with store.session() as session:
        rows = list(
            (
                await session.execute(
                    select(SlaClock)
                    .where(*conditions)
                    .order_by(col(SlaClock.due_at), col(SlaClock.conversation_id))
                    .limit(query.limit if query.state != "breaching_soon" else 1000)
                )
            ).scalars()
        )
    items = []
    for row in rows:
        found = sla.state(row.due_at, row.warning_seconds, now)
        if query.state is None or found == query.state:
            items.append({**clocks.describe(row), "state": found})
    return json({"items": items[: query.limit]})
