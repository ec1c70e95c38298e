"""HTTP API: teams (with members), labels and canned responses. Every agent may read them; admins write.

These are reference data: they change without events of their own, except labels: a changed label
publishes `label.updated` (to every agent, with `previous_name`), and deleting one goes through
`InboxService.delete_label`, which takes it off its conversations and publishes `conversation.updated` for
each; a team that still has conversations assigned cannot be deleted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from pydantic import StringConstraints
from sqlalchemy import delete, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response

from inbox.errors import Conflict, Invalid, NotFound
from inbox.http.routing import Api, admin, caller, json, parse_body, parse_query
from inbox.http.schema import Body, Changes, Id, Name, provided
from inbox.read import views
from inbox.realtime.events import EventRecord, EventType
from inbox.store.models import Agent, CannedResponse, Conversation, Label, Team, TeamMember

api = Api()

Text = Annotated[str, StringConstraints(max_length=2000)]
Color = Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$")]
ShortCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[\w-]{1,64}$")]
Content = Annotated[str, StringConstraints(min_length=1, max_length=20_000)]


class TeamBody(Body):
    name: Name
    description: Text = ""


class TeamUpdate(Changes):
    name: Name | None = None
    description: Text | None = None


class TeamMemberAdd(Body):
    agent_id: Id


class LabelBody(Body):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    color: Color = "#6b7280"
    description: Text = ""


class LabelUpdate(Changes):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None = None
    color: Color | None = None
    description: Text | None = None


class CannedBody(Body):
    short_code: ShortCode
    content: Content


class CannedUpdate(Changes):
    short_code: ShortCode | None = None
    content: Content | None = None


class CannedQuery(Body):
    q: Annotated[str, StringConstraints(max_length=100)] = ""


@asynccontextmanager
async def _writing(request: Request, what: str) -> AsyncIterator[AsyncSession]:
    """A transaction whose unique-name clashes become a clear 409."""
    try:
        async with request.app.state.store.transaction() as tx:
            yield tx
    except IntegrityError as exc:
        raise Conflict(f"{what} already exists") from exc


async def _get(tx: AsyncSession, model: Any, row_id: int, noun: str) -> Any:
    row = await tx.get(model, row_id)
    if row is None:
        raise NotFound(f"{noun} {row_id} not found")
    return row


# ── teams ───────────────────────────────────────────────────────────────────────────────────
async def _team_view(tx: AsyncSession, team: Team) -> dict[str, Any]:
    members = (await tx.execute(select(TeamMember.agent_id).where(col(TeamMember.team_id) == team.id))).scalars()
    return views.team(team, sorted(members))


@api.route("GET", "/api/v1/teams", summary="List teams", tag="teams")
async def list_teams(request: Request) -> Response:
    await caller(request)
    async with request.app.state.store.session() as session:
        teams = list((await session.execute(select(Team).order_by(col(Team.name)))).scalars())
        members = views.group((await session.execute(select(TeamMember.team_id, TeamMember.agent_id))).all())
    return json({"items": [views.team(team, sorted(members.get(team.id or 0, []))) for team in teams]})


@api.route("POST", "/api/v1/teams", summary="Create a team", tag="teams", body=TeamBody, status=201, auth="admin")
async def create_team(request: Request) -> Response:
    await admin(request)
    body = await parse_body(request, TeamBody)
    async with _writing(request, f"team {body.name!r}") as tx:
        team = Team(name=body.name, description=body.description)
        tx.add(team)
        await tx.flush()
        view = await _team_view(tx, team)
    return json(view, 201)


@api.route("GET", "/api/v1/teams/{team_id:int}", summary="Get a team", tag="teams")
async def get_team(request: Request) -> Response:
    await caller(request)
    async with request.app.state.store.session() as session:
        return json(await _team_view(session, await _get(session, Team, request.path_params["team_id"], "team")))


@api.route("PATCH", "/api/v1/teams/{team_id:int}", summary="Update a team", tag="teams", body=TeamUpdate, auth="admin")
async def update_team(request: Request) -> Response:
    await admin(request)
    changes = provided(await parse_body(request, TeamUpdate))
    async with _writing(request, f"team {changes.get('name')!r}") as tx:
        team = await _get(tx, Team, request.path_params["team_id"], "team")
        for name, value in changes.items():
            setattr(team, name, value)
        await tx.flush()
        view = await _team_view(tx, team)
    return json(view)


@api.route(
    "DELETE",
    "/api/v1/teams/{team_id:int}",
    summary="Delete a team that has no conversations assigned",
    tag="teams",
    status=204,
    auth="admin",
)
async def delete_team(request: Request) -> Response:
    await admin(request)
    team_id: int = request.path_params["team_id"]
    async with request.app.state.store.transaction() as tx:
        team = await _get(tx, Team, team_id, "team")
        used = await tx.execute(select(Conversation.id).where(col(Conversation.team_id) == team_id).limit(1))
        if used.first() is not None:
            raise Conflict(f"team {team_id} still has conversations assigned; reassign them first")
        await tx.execute(delete(TeamMember).where(col(TeamMember.team_id) == team_id))
        await tx.delete(team)
    return Response(status_code=204)


@api.route(
    "POST",
    "/api/v1/teams/{team_id:int}/members",
    summary="Add an agent to a team",
    tag="teams",
    body=TeamMemberAdd,
    auth="admin",
)
async def add_team_member(request: Request) -> Response:
    await admin(request)
    body = await parse_body(request, TeamMemberAdd)
    async with request.app.state.store.transaction() as tx:
        team = await _get(tx, Team, request.path_params["team_id"], "team")
        if await tx.get(Agent, body.agent_id) is None:
            raise Invalid(f"agent_id: agent {body.agent_id} does not exist")
        if await tx.get(TeamMember, (team.id, body.agent_id)) is None:
            tx.add(TeamMember(team_id=team.id, agent_id=body.agent_id))
            await tx.flush()
        view = await _team_view(tx, team)
    return json(view)


@api.route(
    "DELETE",
    "/api/v1/teams/{team_id:int}/members/{agent_id:int}",
    summary="Remove an agent from a team",
    tag="teams",
    auth="admin",
)
async def remove_team_member(request: Request) -> Response:
    await admin(request)
    team_id, agent_id = request.path_params["team_id"], request.path_params["agent_id"]
    async with request.app.state.store.transaction() as tx:
        team = await _get(tx, Team, team_id, "team")
        member = await tx.get(TeamMember, (team_id, agent_id))
        if member is None:
            raise NotFound(f"agent {agent_id} is not a member of team {team_id}")
        await tx.delete(member)
        await tx.flush()
        view = await _team_view(tx, team)
    return json(view)


# ── labels ──────────────────────────────────────────────────────────────────────────────────
@api.route("GET", "/api/v1/labels", summary="List labels", tag="labels")
async def list_labels(request: Request) -> Response:
    await caller(request)
    async with request.app.state.store.session() as session:
        rows = (await session.execute(select(Label).order_by(col(Label.name)))).scalars()
        return json({"items": [views.label(row) for row in rows]})


@api.route("POST", "/api/v1/labels", summary="Create a label", tag="labels", body=LabelBody, status=201, auth="admin")
async def create_label(request: Request) -> Response:
    await admin(request)
    body = await parse_body(request, LabelBody)
    async with _writing(request, f"label {body.name!r}") as tx:
        label = Label(name=body.name, color=body.color, description=body.description)
        tx.add(label)
    return json(views.label(label), 201)


@api.route(
    "PATCH", "/api/v1/labels/{label_id:int}", summary="Update a label", tag="labels", body=LabelUpdate, auth="admin"
)
async def update_label(request: Request) -> Response:
    await admin(request)
    changes = provided(await parse_body(request, LabelUpdate))
    service = request.app.state.service
    records: list[EventRecord] = []
    async with _writing(request, f"label {changes.get('name')!r}") as tx:
        label = await _get(tx, Label, request.path_params["label_id"], "label")
        before = views.label(label)
        for name, value in changes.items():
            setattr(label, name, value)
        if views.label(label) != before:
            await tx.flush()  # a name clash fails here, before the event
            data = {**views.label(label), "previous_name": before["name"]}
            records = await service.append(tx, [(EventType.LABEL_UPDATED, data)])
    await service.publish(records)
    return json(views.label(label))


@api.route(
    "DELETE",
    "/api/v1/labels/{label_id:int}",
    summary="Delete a label (it is removed from the conversations that carry it)",
    tag="labels",
    status=204,
    auth="admin",
)
async def delete_label(request: Request) -> Response:
    await admin(request)
    await request.app.state.service.delete_label(request.path_params["label_id"])
    return Response(status_code=204)


# ── canned responses ────────────────────────────────────────────────────────────────────────
@api.route(
    "GET",
    "/api/v1/canned_responses",
    summary="List canned responses (q= filters by short code or text)",
    tag="canned responses",
    query=CannedQuery,
)
async def list_canned(request: Request) -> Response:
    await caller(request)
    q = parse_query(request, CannedQuery).q.strip().lower()
    query = select(CannedResponse).order_by(col(CannedResponse.short_code))
    if q:
        pattern = f"%{q.replace('%', '').replace('_', '')}%"
        query = query.where(
            or_(col(CannedResponse.short_code).ilike(pattern), col(CannedResponse.content).ilike(pattern))
        )
    async with request.app.state.store.session() as session:
        rows = (await session.execute(query)).scalars()
        return json({"items": [views.canned(row) for row in rows]})


@api.route(
    "POST",
    "/api/v1/canned_responses",
    summary="Create a canned response",
    tag="canned responses",
    body=CannedBody,
    status=201,
    auth="admin",
)
async def create_canned(request: Request) -> Response:
    await admin(request)
    body = await parse_body(request, CannedBody)
    async with _writing(request, f"canned response {body.short_code!r}") as tx:
        row = CannedResponse(short_code=body.short_code, content=body.content)
        tx.add(row)
    return json(views.canned(row), 201)


@api.route(
    "PATCH",
    "/api/v1/canned_responses/{canned_id:int}",
    summary="Update a canned response",
    tag="canned responses",
    body=CannedUpdate,
    auth="admin",
)
async def update_canned(request: Request) -> Response:
    await admin(request)
    changes = provided(await parse_body(request, CannedUpdate))
    async with _writing(request, f"canned response {changes.get('short_code')!r}") as tx:
        row = await _get(tx, CannedResponse, request.path_params["canned_id"], "canned response")
        for name, value in changes.items():
            setattr(row, name, value)
    return json(views.canned(row))


@api.route(
    "DELETE",
    "/api/v1/canned_responses/{canned_id:int}",
    summary="Delete a canned response",
    tag="canned responses",
    status=204,
    auth="admin",
)
async def delete_canned(request: Request) -> Response:
    await admin(request)
    async with request.app.state.store.transaction() as tx:
        await tx.delete(await _get(tx, CannedResponse, request.path_params["canned_id"], "canned response"))
    return Response(status_code=204)
