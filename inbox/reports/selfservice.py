"""Self-service numbers for a time range: article views, searches (and the top queries that found
nothing), deflections, and proactive greetings shown / replied (conversion).

Read-only aggregates over `SelfServeEvent` rows, limited to the inboxes the caller may see; merged into
`GET /api/v1/reports/summary` as the keys `self_service` and `proactive`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from inbox.selfserve.store import Kind
from inbox.store.engine import Store
from inbox.store.models import Article, ProactiveRule, SelfServeEvent

TOP = 10


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


async def summary(
    store: Store, *, start: datetime, end: datetime, inbox_ids: frozenset[int] | None, inbox_id: int | None = None
) -> dict[str, Any]:
    """`{"self_service": {…}, "proactive": {…}}` for visitor actions in [start, end)."""

    def scoped(query: Any) -> Any:
        query = query.where(col(SelfServeEvent.created_at) >= start, col(SelfServeEvent.created_at) < end)
        if inbox_ids is not None:
            query = query.where(col(SelfServeEvent.inbox_id).in_(inbox_ids))
        if inbox_id is not None:
            query = query.where(col(SelfServeEvent.inbox_id) == inbox_id)
        return query

    async with store.session() as session:
        counts = dict(
            (
                await session.execute(
                    scoped(select(SelfServeEvent.kind, func.count()).group_by(col(SelfServeEvent.kind)))
                )
            ).all()
        )
        no_result = (
            await session.execute(
                scoped(
                    select(SelfServeEvent.query, func.count().label("n"))
                    .where(col(SelfServeEvent.kind) == Kind.SEARCH_EMPTY)
                    .group_by(col(SelfServeEvent.query))
                    .order_by(func.count().desc(), col(SelfServeEvent.query))
                    .limit(TOP)
                )
            )
        ).all()
        viewed = (
            await session.execute(
                scoped(
                    select(SelfServeEvent.article_id, Article.title, func.count().label("n"))
                    .join(Article, col(Article.id) == col(SelfServeEvent.article_id))
                    .where(col(SelfServeEvent.kind) == Kind.VIEW)
                    .group_by(col(SelfServeEvent.article_id), col(Article.title))
                    .order_by(func.count().desc(), col(SelfServeEvent.article_id))
                    .limit(TOP)
                )
            )
        ).all()
        per_rule = (
            await session.execute(
                scoped(
                    select(SelfServeEvent.rule_id, SelfServeEvent.kind, func.count())
                    .where(col(SelfServeEvent.kind).in_([Kind.PROACTIVE_SHOWN, Kind.PROACTIVE_REPLIED]))
                    .group_by(col(SelfServeEvent.rule_id), col(SelfServeEvent.kind))
                )
            )
        ).all()
        rule_ids = sorted({row[0] for row in per_rule if row[0] is not None})
        rules = {
            rule.id: rule
            for rule in (
                await session.execute(select(ProactiveRule).where(col(ProactiveRule.id).in_(rule_ids)))
            ).scalars()
        }
    searches = counts.get(Kind.SEARCH, 0) + counts.get(Kind.SEARCH_EMPTY, 0)
    deflected, not_deflected = counts.get(Kind.DEFLECTED, 0), counts.get(Kind.NOT_DEFLECTED, 0)
    shown, replied = counts.get(Kind.PROACTIVE_SHOWN, 0), counts.get(Kind.PROACTIVE_REPLIED, 0)
    by_rule: dict[int, dict[str, Any]] = {}
    for rule_id, kind, count in per_rule:
        if rule_id is None:
            continue
        rule = rules.get(rule_id)
        entry = by_rule.setdefault(
            rule_id, {"rule_id": rule_id, "message": rule.message if rule else None, "shown": 0, "replied": 0}
        )
        entry["shown" if kind == Kind.PROACTIVE_SHOWN else "replied"] += count
    for entry in by_rule.values():
        entry["conversion_rate"] = _rate(entry["replied"], entry["shown"])
    return {
        "self_service": {
            "article_views": counts.get(Kind.VIEW, 0),
            "top_articles": [{"article_id": a, "title": t, "views": n} for a, t, n in viewed],
            "searches": searches,
            "searches_without_result": counts.get(Kind.SEARCH_EMPTY, 0),
            "top_queries_without_result": [{"query": q, "count": n} for q, n in no_result],
            "deflections": deflected,
            "not_deflected": not_deflected,
            "deflection_rate": _rate(deflected, deflected + not_deflected),
        },
        "proactive": {
            "shown": shown,
            "replied": replied,
            "conversion_rate": _rate(replied, shown),
            "rules": sorted(by_rule.values(), key=lambda entry: entry["rule_id"]),
        },
    }
