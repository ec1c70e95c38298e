"""HTTP API: inboxes and their members. Admins manage them; agents may read the inboxes they belong to
(without settings or secret)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response

from inbox.admin.directory import Directory
from inbox.errors import NotFound
from inbox.http.routing import Api, admin, caller, json, parse_body
from inbox.http.schema import Body, Changes, Id, Name, provided
from inbox.http.services import services
from inbox.read import access
from inbox.store.models import Agent, Inbox, Role

api = Api()


class InboxCreate(Body):
    name: Name
    channel: Literal["api", "webchat", "email", "telegram"]
    settings: dict[str, Any] = Field(default_factory=dict)


class InboxUpdate(Changes):
    name: Name | None = None
    settings: dict[str, Any] | None = None
    rotate_secret: bool | None = None


class MemberAdd(Body):
    agent_id: Id


def _directory(request: Request) -> Directory:
    return Directory(services(request).service, services(request).settings_validators)


def _for(agent: Agent, view: dict[str, Any]) -> dict[str, Any]:
    """What an agent sees of an inbox: admins everything, agents no settings and no secret."""
    if agent.role == Role.ADMIN:
        return view
    return {name: value for name, value in view.items() if name not in ("settings", "secret")}


@api.route("GET", "/api/v1/inboxes", summary="List inboxes (admins: all; agents: their own)", tag="inboxes")
async def list_inboxes(request: Request) -> Response:
    me = (await caller(request)).agent
    store = services(request).store
    visible = await access.inbox_ids(store, me)
    query = select(Inbox).order_by(col(Inbox.id))
    if visible is not None:
        query = query.where(col(Inbox.id).in_(visible))
    async with store.session() as session:
        rows = list((await session.execute(query)).scalars())
    items = await _directory(request).inbox_views(rows, with_secret=me.role == Role.ADMIN)
    return json({"items": [_for(me, item) for item in items]})


@api.route(
    "POST", "/api/v1/inboxes", summary="Create an inbox", tag="inboxes", body=InboxCreate, status=201, auth="admin"
)
async def create_inbox(request: Request) -> Response:
    await admin(request)
    body = await parse_body(request, InboxCreate)
    view = await _directory(request).create_inbox(name=body.name, channel=body.channel, settings=body.settings)
    return json(view, 201)


@api.route("GET", "/api/v1/inboxes/{inbox_id:int}", summary="Get an inbox", tag="inboxes")
async def get_inbox(request: Request) -> Response:
    me = (await caller(request)).agent
    inbox_id: int = request.path_params["inbox_id"]
    store = services(request).store
    async with store.session() as session:
        row = await session.get(Inbox, inbox_id)
    if row is None or not await access.may_see_inbox(store, me, inbox_id):
        raise NotFound(f"inbox {inbox_id} not found")
    [view] = await _directory(request).inbox_views([row], with_secret=me.role == Role.ADMIN)
    return json(_for(me, view))


@api.route(
    "PATCH",
    "/api/v1/inboxes/{inbox_id:int}",
    summary="Rename an inbox, replace its settings, or rotate its secret",
    tag="inboxes",
    body=InboxUpdate,
    auth="admin",
)
async def update_inbox(request: Request) -> Response:
    await admin(request)
    changes = provided(await parse_body(request, InboxUpdate))
    rotate = bool(changes.pop("rotate_secret", False))
    view = await _directory(request).update_inbox(request.path_params["inbox_id"], **changes, rotate_secret=rotate)
    return json(view)


@api.route(
    "DELETE",
    "/api/v1/inboxes/{inbox_id:int}",
    summary="Delete an inbox that has no conversations",
    tag="inboxes",
    status=204,
    auth="admin",
)
async def delete_inbox(request: Request) -> Response:
    await admin(request)
    await _directory(request).delete_inbox(request.path_params["inbox_id"])
    return Response(status_code=204)


@api.route(
    "POST",
    "/api/v1/inboxes/{inbox_id:int}/members",
    summary="Add an agent to an inbox",
    tag="inboxes",
    body=MemberAdd,
    auth="admin",
)
async def add_member(request: Request) -> Response:
    await admin(request)
    body = await parse_body(request, MemberAdd)
    return json(await _directory(request).add_member(request.path_params["inbox_id"], body.agent_id))


@api.route(
    "DELETE",
    "/api/v1/inboxes/{inbox_id:int}/members/{agent_id:int}",
    summary="Remove an agent from an inbox",
    tag="inboxes",
    auth="admin",
)
async def remove_member(request: Request) -> Response:
    await admin(request)
    directory = _directory(request)
    return json(await directory.remove_member(request.path_params["inbox_id"], request.path_params["agent_id"]))
