"""HTTP API: agents (admins manage them; every agent may list colleagues for assignment pickers), the
caller's own profile (`/api/v1/me`), and the caller's API tokens.

Privacy decision: agents see their colleagues' names, roles and availability, but only admins see other
agents' email addresses and deactivated agents.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response

from inbox.admin.directory import AgentChanges, Directory
from inbox.auth import SESSION_COOKIE
from inbox.clock import iso
from inbox.errors import Invalid, NotFound
from inbox.http.routing import Api, admin, caller, json, parse_body
from inbox.http.schema import Body, Changes, Email, Name, Password, provided
from inbox.http.services import services
from inbox.read import views
from inbox.store.engine import Store
from inbox.store.models import Agent, ApiToken, InboxMember, Role, TeamMember, key

api = Api()

RoleName = Literal["admin", "supervisor", "agent"]
AvailabilityName = Literal["online", "busy", "offline"]


class AgentCreate(Body):
    email: Email
    name: Name
    role: RoleName = "agent"
    password: Password


class AgentUpdate(Changes):
    email: Email | None = None
    name: Name | None = None
    role: RoleName | None = None
    active: bool | None = None
    availability: AvailabilityName | None = None
    password: Password | None = None


class MeUpdate(Changes):
    name: Name | None = None
    availability: AvailabilityName | None = None
    password: Password | None = None
    current_password: Password | None = None


class TokenCreate(Body):
    name: Name


def _directory(request: Request) -> Directory:
    return Directory(services(request).service)


async def agent_views(store: Store, agents: list[Agent], *, viewer: Agent) -> list[dict[str, Any]]:
    """Views of `agents` with team and inbox ids (two queries); emails only for admins or oneself."""
    ids = [agent.id for agent in agents]
    async with store.session() as session:
        teams = views.group(
            (
                await session.execute(
                    select(TeamMember.agent_id, TeamMember.team_id).where(col(TeamMember.agent_id).in_(ids))
                )
            ).all()
        )
        inboxes = views.group(
            (
                await session.execute(
                    select(InboxMember.agent_id, InboxMember.inbox_id).where(col(InboxMember.agent_id).in_(ids))
                )
            ).all()
        )
    result = []
    for agent in agents:
        assert agent.id is not None
        data = views.agent(agent, team_ids=sorted(teams.get(agent.id, [])), inbox_ids=sorted(inboxes.get(agent.id, [])))
        if viewer.role != Role.ADMIN and viewer.id != agent.id:
            data.pop("email")
        result.append(data)
    return result


@api.route(
    "GET",
    "/api/v1/agents",
    summary="List agents (admins: all with emails; agents: active colleagues without emails)",
    tag="agents",
)
async def list_agents(request: Request) -> Response:
    me = (await caller(request)).agent
    query = select(Agent).order_by(col(Agent.name), col(Agent.id))
    if me.role != Role.ADMIN:
        query = query.where(col(Agent.active))
    store = services(request).store
    async with store.session() as session:
        rows = list((await session.execute(query)).scalars())
    return json({"items": await agent_views(store, rows, viewer=me)})


@api.route(
    "POST", "/api/v1/agents", summary="Create an agent", tag="agents", body=AgentCreate, status=201, auth="admin"
)
async def create_agent(request: Request) -> Response:
    me = (await admin(request)).agent
    body = await parse_body(request, AgentCreate)
    agent = await _directory(request).create_agent(
        email=body.email, name=body.name, role=body.role, password=body.password
    )
    [view] = await agent_views(services(request).store, [agent], viewer=me)
    return json(view, 201)


@api.route("GET", "/api/v1/agents/{agent_id:int}", summary="Get an agent (admins, or oneself)", tag="agents")
async def get_agent(request: Request) -> Response:
    me = (await caller(request)).agent
    agent_id: int = request.path_params["agent_id"]
    store = services(request).store
    async with store.session() as session:
        agent = await session.get(Agent, agent_id)
    if agent is None or (me.role != Role.ADMIN and agent.id != me.id):
        raise NotFound(f"agent {agent_id} not found")
    [view] = await agent_views(store, [agent], viewer=me)
    return json(view)


@api.route(
    "PATCH",
    "/api/v1/agents/{agent_id:int}",
    summary="Update an agent; deactivate with active=false (a new password or deactivation ends their sessions)",
    tag="agents",
    body=AgentUpdate,
    auth="admin",
)
async def update_agent(request: Request) -> Response:
    me = (await admin(request)).agent
    changes = provided(await parse_body(request, AgentUpdate))
    agent = await _directory(request).update_agent(request.path_params["agent_id"], AgentChanges(**changes))
    [view] = await agent_views(services(request).store, [agent], viewer=me)
    return json(view)


@api.route("GET", "/api/v1/me", summary="The calling agent", tag="agents")
async def get_me(request: Request) -> Response:
    me = (await caller(request)).agent
    [view] = await agent_views(services(request).store, [me], viewer=me)
    return json(view)


@api.route(
    "PATCH",
    "/api/v1/me",
    summary="Change one's name, availability or password (with current_password)",
    tag="agents",
    body=MeUpdate,
)
async def update_me(request: Request) -> Response:
    found = await caller(request)
    me = found.agent
    assert me.id is not None
    changes = provided(await parse_body(request, MeUpdate))
    current = changes.pop("current_password", None)
    new_password = changes.pop("password", None)
    if current is not None and new_password is None:
        raise Invalid("body.current_password: only needed together with password")
    directory = _directory(request)
    if new_password is not None and current is None:
        raise Invalid("body.current_password: required to change the password")
    if changes:
        me = await directory.update_agent(me.id, AgentChanges(**changes))
    if new_password is not None:
        me = await directory.change_own_password(key(me), current, new_password)
    [view] = await agent_views(services(request).store, [me], viewer=me)
    response = json(view)
    if new_password is not None and found.via_cookie:
        # The new password ended every session, this one included: hand this browser a fresh cookie.
        sessions = services(request).sessions
        cookie = sessions.issue(me)
        set_session_cookie(request, response, cookie)
        response.headers["x-csrf-token"] = sessions.csrf_token(cookie)
    return response


def set_session_cookie(request: Request, response: Response, cookie: str) -> None:
    """The session cookie: HttpOnly, SameSite=Lax, Secure when configured, max-age from config."""
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=services(request).sessions.max_age_seconds,
        httponly=True,
        samesite="lax",
        secure=services(request).config.server.secure_cookies,
        path="/",
    )


def _token(row: ApiToken) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "created_at": iso(row.created_at),
        "last_used_at": iso(row.last_used_at),
    }


@api.route("GET", "/api/v1/tokens", summary="List one's API tokens (never the secrets)", tag="tokens")
async def list_tokens(request: Request) -> Response:
    me = (await caller(request)).agent
    async with services(request).store.session() as session:
        rows = (
            await session.execute(select(ApiToken).where(col(ApiToken.agent_id) == me.id).order_by(col(ApiToken.id)))
        ).scalars()
        return json({"items": [_token(row) for row in rows]})


@api.route(
    "POST",
    "/api/v1/tokens",
    summary="Create an API token for oneself; the token is in this answer only",
    tag="tokens",
    body=TokenCreate,
    status=201,
)
async def create_token(request: Request) -> Response:
    me = (await caller(request)).agent
    assert me.id is not None
    body = await parse_body(request, TokenCreate)
    row, token = await _directory(request).create_token(me.id, body.name)
    return json({**_token(row), "token": token}, 201)


@api.route(
    "DELETE",
    "/api/v1/tokens/{token_id:int}",
    summary="Revoke an API token (one's own; admins any)",
    tag="tokens",
    status=204,
)
async def delete_token(request: Request) -> Response:
    me = (await caller(request)).agent
    owner = None if me.role == Role.ADMIN else me.id
    await _directory(request).delete_token(request.path_params["token_id"], owner_id=owner)
    return Response(status_code=204)
