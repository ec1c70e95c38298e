"""CSV exports, streamed: every report table (rows of `kpi.report` / `series.timeseries`) and the conversations
of a period, one row each, read in keyset-paginated pages of `PAGE` rows so memory stays constant at any size.

Cells that a spreadsheet would run as a formula (starting with = + - @ tab or CR) are prefixed with `'`.
Read-only.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from inbox.clock import iso
from inbox.reports.facts import Fact, Scope, calendars, load_facts
from inbox.reports.kpi import DIMENSIONS
from inbox.store.engine import Store
from inbox.store.models import Agent, Contact, Conversation, CsatSurvey, Inbox, Team
from inbox.workflow.hours import ALWAYS_OPEN, Calendar

PAGE = 500
TIMES = ("wall", "business")
STATS = ("count", "average_seconds", "median_seconds", "p90_seconds")
CONVERSATION_COLUMNS = (
    "id", "link", "contact_name", "contact_email", "contact_phone", "inbox", "channel", "assignee", "team",
    "status", "labels", "created_at", "first_reply_at", "first_response_seconds", "first_response_business_seconds",
    "resolved_at", "resolution_seconds", "resolution_business_seconds", "csat_rating", "csat_comment",
)  # fmt: skip


def cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def lines(rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """CSV text, one chunk per row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([cell(value) for value in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def kpi_table(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """A per-dimension KPI table (`kpi.report()["kpis"]["by"][dimension]`) as header and rows."""
    header = ["key", "name", "created", "resolved", "reopened", "replies_per_resolution"]
    for measure in ("first_response", "next_response", "resolution"):
        header += [f"{measure}_{clock}_{stat}" for clock in TIMES for stat in STATS]
    body = []
    for row in rows:
        line = [
            row["key"],
            row["name"],
            row["created"],
            row["resolved"],
            row["reopened"],
            row["replies_per_resolution"],
        ]
        for measure in ("first_response", "next_response", "resolution"):
            line += [row[measure][clock][stat] for clock in TIMES for stat in STATS]
        body.append(line)
    return header, body


def report_table(report: str, data: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The table behind `report` (a dimension, csat_comments, volume_by_hour, labels, workload) of a summary."""
    if report in DIMENSIONS:
        return kpi_table(data["kpis"]["by"][report])
    if report == "csat_comments":
        head = ["conversation_id", "rating", "comment", "responded_at", "agent", "contact"]
        return head, [[row[key] for key in head] for row in data["csat_comments"]["newest"]]
    if report == "volume_by_hour":
        days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        return ["weekday", *[f"{hour:02d}" for hour in range(24)]], [
            [days[index], *counts] for index, counts in enumerate(data["volume_by_hour"]["weekdays"])
        ]
    if report == "labels":
        return ["name", "conversations", "previous"], [
            [r["name"], r["conversations"], r["previous"]] for r in data["labels"]
        ]
    if report == "workload":
        return ["agent_id", "name", "open", "resolved"], [
            [r["agent_id"], r["name"], r["open"], r["resolved"]] for r in data["workload"]
        ]
    raise KeyError(report)


REPORTS = (*DIMENSIONS, "csat_comments", "volume_by_hour", "labels", "workload")


def series_table(data: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """A time series as rows: one per group and bucket, the previous period beside."""
    header = ["group", "start", "end", "value", "previous_start", "previous"]
    rows = [
        [item["name"], p["start"], p["end"], p["value"], p["previous_start"], p["previous"]]
        for item in data["series"]
        for p in item["points"]
    ]
    return header, rows


async def conversations(
    store: Store, *, start: datetime, end: datetime, scope: Scope, base_url: str, calendar: Calendar | None = None
) -> AsyncIterator[str]:
    """The conversations created in [start, end), one CSV row each, read page by page (keyset on id)."""
    for chunk in lines([CONVERSATION_COLUMNS]):
        yield chunk
    after = 0
    base = base_url.rstrip("/")
    while True:
        async with store.session() as session:
            cals = await calendars(session, calendar)
            facts = await load_facts(
                session,
                scope,
                col(Conversation.created_at) >= start,
                col(Conversation.created_at) < end,
                col(Conversation.id) > after,
                limit=PAGE,
            )
            if not facts:
                return
            ids = [fact.id for fact in facts]
            people = await _people(session, facts)
            ratings = {cid: (rating, comment) for cid, rating, comment in await session.execute(_latest_surveys(ids))}
        rows = [_row(fact, people, ratings, cals.get(fact.inbox_id, ALWAYS_OPEN), base) for fact in facts]
        for chunk in lines(rows):
            yield chunk
        after = ids[-1]


def _latest_surveys(ids: list[int]) -> Any:
    return (
        select(col(CsatSurvey.conversation_id), col(CsatSurvey.rating), col(CsatSurvey.comment))
        .where(col(CsatSurvey.conversation_id).in_(ids), col(CsatSurvey.rating).is_not(None))
        .order_by(col(CsatSurvey.id))  # the latest answer wins in the dict
    )


async def _people(session: Any, facts: Sequence[Fact]) -> dict[str, dict[Any, Any]]:
    contacts = {f.contact_id for f in facts}
    found: dict[str, dict[Any, Any]] = {
        "contact": {
            cid: (name, email, phone)
            for cid, name, email, phone in await session.execute(
                select(col(Contact.id), col(Contact.name), col(Contact.email), col(Contact.phone)).where(
                    col(Contact.id).in_(contacts)
                )
            )
        },
        "agent": dict((await session.execute(select(col(Agent.id), col(Agent.name)))).all()),
        "team": dict((await session.execute(select(col(Team.id), col(Team.name)))).all()),
        "inbox": dict((await session.execute(select(col(Inbox.id), col(Inbox.name)))).all()),
    }
    return found


def _row(
    fact: Fact, people: dict[str, dict[Any, Any]], ratings: dict[int, tuple[Any, Any]], cal: Calendar, base: str
) -> list[Any]:
    name, email, phone = people["contact"].get(fact.contact_id, ("", None, None))
    first = fact.first_reply_at
    done = fact.resolved_at
    rating, comment = ratings.get(fact.id, (None, ""))
    return [
        fact.id,
        f"{base}/#conversation/{fact.id}",
        name,
        email,
        phone,
        people["inbox"].get(fact.inbox_id, ""),
        fact.channel,
        people["agent"].get(fact.assignee_id, ""),
        people["team"].get(fact.team_id, ""),
        fact.status,
        ";".join(fact.labels),
        iso(fact.created_at),
        iso(first),
        round((first - fact.created_at).total_seconds()) if first else None,
        round(cal.business_seconds(fact.created_at, first)) if first else None,
        iso(done),
        round((done - fact.created_at).total_seconds()) if done else None,
        round(cal.business_seconds(fact.created_at, done)) if done else None,
        rating,
        comment,
    ]
