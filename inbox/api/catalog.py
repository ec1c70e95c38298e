"""HTTP API: teams (with members), labels and canned responses. Every agent may read them; admins write.

Handlers validate, then call one `InboxService` method (`inbox.service.catalog`): they never open a write
transaction. These are reference data: they change without events of their own, except labels: a changed
label publishes `label.updated` (to every agent, with `previous_name`), and deleting one goes through
`InboxService.delete_label`, which takes it off its conversations and publishes `conversation.updated` for
each; a team that still has conversations assigned cannot be deleted.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints
from sqlalchemy import or_
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response

from inbox.errors import NotFound
from inbox.http.routing import Api, admin, caller, json, parse_body, parse_query
from inbox.http.schema import Body, Changes, Id, Name, provided
from inbox.http.services import services
from inbox.read import views
from inbox.service.catalog import team_view
from inbox.store.models import CannedResponse, Label, Team, TeamMember

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


# ── teams ───────────────────────────────────────────────────────────────────────────────────


@api.route("GET", "/api/v1/teams", summary="List teams", tag="teams")
async def list_teams(request: Request) -> Response:
    await caller(request)
    async with services(request).store.session() as session:
        teams = list((await session.execute(select(Team).order_by(col(Team.name)))).scalars())
        members = views.group((await session.execute(select(TeamMember.team_id, TeamMember.agent_id))).all())
    return json({"items": [views.team(team, sorted(members.get(team.id or 0, []))) for team in teams]})


@api.route("POST", "/api/v1/teams", summary="Create a team", tag="teams", body=TeamBody, status=201, auth="admin")
async def create_team(request: Request) -> Response:
    await admin(request)
    body = await parse_body(request, TeamBody)
    return json(await services(request).service.create_team(body.name, body.description), 201)


@api.route("GET", "/api/v1/teams/{team_id:int}", summary="Get a team", tag="teams")
async def get_team(request: Request) -> Response:
    await caller(request)
    async with services(request).store.session() as session:
        team_id = request.path_params["team_id"]
        team = await session.get(Team, team_id)
        if team is None:
            raise NotFound(f"team {team_id} not found")
        return json(await team_view(session, team))


@api.route("PATCH", "/api/v1/teams/{team_id:int}", summary="Update a team", tag="teams", body=TeamUpdate, auth="admin")
async def update_team(request: Request) -> Response:
    await admin(request)
    changes = provided(await parse_body(request, TeamUpdate))
    return json(await services(request).service.update_team(request.path_params["team_id"], changes))


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
    await services(request).service.delete_team(request.path_params["team_id"])
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
    return json(await services(request).service.add_team_member(request.path_params["team_id"], body.agent_id))


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
    return json(await services(request).service.remove_team_member(team_id, agent_id))


# ── labels ──────────────────────────────────────────────────────────────────────────────────
@api.route("GET", "/api/v1/labels", summary="List labels", tag="labels")
async def list_labels(request: Request) -> Response:
    await caller(request)
    async with services(request).store.session() as session:
        rows = (await session.execute(select(Label).order_by(col(Label.name)))).scalars()
        return json({"items": [views.label(row) for row in rows]})


@api.route("POST", "/api/v1/labels", summary="Create a label", tag="labels", body=LabelBody, status=201, auth="admin")
async def create_label(request: Request) -> Response:
    await admin(request)
    body = await parse_body(request, LabelBody)
    return json(await services(request).service.create_label(body.name, body.color, body.description), 201)


@api.route(
    "PATCH", "/api/v1/labels/{label_id:int}", summary="Update a label", tag="labels", body=LabelUpdate, auth="admin"
)
async def update_label(request: Request) -> Response:
    await admin(request)
    changes = provided(await parse_body(request, LabelUpdate))
    return json(await services(request).service.update_label(request.path_params["label_id"], changes))


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
    await services(request).service.delete_label(request.path_params["label_id"])
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
    async with services(request).store.session() as session:
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
    return json(await services(request).service.create_canned(body.short_code, body.content), 201)


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
    return json(await services(request).service.update_canned(request.path_params["canned_id"], changes))


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
    await services(request).service.delete_canned(request.path_params["canned_id"])
    return Response(status_code=204)
