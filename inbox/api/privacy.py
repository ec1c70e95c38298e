"""HTTP API: privacy requests about a contact, for admins — export everything as one zip archive, erase.

Both are audited (`contact.exported`, `contact.erased`) by `InboxService`; erasure publishes `contact.erased`.
"""

from __future__ import annotations

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from inbox.api.common import path_id
from inbox.http.routing import Api, json, permitted
from inbox.http.services import services
from inbox.read.permissions import Action
from inbox.service import InboxService

api = Api()


class Erased(BaseModel):
    id: int
    conversation_ids: list[int]


def _service(request: Request) -> InboxService:
    service: InboxService = services(request).service
    return service


@api.route(
    "GET",
    "/api/v1/contacts/{contact_id:int}/export",
    summary="Everything stored about a contact: contact.json and its attachments in one zip archive",
    tag="privacy",
    auth="admin",
)
async def export_contact(request: Request) -> Response:
    await permitted(request, Action.EXPORT)
    contact_id = path_id(request, "contact_id", "contact")
    archive = await _service(request).contact_archive(contact_id)
    return Response(
        archive,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="contact-{contact_id}.zip"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@api.route(
    "POST",
    "/api/v1/contacts/{contact_id:int}/erase",
    summary="Erase a contact: identity, details, message contents and attachments (conversations stay for reports)",
    tag="privacy",
    auth="admin",
    response=Erased,
)
async def erase_contact(request: Request) -> Response:
    await permitted(request, Action.ERASE)
    contact_id = path_id(request, "contact_id", "contact")
    return json(await _service(request).erase_contact(contact_id))
