"""Time series of one metric in day / week / month buckets of a time zone, optionally one series per group
(agent, team, inbox, channel, label), with the previous period of the same length beside each bucket.

Buckets follow the local calendar (a day is midnight to midnight in the zone, weeks start on Monday, months on
the 1st), so a day across a daylight-saving change lasts 23 or 25 hours; the first and last bucket are cut to
the period. Read-only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import col

from inbox.reports.facts import Fact, Scope, calendars, load_facts
from inbox.reports.kpi import DIMENSIONS, figures, keys_of, names, period_condition
from inbox.store.engine import Store
from inbox.store.models import Conversation
from inbox.workflow.hours import Calendar

BUCKETS = ("day", "week", "month")
MAX_BUCKETS = 400

# metric → how to read it from `kpi.figures` of the bucket
METRICS: dict[str, Callable[[dict[str, Any]], float | int | None]] = {
    "created": lambda f: f["created"],
    "resolved": lambda f: f["resolved"],
    "reopened": lambda f: f["reopened"],
    "replies_per_resolution": lambda f: f["replies_per_resolution"],
    "first_response_median": lambda f: f["first_response"]["wall"]["median_seconds"],
    "first_response_business_median": lambda f: f["first_response"]["business"]["median_seconds"],
    "first_response_p90": lambda f: f["first_response"]["wall"]["p90_seconds"],
    "next_response_median": lambda f: f["next_response"]["wall"]["median_seconds"],
    "next_response_business_median": lambda f: f["next_response"]["business"]["median_seconds"],
    "resolution_median": lambda f: f["resolution"]["wall"]["median_seconds"],
    "resolution_business_median": lambda f: f["resolution"]["business"]["median_seconds"],
}
BACKLOG = "backlog_open"  # conversations open (not resolved) at the end of each bucket
ALL_METRICS = (*METRICS, BACKLOG)


def floor(at: datetime, bucket: str, zone: ZoneInfo) -> datetime:
    """The local start of the bucket holding `at`, as an aware instant."""
    local = at.astimezone(zone)
    day = local.date()
    if bucket == "week":
        day -= timedelta(days=day.weekday())
    elif bucket == "month":
        day = day.replace(day=1)
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def following(start: datetime, bucket: str, zone: ZoneInfo) -> datetime:
    """The local start of the bucket after the one starting at `start`."""
    day = start.astimezone(zone).date()
    if bucket == "day":
        day += timedelta(days=1)
    elif bucket == "week":
        day += timedelta(days=7)
    else:
        day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def buckets(start: datetime, end: datetime, bucket: str, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """Local calendar buckets covering [start, end), the first and last cut to the period."""
    found: list[tuple[datetime, datetime]] = []
    edge = floor(start, bucket, zone)
    while edge < end:
        after = following(edge, bucket, zone)
        found.append((max(edge, start), min(after, end)))
        edge = after
        if len(found) > MAX_BUCKETS:
            raise ValueError(f"more than {MAX_BUCKETS} {bucket} buckets; choose a larger bucket or a shorter period")
    return found


def value(facts: Sequence[Fact], cals: dict[int, Calendar], metric: str, start: datetime, end: datetime) -> Any:
    if metric == BACKLOG:  # open at the bucket's end (the latest resolution counts: see docs/REPORTS.md)
        return sum(
            1 for fact in facts if fact.created_at < end and (fact.resolved_at is None or fact.resolved_at >= end)
        )
    return METRICS[metric](figures(facts, cals, start, end))


def points(
    facts: Sequence[Fact],
    cals: dict[int, Calendar],
    metric: str,
    current: list[tuple[datetime, datetime]],
    previous: list[tuple[datetime, datetime]],
) -> list[dict[str, Any]]:
    rows = []
    for index, (start, end) in enumerate(current):
        before = previous[index] if index < len(previous) else None
        rows.append(
            {
                "start": start.isoformat(),
                "end": end.isoformat(),
                "value": value(facts, cals, metric, start, end),
                "previous_start": before[0].isoformat() if before else None,
                "previous": value(facts, cals, metric, *before) if before else None,
            }
        )
    return rows


async def timeseries(
    store: Store,
    *,
    metric: str,
    bucket: str,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    scope: Scope,
    group_by: str | None = None,
    calendar: Calendar | None = None,
) -> dict[str, Any]:
    """One series (or one per group, busiest first) of `metric` with the previous period beside it."""
    if metric not in ALL_METRICS:
        raise ValueError(f"unknown metric {metric!r}")
    if group_by is not None and group_by not in DIMENSIONS:
        raise ValueError(f"unknown group {group_by!r}")
    span = end - start
    current = buckets(start, end, bucket, zone)
    previous = buckets(start - span, start, bucket, zone)
    async with store.session() as session:
        cals = await calendars(session, calendar)
        facts = await load_facts(session, scope, period_condition(start - span, end) | (_open_before(start - span)))
        labels = await names(session)
    series: list[dict[str, Any]] = []
    if group_by is None:
        series.append({"key": None, "name": "All", "points": points(facts, cals, metric, current, previous)})
    else:
        groups: dict[Any, list[Fact]] = {}
        keys = keys_of(group_by)
        for fact in facts:
            for key in keys(fact):
                groups.setdefault(key, []).append(fact)
        for key, items in sorted(groups.items(), key=lambda item: (-len(item[1]), str(item[0]))):
            name = "(none)" if key is None else labels[group_by].get(key, str(key))
            series.append({"key": key, "name": name, "points": points(items, cals, metric, current, previous)})
    return {
        "metric": metric,
        "bucket": bucket,
        "timezone": zone.key,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "previous_from": (start - span).isoformat(),
        "previous_to": start.isoformat(),
        "group_by": group_by,
        "series": series,
    }


def _open_before(at: datetime) -> Any:
    """Conversations created before `at` and not resolved by then (the backlog carried into the period)."""
    return (col(Conversation.created_at) < at) & (
        col(Conversation.resolved_at).is_(None) | (col(Conversation.resolved_at) >= at)
    )
