"""Appending to the audit log: `record(tx, ...)` inside the transaction of the change it describes.

Who is acting comes from `acting`, a context variable the HTTP layer sets once per authenticated request
(`inbox.http.routing.caller`); outside a request (CLI, timers) the actor is the system. Values are masked
here, once: any key that looks like a secret is replaced by `MASK`, at any depth. Nothing here reads,
updates or deletes entries (reading is `inbox.audit.log`; the log is append-only).
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from inbox.store.models import AuditEntry

MASK = "••••"
SECRET_KEY = re.compile(r"secret|password|passwd|token|api_?key|private|credential|hash", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it and from where; `agent_id` None is the system (or a failed sign-in's attempted email)."""

    agent_id: int | None
    name: str
    ip: str = ""


SYSTEM = Actor(None, "system")
acting: contextvars.ContextVar[Actor] = contextvars.ContextVar("audit_actor", default=SYSTEM)


def mask(value: Any) -> Any:
    """`value` with every secret-looking key's value replaced by `MASK` (dicts and lists, at any depth)."""
    if isinstance(value, Mapping):
        return {
            str(name): (MASK if SECRET_KEY.search(str(name)) and item not in (None, "") else mask(item))
            for name, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask(item) for item in value]
    return value


def changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the keys whose values differ, as (before, after)."""
    names = [name for name in {**before, **after} if before.get(name) != after.get(name)]
    return {name: before.get(name) for name in names}, {name: after.get(name) for name in names}


async def record(
    tx: AsyncSession,
    action: str,
    *,
    target_type: str = "",
    target_id: object = "",
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    actor: Actor | None = None,
) -> AuditEntry:
    """Add one entry to the open transaction `tx` (it commits or rolls back with the change)."""
    who = actor or acting.get()
    entry = AuditEntry(
        action=action,
        actor_id=who.agent_id,
        actor_name=who.name[:320],
        ip=who.ip[:64],
        target_type=target_type,
        target_id=str(target_id),
        before=mask(dict(before or {})),
        after=mask(dict(after or {})),
    )
    tx.add(entry)
    return entry
