"""HTTP API: the audit log, read-only (`GET /api/v1/audit`, also at `/api/v1/audit_log`), for admins.

There is no route to change or delete an entry: other methods answer 405.
"""

from __future__ import annotations

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from inbox.api.common import Id, Query
from inbox.audit import log
from inbox.clock import parse_iso
from inbox.errors import Invalid
from inbox.http.routing import Api, json, parse_query, permitted
from inbox.http.services import services
from inbox.read.permissions import Action
from inbox.read.queries import encode_cursor, id_cursor

api = Api()


class AuditQuery(Query):
    actor: Id | None = Field(default=None, description="an agent id")
    action: str | None = Field(
        default=None, max_length=64, description="an action (`agent.role_changed`) or a prefix ending in `.`"
    )
    from_: str | None = Field(default=None, alias="from", max_length=64, description="ISO 8601 start, inclusive")
    to: str | None = Field(default=None, max_length=64, description="ISO 8601 end, exclusive")
    cursor: str | None = Field(default=None, max_length=200, description="`next_cursor` of the previous page")
    limit: int = Field(default=50, ge=1, le=200)


async def list_audit(request: Request) -> Response:
    await permitted(request, Action.AUDIT)
    query = parse_query(request, AuditQuery)
    try:
        start = parse_iso(query.from_) if query.from_ else None
        end = parse_iso(query.to) if query.to else None
    except ValueError as exc:
        raise Invalid(f"query.from/to: not an ISO 8601 timestamp ({exc})") from exc
    where = log.AuditFilter(actor_id=query.actor, action=query.action, start=start, end=end)
    before = id_cursor(query.cursor) if query.cursor else None
    items, last = await log.page(services(request).store, where, before_id=before, limit=query.limit)
    return json({"items": items, "next_cursor": encode_cursor([last]) if last is not None else None})


for _path in ("/api/v1/audit", "/api/v1/audit_log"):
    api.route(
        "GET", _path, summary="The audit log, newest first (keyset pages)", tag="audit", query=AuditQuery, auth="admin"
    )(list_audit)
