"""HTTP API: quarantined (poison) messages — admins only.

List them with their reason, download the raw original, retry one (the channel takes the original again,
after a fix: `channels.base.Reingesting`) or discard it. Agents get 403: a quarantined mail may be hostile
and was never threaded, so it belongs to nobody's conversation list.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from channels.base import DeliveryError, Reingesting
from inbox.api.common import Id, Query, path_id
from inbox.errors import Conflict, Invalid
from inbox.gateway.quarantine import Held, Quarantine
from inbox.http.routing import Api, admin, json, parse_query
from inbox.http.services import services

log = logging.getLogger(__name__)
api = Api()


class QuarantineQuery(Query):
    inbox_id: Id | None = None


def view(held: Held) -> dict[str, Any]:
    row = held.row
    return {
        "id": row.id,
        "inbox_id": row.inbox_id,
        "inbox_name": held.inbox_name,  # None: the inbox was deleted (the mail can be downloaded or discarded)
        "channel": held.channel,
        "inbox_deleted": held.inbox_name is None,
        "reason": row.reason,
        "sender": row.sender,
        "subject": row.subject,
        "size": row.size,
        "attempts": row.attempts,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "raw_url": f"/api/v1/quarantine/{row.id}/raw",
    }


def _quarantine(request: Request) -> Quarantine:
    found: Quarantine = services(request).host.quarantined
    return found


@api.route(
    "GET",
    "/api/v1/quarantine",
    summary="Messages in quarantine (poison mail)",
    tag="quarantine",
    auth="admin",
    query=QuarantineQuery,
)
async def list_quarantined(request: Request) -> Response:
    await admin(request)
    query = parse_query(request, QuarantineQuery)
    return json({"items": [view(held) for held in await _quarantine(request).listing(query.inbox_id)]})


@api.route(
    "GET",
    "/api/v1/quarantine/{quarantined_id:int}/raw",
    summary="Download the raw original of a quarantined message",
    tag="quarantine",
    auth="admin",
)
async def download_raw(request: Request) -> Response:
    await admin(request)
    quarantined_id = path_id(request, "quarantined_id", "quarantined message")
    row, raw = await _quarantine(request).raw(quarantined_id)
    return Response(
        raw,
        media_type="message/rfc822",
        headers={
            "content-disposition": f'attachment; filename="quarantined-{row.id}.eml"',
            "x-content-type-options": "nosniff",
            "content-security-policy": "default-src 'none'; sandbox",
            "cache-control": "no-store",
        },
    )


@api.route(
    "POST",
    "/api/v1/quarantine/{quarantined_id:int}/retry",
    summary="Retry a quarantined message (after a fix); 422 with the reason when it still fails",
    tag="quarantine",
    auth="admin",
)
async def retry(request: Request) -> Response:
    await admin(request)
    quarantined_id = path_id(request, "quarantined_id", "quarantined message")
    quarantine = _quarantine(request)
    row, raw = await quarantine.raw(quarantined_id)
    inbox = await services(request).host.inbox(row.inbox_id)
    if inbox is None:
        raise Conflict(
            f"inbox {row.inbox_id} of quarantined message {quarantined_id} was deleted: "
            "download the original or discard it"
        )
    channel = services(request).channels.get(inbox.channel)
    if not isinstance(channel, Reingesting):
        raise Conflict(f"the {inbox.channel} channel cannot retry quarantined messages")
    try:
        delivered = await channel.reingest(inbox, raw)
    except DeliveryError as error:
        reason = error.reason
    except Exception as error:  # the same failure that quarantined it (a store or channel bug): keep it
        log.exception("quarantine: retrying message %s failed", quarantined_id)
        reason = f"{type(error).__name__}: {error}"
    else:
        await quarantine.release(quarantined_id)
        if delivered is None:
            return json({"delivered": None})
        return json(
            {
                "delivered": {
                    "message_id": delivered.message_id,
                    "conversation_id": delivered.conversation_id,
                    "created": delivered.created,
                }
            }
        )
    await quarantine.failed_again(quarantined_id, reason)
    raise Invalid(f"quarantined message {quarantined_id} still fails: {reason}")


@api.route(
    "DELETE",
    "/api/v1/quarantine/{quarantined_id:int}",
    summary="Discard a quarantined message (it is not quarantined again if it arrives again)",
    tag="quarantine",
    status=204,
    auth="admin",
)
async def discard(request: Request) -> Response:
    await admin(request)
    await _quarantine(request).discard(path_id(request, "quarantined_id", "quarantined message"))
    return Response(status_code=204)
