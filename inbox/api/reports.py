"""HTTP API: support reports (`GET /api/v1/reports/summary`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from inbox.clock import parse_iso, utcnow
from inbox.errors import Invalid, NotFound
from inbox.http.routing import Api, caller, json, parse_query
from inbox.http.schema import Id
from inbox.read import access
from inbox.reports import selfservice as reports_selfservice
from inbox.reports import summary as reports

api = Api()


EARLIEST = datetime.min.replace(tzinfo=UTC)
ISO: dict[str, Any] = {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]}


class SummaryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_: str | None = Field(
        default=None, alias="from", description="ISO 8601 start (default: 30 days ago)", json_schema_extra=ISO
    )
    to: str | None = Field(default=None, description="ISO 8601 end, exclusive (default: now)", json_schema_extra=ISO)
    inbox_id: Id | None = None


@api.route("GET", "/api/v1/reports/summary", summary="Support metrics for a period", tag="reports", query=SummaryQuery)
async def report_summary(request: Request) -> Response:
    agent = (await caller(request)).agent
    query = parse_query(request, SummaryQuery)
    try:
        end = parse_iso(query.to) if query.to else utcnow()
        start = parse_iso(query.from_) if query.from_ else end - timedelta(days=30)
    except (ValueError, OverflowError) as exc:
        raise Invalid(f"query.from/to: not an ISO 8601 timestamp ({exc})") from exc
    if start >= end:
        raise Invalid("query.from: must be before to")
    if end - start > start - EARLIEST:  # the figures compare with the period before: it must fit the calendar
        raise Invalid("query.from: too early (the period before it, for comparison, would start before year 1)")
    visible = await access.inbox_ids(request.app.state.store, agent)
    if query.inbox_id is not None and visible is not None and query.inbox_id not in visible:
        raise NotFound(f"inbox {query.inbox_id} not found")
    data = await reports.summary(
        request.app.state.store, start=start, end=end, inbox_ids=visible, inbox_id=query.inbox_id
    )
    data |= await reports_selfservice.summary(
        request.app.state.store, start=start, end=end, inbox_ids=visible, inbox_id=query.inbox_id
    )
    return json(data)
