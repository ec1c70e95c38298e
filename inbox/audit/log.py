"""Reading the audit log (newest first, keyset pages) and recording sign-ins. Never updates or deletes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from inbox.clock import iso
from inbox.store import audit
from inbox.store.engine import Store
from inbox.store.models import Agent, AuditEntry


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor_id: int | None = None
    action: str | None = None  # exact, or a prefix ending in "." ("agent." → every agent entry)
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive


def view(row: AuditEntry) -> dict[str, Any]:
    return {
        "id": row.id,
        "created_at": iso(row.created_at),
        "action": row.action,
        "actor": {"id": row.actor_id, "name": row.actor_name},
        "ip": row.ip,
        "target": {"type": row.target_type, "id": row.target_id},
        "before": row.before,
        "after": row.after,
    }


async def page(
    store: Store, where: AuditFilter, *, before_id: int | None, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of entries, newest first, and the id to pass as the next cursor (None at the end)."""
    query = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit + 1)
    if before_id is not None:
        query = query.where(col(AuditEntry.id) < before_id)
    if where.actor_id is not None:
        query = query.where(col(AuditEntry.actor_id) == where.actor_id)
    if where.action:
        if where.action.endswith("."):
            query = query.where(col(AuditEntry.action).startswith(where.action))
        else:
            query = query.where(col(AuditEntry.action) == where.action)
    if where.start is not None:
        query = query.where(col(AuditEntry.created_at) >= where.start)
    if where.end is not None:
        query = query.where(col(AuditEntry.created_at) < where.end)
    async with store.session() as session:
        rows = list((await session.execute(query)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return [view(row) for row in rows], (rows[-1].id if more and rows else None)


async def sign_in(store: Store, *, email: str, agent: Agent | None, ip: str) -> None:
    """Record a sign-in: `auth.signed_in` for `agent`, or `auth.sign_in_failed` for the attempted email."""
    async with store.transaction() as tx:
        if agent is not None:
            actor = audit.Actor(agent.id, agent.email, ip)
            await audit.record(tx, "auth.signed_in", target_type="agent", target_id=agent.id, actor=actor)
        else:
            actor = audit.Actor(None, email, ip)
            await audit.record(tx, "auth.sign_in_failed", target_type="agent", after={"email": email}, actor=actor)
