"""HTTP API: organisations (companies with email domains) and their members, and a contact's health.
Every agent may read; admins create, change and delete organisations; agents add and remove members by hand
(like editing a contact). Validate, then call one service or report function."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.requests import Request
from starlette.responses import Response

from inbox.api.common import path_id
from inbox.clock import utcnow
from inbox.errors import NotFound
from inbox.http.routing import Api, admin, caller, json, parse_body, parse_query
from inbox.http.schema import Body, Name, provided
from inbox.http.services import services
from inbox.read import access, queries
from inbox.reports import organizations as reading
from inbox.service import InboxService
from inbox.store.models import Organization

api = Api()
Domain = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=253)]
Notes = Annotated[str, StringConstraints(max_length=5000)]


class OrganizationIn(Body):
    name: Name
    domains: list[Domain] = Field(default_factory=list, max_length=50)
    notes: Notes = ""


class OrganizationPatch(Body):
    name: Name | None = None
    domains: list[Domain] | None = Field(default=None, max_length=50)
    notes: Notes | None = None


class MemberIn(Body):
    contact_id: int = Field(ge=1)


class MemberQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cursor: int | None = Field(default=None, ge=0)
    limit: int = Field(default=50, ge=1, le=200)


def _service(request: Request) -> InboxService:
    service: InboxService = services(request).service
    return service


async def _organization(request: Request) -> Organization:
    organization_id = path_id(request, "organization_id", "organization")
    async with services(request).store.session() as session:
        found: Organization | None = await session.get(Organization, organization_id)
    if found is None:
        raise NotFound(f"organization {organization_id} not found")
    return found


@api.route("GET", "/api/v1/organizations", summary="List organisations", tag="organizations")
async def list_organizations(request: Request) -> Response:
    await caller(request)
    async with services(request).store.session() as session:
        return json({"items": await reading.organizations(session)})


@api.route(
    "POST", "/api/v1/organizations", summary="Create an organisation", tag="organizations", body=OrganizationIn,
    status=201, auth="admin",
)  # fmt: skip
async def create_organization(request: Request) -> Response:
    await admin(request)
    body = await parse_body(request, OrganizationIn)
    made = await _service(request).create_organization(name=body.name, domains=body.domains, notes=body.notes)
    return json(reading.view(made), status=201)


@api.route("GET", "/api/v1/organizations/{organization_id:int}", summary="Get an organisation", tag="organizations")
async def get_organization(request: Request) -> Response:
    await caller(request)
    return json(reading.view(await _organization(request)))


@api.route(
    "PATCH", "/api/v1/organizations/{organization_id:int}", summary="Change name, domains or notes",
    tag="organizations", body=OrganizationPatch, auth="admin",
)  # fmt: skip
async def patch_organization(request: Request) -> Response:
    await admin(request)
    body = await parse_body(request, OrganizationPatch)
    organization = await _organization(request)
    assert organization.id is not None
    changed = await _service(request).update_organization(organization.id, **provided(body))
    return json(reading.view(changed))


@api.route(
    "DELETE", "/api/v1/organizations/{organization_id:int}", summary="Delete an organisation (contacts stay)",
    tag="organizations", status=204, auth="admin",
)  # fmt: skip
async def delete_organization(request: Request) -> Response:
    await admin(request)
    organization = await _organization(request)
    assert organization.id is not None
    await _service(request).delete_organization(organization.id)
    return Response(status_code=204)


@api.route(
    "GET", "/api/v1/organizations/{organization_id:int}/members",
    summary="Contacts of an organisation (hand-added and by email domain), keyset pages", tag="organizations",
    query=MemberQuery,
)  # fmt: skip
async def list_members(request: Request) -> Response:
    await caller(request)
    query = parse_query(request, MemberQuery)
    organization = await _organization(request)
    async with services(request).store.session() as session:
        items, cursor = await reading.members(session, organization, query.cursor or 0, query.limit)
    return json({"items": items, "next_cursor": cursor})


@api.route(
    "POST", "/api/v1/organizations/{organization_id:int}/members", summary="Add a contact by hand",
    tag="organizations", body=MemberIn, status=201,
)  # fmt: skip
async def add_member(request: Request) -> Response:
    who = await caller(request)
    body = await parse_body(request, MemberIn)
    organization = await _organization(request)
    assert organization.id is not None
    store = services(request).store
    async with store.session() as session:
        if await queries.contact_visible(session, body.contact_id, await access.inbox_ids(store, who.agent)) is None:
            raise NotFound(f"contact {body.contact_id} not found")
    await _service(request).add_organization_member(organization.id, body.contact_id)
    return json({"organization_id": organization.id, "contact_id": body.contact_id, "via": "hand"}, status=201)


@api.route(
    "DELETE", "/api/v1/organizations/{organization_id:int}/members/{contact_id:int}",
    summary="Remove a hand-added contact", tag="organizations", status=204,
)  # fmt: skip
async def remove_member(request: Request) -> Response:
    await caller(request)
    organization = await _organization(request)
    assert organization.id is not None
    await _service(request).remove_organization_member(organization.id, path_id(request, "contact_id", "contact"))
    return Response(status_code=204)


@api.route(
    "GET", "/api/v1/contacts/{contact_id:int}/health",
    summary="A contact's history on every channel, CSAT, median first response, open issues and health",
    tag="contacts",
)  # fmt: skip
async def contact_health(request: Request) -> Response:
    who = await caller(request)
    store = services(request).store
    contact_id = path_id(request, "contact_id", "contact")
    visible = await access.inbox_ids(store, who.agent)
    async with store.session() as session:
        contact = await queries.contact_visible(session, contact_id, visible)
        if contact is None:
            raise NotFound(f"contact {contact_id} not found")
        return json(await reading.health(session, contact, visible, utcnow()))
