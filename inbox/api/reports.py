"""HTTP API: support reports — `GET /api/v1/reports/summary`, `/timeseries` (JSON), `/timeseries.svg` (the
chart) and `/{report}.csv` (streamed exports). Validate, resolve the caller's scope, call one report function."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from inbox.clock import parse_iso, utcnow
from inbox.errors import Invalid, NotFound
from inbox.http.routing import Api, caller, json, parse_query
from inbox.http.schema import Id
from inbox.http.services import services
from inbox.read import access
from inbox.reports import export, kpi, series, spikes, svg
from inbox.reports import selfservice as reports_selfservice
from inbox.reports import summary as reports
from inbox.reports.facts import Scope, calendar_for
from inbox.store.engine import Store
from inbox.store.models import Inbox, Organization

api = Api()


EARLIEST = datetime.min.replace(tzinfo=UTC)
ISO: dict[str, Any] = {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]}


class SummaryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_: str | None = Field(
        default=None,
        alias="from",
        description="ISO 8601 start or a local date (default: 30 days ago)",
        json_schema_extra=ISO,
    )
    to: str | None = Field(
        default=None, description="ISO 8601 end or a local date, exclusive (default: now)", json_schema_extra=ISO
    )
    inbox_id: Id | None = None
    organization_id: Id | None = None
    tz: str | None = Field(
        default=None, description="IANA time zone (default: the inbox's business-hours zone, else UTC)"
    )


class TimeseriesQuery(SummaryQuery):
    metric: Literal[series.ALL_METRICS] = Field(description="what to count or measure per bucket")  # type: ignore[valid-type]
    bucket: Literal["day", "week", "month"] = "day"
    group_by: Literal["agent", "team", "inbox", "channel", "label"] | None = None


async def zone_of(store: Store, tz: str | None, inbox_id: int | None) -> ZoneInfo:
    """The report's time zone: `tz`, else the inbox's business-hours zone, else UTC."""
    if tz is not None:
        try:
            return ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise Invalid(f"query.tz: unknown time zone {tz!r}") from exc
    if inbox_id is not None:
        async with store.session() as session:
            inbox = await session.get(Inbox, inbox_id)
            if inbox is not None:
                return (await calendar_for(session, inbox)).zone
    return ZoneInfo("UTC")


def instant(value: str, zone: ZoneInfo, where: str) -> datetime:
    """ISO 8601 instant, or a date meaning local midnight in `zone`."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(0), tzinfo=zone)
        return parse_iso(value)
    except (ValueError, OverflowError) as exc:
        raise Invalid(f"query.{where}: not an ISO 8601 timestamp or date ({exc})") from exc


async def context(request: Request, query: SummaryQuery) -> tuple[datetime, datetime, ZoneInfo, Scope]:
    """Period, zone and scope of a report request (404 for an inbox or organisation the caller cannot see)."""
    agent = (await caller(request)).agent
    store: Store = services(request).store
    zone = await zone_of(store, query.tz, None)
    end = instant(query.to, zone, "to") if query.to else utcnow()
    start = instant(query.from_, zone, "from") if query.from_ else end - timedelta(days=30)
    if start >= end:
        raise Invalid("query.from: must be before to")
    if end - start > start - EARLIEST:  # the figures compare with the period before: it must fit the calendar
        raise Invalid("query.from: too early (the period before it, for comparison, would start before year 1)")
    visible = await access.inbox_ids(store, agent)
    if query.inbox_id is not None and visible is not None and query.inbox_id not in visible:
        raise NotFound(f"inbox {query.inbox_id} not found")
    if query.organization_id is not None:
        async with store.session() as session:
            if await session.get(Organization, query.organization_id) is None:
                raise NotFound(f"organization {query.organization_id} not found")
    if query.tz is None:
        zone = await zone_of(store, None, query.inbox_id)
    return start, end, zone, Scope(visible, query.inbox_id, query.organization_id)


@api.route("GET", "/api/v1/reports/summary", summary="Support metrics for a period", tag="reports", query=SummaryQuery)
async def report_summary(request: Request) -> Response:
    query = parse_query(request, SummaryQuery)
    start, end, zone, scope = await context(request, query)
    store = services(request).store
    data = await reports.summary(store, start=start, end=end, scope=scope)
    data |= await reports_selfservice.summary(
        store, start=start, end=end, inbox_ids=scope.inbox_ids, inbox_id=scope.inbox_id
    )
    data |= await kpi.report(store, start=start, end=end, scope=scope, zone=zone)
    data["spikes"] = await spikes.spikes(store, end=end, scope=scope)
    return json(data)


async def _series(request: Request) -> dict[str, object]:
    query = parse_query(request, TimeseriesQuery)
    start, end, zone, scope = await context(request, query)
    try:
        return await series.timeseries(
            services(request).store,
            metric=query.metric,
            bucket=query.bucket,
            start=start,
            end=end,
            zone=zone,
            scope=scope,
            group_by=query.group_by,
        )
    except ValueError as exc:
        raise Invalid(f"query.bucket: {exc}") from exc


@api.route(
    "GET",
    "/api/v1/reports/timeseries",
    summary="One metric per day, week or month",
    tag="reports",
    query=TimeseriesQuery,
)
async def report_timeseries(request: Request) -> Response:
    return json(await _series(request))


@api.route(
    "GET",
    "/api/v1/reports/timeseries.svg",
    summary="The time series as an SVG chart",
    tag="reports",
    query=TimeseriesQuery,
)
async def report_timeseries_svg(request: Request) -> Response:
    return Response(
        svg.chart(await _series(request)),
        media_type="image/svg+xml",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


def _csv(name: str, chunks: Any) -> StreamingResponse:
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@api.route(
    "GET", "/api/v1/reports/timeseries.csv", summary="The time series as CSV", tag="reports", query=TimeseriesQuery
)
async def report_timeseries_csv(request: Request) -> Response:
    header, rows = export.series_table(await _series(request))
    return _csv("timeseries", export.lines([header, *rows]))


@api.route(
    "GET",
    "/api/v1/reports/{report}.csv",
    summary="A report table as CSV (conversations, agent, team, inbox, channel, label, csat_comments, "
    "volume_by_hour, labels, workload), streamed",
    tag="reports",
    query=SummaryQuery,
)
async def report_csv(request: Request) -> Response:
    report = request.path_params["report"]
    if report != "conversations" and report not in export.REPORTS:
        raise NotFound(f"report {report!r} not found (one of conversations, {', '.join(export.REPORTS)})")
    query = parse_query(request, SummaryQuery)
    start, end, zone, scope = await context(request, query)
    store = services(request).store
    if report == "conversations":
        base = services(request).config.server.base_url
        return _csv("conversations", export.conversations(store, start=start, end=end, scope=scope, base_url=base))
    data = await reports.summary(store, start=start, end=end, scope=scope)
    data |= await kpi.report(store, start=start, end=end, scope=scope, zone=zone)
    header, rows = export.report_table(report, data)
    return _csv(report, export.lines([header, *rows]))
