"""`GET /readyz`: may this process take traffic? Distinct from `/healthz` (the process answers at all).

Ready means: the database answers within a few seconds, its schema is at the migrations' head (a process
started before `switchboard migrate` finished is not ready), and the app's workers (outbox, timers,
receivers) were started by its lifespan and none of them died. Otherwise 503 with `{"status":
"unavailable", "reasons": [...]}`, one sentence per failed condition. It reads, never writes.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from inbox.http.services import services
from inbox.store.engine import Store
from inbox.store.migrate import alembic_config

DATABASE_TIMEOUT_SECONDS = 3.0


@functools.cache
def migration_heads() -> frozenset[str]:
    """The revisions `switchboard migrate` brings a database to (read once from the migration scripts)."""
    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


async def database_reasons(store: Store) -> list[str]:
    """Why the database is not ready (empty when it is): unreachable, or its schema not at head."""
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT_SECONDS):
            async with store.session() as session:
                rows = (await session.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
    except TimeoutError:
        return [f"database: no answer within {DATABASE_TIMEOUT_SECONDS:.0f} s"]
    except Exception as exc:  # unreachable, or no alembic_version table (never migrated)
        return [f"database: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}".rstrip()]
    current = frozenset(rows)
    if current != migration_heads():
        found = ", ".join(sorted(current)) or "none"
        return [f"migrations: the database is at {found}, the code needs {', '.join(sorted(migration_heads()))}"]
    return []


def worker_reasons(workers: list[asyncio.Task[Any]] | None) -> list[str]:
    """Why the workers are not ready: not started yet (or stopping), or one of them died with an error."""
    if workers is None:
        return ["workers: not started"]
    reasons: list[str] = []
    for task in workers:
        if task.done() and not task.cancelled() and task.exception() is not None:
            reasons.append(f"workers: {task.get_name()} stopped ({type(task.exception()).__name__})")
    return reasons


async def readyz(request: Request) -> Response:
    """Readiness: database reachable, migrations at head, workers started (else 503 and why)."""
    state = services(request)
    reasons = worker_reasons(getattr(state, "workers", None)) + await database_reasons(state.store)
    if reasons:
        return JSONResponse({"status": "unavailable", "reasons": reasons}, status_code=503)
    return JSONResponse({"status": "ready"})
