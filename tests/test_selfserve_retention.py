"""Measured visitor actions (`SelfServeEvent`) are kept `selfservice.retention_days`: older rows are deleted in
batches by one process's timer (lease `timer:selfserve`), and the self-service report over any range inside
the retained window is the same before and after — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func
from sqlmodel import col, select

from inbox.clock import utcnow
from inbox.config import SelfServiceConfig
from inbox.reports import selfservice as reports_selfservice
from inbox.selfserve.store import Kind, prune
from inbox.store.engine import Store
from inbox.store.models import Article, Cursor, ProactiveRule, SelfServeEvent
from tests.factories import make_inbox
from tests.poll import eventually
from tests.servers.app import live_server, make_config

RETENTION = 400
# (age in days, kind) of each seeded visitor action; the ones older than RETENTION must go.
SEEDED = [
    (1, Kind.VIEW),
    (1, Kind.SEARCH),
    (2, Kind.SEARCH_EMPTY),
    (30, Kind.DEFLECTED),
    (200, Kind.PROACTIVE_SHOWN),
    (200, Kind.PROACTIVE_REPLIED),
    (399, Kind.VIEW),
    (399, Kind.NOT_DEFLECTED),
    (401, Kind.VIEW),
    (401, Kind.SEARCH_EMPTY),
    (500, Kind.PROACTIVE_SHOWN),
    (800, Kind.DEFLECTED),
    (1200, Kind.SEARCH),
]


async def seed(store: Store, now: datetime) -> None:
    inbox = await make_inbox(store, channel="webchat")
    async with store.transaction() as tx:
        article = Article(title="Reset your password", body="Go to settings.", published=True)
        rule = ProactiveRule(inbox_id=inbox.id, message="Need help?")
        tx.add_all([article, rule])
        await tx.flush()
        for index, (age, kind) in enumerate(SEEDED):
            tx.add(
                SelfServeEvent(
                    kind=kind,
                    inbox_id=inbox.id,
                    visitor=f"visitor-{index}",
                    article_id=article.id if kind == Kind.VIEW else None,
                    rule_id=rule.id if kind.startswith("proactive") else None,
                    query="refund" if kind == Kind.SEARCH_EMPTY else None,
                    created_at=now - timedelta(days=age, minutes=index),
                )
            )


async def ages(store: Store, now: datetime) -> list[int]:
    async with store.session() as session:
        rows = (await session.execute(select(SelfServeEvent.created_at))).scalars()
        return sorted((now - created).days for created in rows)


async def test_old_visitor_actions_are_pruned_and_reports_inside_the_window_stay_the_same(store: Store) -> None:
    now = utcnow()
    await seed(store, now)
    start, end = now - timedelta(days=RETENTION), now + timedelta(seconds=1)
    before = await reports_selfservice.summary(store, start=start, end=end, inbox_ids=None)
    assert before["self_service"]["article_views"] == 2 and before["proactive"]["shown"] == 1

    assert await prune(store, retention_days=0, now=now) == 0  # 0 keeps everything
    assert len(await ages(store, now)) == len(SEEDED)
    # A small batch: the delete loop goes round several times and stops by itself.
    assert await prune(store, retention_days=RETENTION, now=now, batch=2) == 5
    assert await ages(store, now) == sorted(age for age, _ in SEEDED if age < RETENTION)
    assert await prune(store, retention_days=RETENTION, now=now) == 0

    after = await reports_selfservice.summary(store, start=start, end=end, inbox_ids=None)
    assert after == before
    older = await reports_selfservice.summary(
        store,
        start=now - timedelta(days=2000),
        end=now - timedelta(days=RETENTION),
        inbox_ids=None,
    )
    assert older["self_service"]["article_views"] == 0 and older["self_service"]["searches"] == 0
    assert older["proactive"]["shown"] == 0 and older["self_service"]["deflections"] == 0


async def test_the_retention_timer_runs_under_a_cluster_lease(db_url: str, tmp_path: Path) -> None:
    config = make_config(db_url, tmp_path, selfservice=SelfServiceConfig(prune_interval_seconds=0.05))
    async with live_server(config) as server:
        store: Store = server.state.store
        now = utcnow()
        await seed(store, now)

        async def pruned() -> bool:
            async with store.session() as session:
                left = (await session.execute(select(func.count()).select_from(SelfServeEvent))).scalar_one()
                oldest = (await session.execute(select(func.min(col(SelfServeEvent.created_at))))).scalar_one()
                lease = await session.get(Cursor, "lease:timer:selfserve")
            fresh = sum(1 for age, _ in SEEDED if age < RETENTION)
            return left == fresh and oldest > now - timedelta(days=RETENTION) and lease is not None

        await eventually(pruned, what="visitor actions older than 400 days were deleted by the leased timer")
