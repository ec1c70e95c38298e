"""`/readyz` (issue 17): 200 only when the database answers, its migrations are at head and the app's workers
started; otherwise 503 with a JSON reason. `/healthz` stays the liveness check (200 whenever it answers)."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import text

from inbox.app import create_app
from inbox.store.engine import Store
from inbox.store.migrate import upgrade
from tests.servers.app import free_port, live_server, make_config


async def test_ready_when_everything_is_up_and_503_when_migrations_are_behind(tmp_path: Path) -> None:
    config = make_config(f"sqlite+aiosqlite:///{tmp_path / 'switchboard.db'}", tmp_path)
    async with live_server(config) as server, httpx.AsyncClient(base_url=server.url) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}
        async with server.state.store.transaction() as tx:
            (head,) = (await tx.execute(text("SELECT version_num FROM alembic_version"))).one()
            await tx.execute(text("UPDATE alembic_version SET version_num = 'an_older_one'"))
        behind = await http.get("/readyz")
        assert behind.status_code == 503, behind.text
        assert behind.json()["status"] == "unavailable"
        assert any(r.startswith("migrations: the database is at an_older_one") for r in behind.json()["reasons"])
        assert (await http.get("/healthz")).status_code == 200  # alive, just not ready
        async with server.state.store.transaction() as tx:
            await tx.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
        assert (await http.get("/readyz")).status_code == 200


async def test_503_before_the_workers_start_and_on_a_database_never_migrated(tmp_path: Path) -> None:
    migrated = f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}"
    store = Store(migrated)
    await upgrade(store)
    await store.close()
    app = create_app(make_config(migrated, tmp_path))  # its lifespan never runs: no workers
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as http:
        answer = await http.get("/readyz")
    await app.state.services.store.close()
    assert answer.status_code == 503 and answer.json()["reasons"] == ["workers: not started"], answer.text

    never = create_app(make_config(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", tmp_path / "other"))
    never.state.services.workers = []  # as if started: only the schema is missing
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=never), base_url="http://app") as http:
        answer = await http.get("/readyz")
    await never.state.services.store.close()
    assert answer.status_code == 503, answer.text
    [reason] = answer.json()["reasons"]
    assert reason.startswith("database: ") and "alembic_version" in reason, reason


async def test_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    closed_port = free_port()
    config = make_config(f"postgresql+asyncpg://sb:sb@127.0.0.1:{closed_port}/sb", tmp_path)
    app = create_app(config)
    app.state.services.workers = []  # as if started: only the database is missing
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as http:
        answer = await http.get("/readyz")
    await app.state.services.store.close()
    assert answer.status_code == 503, answer.text
    [reason] = answer.json()["reasons"]
    assert reason.startswith("database: "), reason
