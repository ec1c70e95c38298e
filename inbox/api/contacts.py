"""HTTP API: contacts (list, get with identities and conversations, patch, merge).

Who may see a contact: admins, any contact; agents, a contact with at least one conversation in an inbox
they belong to (others are a 404, as for conversations). The same rule decides who may patch it; a merge
needs the caller to see both contacts. Writes go through `InboxService`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator
from starlette.requests import Request
from starlette.responses import Response

from inbox.api.common import Body, Changes, Id, Query, path_id
from inbox.api.shapes import ContactDetail, ContactOut, ContactPage
from inbox.errors import Invalid, NotFound
from inbox.http.routing import Api, caller, json, parse_body, parse_query
from inbox.http.services import services
from inbox.read import access, queries
from inbox.service import InboxService
from inbox.store.models import Agent, Contact

api = Api()


class ContactQuery(Query):
    q: str | None = Field(default=None, max_length=200, description="searches name, email, phone, identities")
    cursor: str | None = Field(default=None, max_length=200, description="`next_cursor` of the previous page")
    limit: int = Field(default=25, ge=1, le=100)


class ContactPatch(Changes):
    """Any of these; `null` clears email or phone."""

    nullable = frozenset({"name", "email", "phone"})

    name: str | None = Field(default=None, max_length=300)
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(default=None, max_length=64, pattern=r"^\+?[0-9][0-9 ().\-]{2,}$")
    attributes: dict[str, Any] | None = Field(default=None, description="replaces the custom attributes")

    @model_validator(mode="after")
    def _consistent(self) -> ContactPatch:
        given = self.model_fields_set
        if not given:
            raise ValueError(f"give at least one of {', '.join(type(self).model_fields)}")
        if "attributes" in given and self.attributes is None:
            raise ValueError("attributes: use {} to remove every attribute")
        return self

    def fields(self) -> dict[str, Any]:
        values = self.given()
        if "name" in values:
            values["name"] = (values["name"] or "").strip()
        if values.get("email"):
            values["email"] = values["email"].strip().lower()
        return values


class ContactMerge(Body):
    into_id: Id = Field(description="the contact that remains; this one folds into it")


async def _visible(request: Request, agent: Agent, contact_id: int) -> tuple[Contact, frozenset[int] | None]:
    store = services(request).store
    visible = await access.inbox_ids(store, agent)
    async with store.session() as session:
        contact = await queries.contact_visible(session, contact_id, visible)
    if contact is None:
        raise NotFound(f"contact {contact_id} not found")
    return contact, visible


def _service(request: Request) -> InboxService:
    service: InboxService = services(request).service
    return service


@api.route(
    "GET",
    "/api/v1/contacts",
    summary="List contacts (keyset pages)",
    tag="contacts",
    query=ContactQuery,
    response=ContactPage,
)
async def list_contacts(request: Request) -> Response:
    who = await caller(request)
    query = parse_query(request, ContactQuery)
    store = services(request).store
    visible = await access.inbox_ids(store, who.agent)
    after = queries.id_cursor(query.cursor) if query.cursor else None
    async with store.session() as session:
        items, next_cursor = await queries.contact_page(
            session, visible, query.q.strip() if query.q else None, after, query.limit
        )
    return json({"items": items, "next_cursor": next_cursor})


@api.route(
    "GET",
    "/api/v1/contacts/{contact_id:int}",
    summary="Get a contact with its identities and conversations on every channel you may see",
    tag="contacts",
    response=ContactDetail,
)
async def get_contact(request: Request) -> Response:
    who = await caller(request)
    contact, visible = await _visible(request, who.agent, path_id(request, "contact_id", "contact"))
    async with services(request).store.session() as session:
        return json(await queries.contact_detail(session, contact, visible))


@api.route(
    "PATCH",
    "/api/v1/contacts/{contact_id:int}",
    summary="Change name, email, phone or attributes",
    tag="contacts",
    body=ContactPatch,
    response=ContactOut,
)
async def patch_contact(request: Request) -> Response:
    who = await caller(request)
    patch = await parse_body(request, ContactPatch)
    contact, _ = await _visible(request, who.agent, path_id(request, "contact_id", "contact"))
    assert contact.id is not None
    return json(await _service(request).update_contact(contact.id, patch.fields()))


@api.route(
    "POST",
    "/api/v1/contacts/{contact_id:int}/merge",
    summary="Merge this contact into `into_id` (identities and conversations move)",
    tag="contacts",
    body=ContactMerge,
    response=ContactOut,
)
async def merge_contact(request: Request) -> Response:
    who = await caller(request)
    merge = await parse_body(request, ContactMerge)
    source, _ = await _visible(request, who.agent, path_id(request, "contact_id", "contact"))
    try:
        target, _ = await _visible(request, who.agent, merge.into_id)
    except NotFound as exc:
        raise Invalid(f"into_id: {exc.detail}") from exc
    assert source.id is not None and target.id is not None
    return json(await _service(request).merge_contacts(source.id, target.id))
