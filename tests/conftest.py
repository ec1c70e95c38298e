"""Shared fixtures: a migrated store on SQLite and on a throwaway PostgreSQL, the service on top, the real
app served over HTTP, and a headless Chromium (Playwright) for page tests."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import pytest
import pytest_asyncio

from inbox.realtime.broker import LocalBroker
from inbox.realtime.events import EventRecord
from inbox.service import InboxService
from inbox.store.blobs import BlobStore
from inbox.store.engine import Store
from inbox.store.migrate import upgrade
from tests.chromium import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, require_chromium
from tests.people import People, make_people
from tests.servers.app import LiveServer, live_server, make_config
from tests.servers.postgres import binaries, postgres_server
from tests.servers.redis import RedisServer, redis_server
from tests.servers.redis import binary as redis_binary

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def postgres_base() -> Iterator[str | None]:
    """A PostgreSQL server for the session, or None (skip) when absent outside CI."""
    if os.environ.get("SWITCHBOARD_TEST_POSTGRES") == "off" and not IN_CI:
        yield None
        return
    if binaries() is None:
        if IN_CI:
            pytest.fail("CI=true but PostgreSQL binaries are missing; run `make test` as root to install them")
        yield None
        return
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def redis_session() -> Iterator[RedisServer | None]:
    """A Redis server for the session, or None (skip) when absent outside CI."""
    if redis_binary() is None:
        if IN_CI:
            pytest.fail("CI=true but redis-server is missing; run `make test` as root to install it")
        yield None
        return
    with redis_server() as running:
        yield running


@pytest.fixture
def redis_url(redis_session: RedisServer | None) -> str:
    """The session Redis (shared: tests isolate themselves with a fresh channel prefix)."""
    if redis_session is None:
        pytest.skip("redis-server not installed (run `make test` as root to install it)")
    return redis_session.url


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis server of this test's own, which the test may stop and restart."""
    if redis_binary() is None:
        if IN_CI:
            pytest.fail("CI=true but redis-server is missing; run `make test` as root to install it")
        pytest.skip("redis-server not installed (run `make test` as root to install it)")
    with redis_server() as running:
        yield running


@pytest.fixture
def postgres_url_only(postgres_base: str | None) -> str:
    """The session PostgreSQL server's base URL (multi-process tests need PostgreSQL)."""
    if postgres_base is None:
        pytest.skip("PostgreSQL binaries not installed (run `make test` as root to install them)")
    return postgres_base


async def fresh_postgres_database(base: str) -> str:
    """A new, empty database on the session server; answers its URL."""
    return await _fresh_postgres_database(base)


async def _fresh_postgres_database(base: str) -> str:
    name = "t_" + uuid.uuid4().hex[:12]
    dsn = base.replace("postgresql+asyncpg://", "postgresql://") + "/postgres"
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return f"{base}/{name}"


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'switchboard.db'}"
    base = request.getfixturevalue("postgres_base")
    if base is None:
        pytest.skip("PostgreSQL binaries not installed (run `make test` as root to install them)")
    return await _fresh_postgres_database(base)


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    store = Store(db_url)
    await upgrade(store)
    yield store
    await store.close()


class Recorder:
    """A broker subscriber that keeps every published event, for assertions."""

    def __init__(self) -> None:
        self.events: list[EventRecord] = []
        self.ephemeral: list[dict[str, object]] = []

    async def on_event(self, event: EventRecord) -> None:
        self.events.append(event)

    async def on_ephemeral(self, frame: dict[str, object], inbox_id: int | None) -> None:
        self.ephemeral.append(frame)

    def types(self) -> list[str]:
        return [event.type for event in self.events]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def service(store: Store, tmp_path: Path, recorder: Recorder) -> InboxService:
    broker = LocalBroker()
    broker.subscribe(recorder.on_event, recorder.on_ephemeral)
    return InboxService(store, broker, BlobStore(tmp_path / "blobs"))


@pytest.fixture
async def server(db_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    """The real app under uvicorn on a free port, on each database backend."""
    async with live_server(make_config(db_url, tmp_path)) as running:
        yield running


# ── browser ─────────────────────────────────────────────────────────────────────────────────
# Browser tests are async and run on the session's event loop, where the browser lives:
#     pytestmark = pytest.mark.asyncio(loop_scope="session")
#     async def test_x(page: Page, browser_server: LiveServer) -> None: ...
# (Playwright's sync API cannot be used: it leaves an event loop "running" in the test thread.)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium driven by Playwright (never `playwright install`). Skips with the reason when
    Chromium or Playwright is absent outside CI; fails in CI."""
    require_chromium()
    from playwright.async_api import async_playwright

    playwright = await async_playwright().start()
    try:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()
    finally:
        await playwright.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A fresh browser context and page; a screenshot of its last state goes to test-artifacts/."""
    context = await browser.new_context(viewport={"width": 1200, "height": 800})
    context.set_default_timeout(10_000)
    opened = await context.new_page()
    try:
        yield opened
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        with contextlib.suppress(Exception):  # a crashed page must not hide the test's own failure
            await opened.screenshot(path=str(ARTIFACTS / f"{request.node.name}-last.png"))
        await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def browser_server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    """The real app on SQLite, served on the session loop next to the browser (for browser tests)."""
    async with live_server(make_config(f"sqlite+aiosqlite:///{tmp_path / 'switchboard.db'}", tmp_path)) as running:
        yield running


@pytest.fixture
async def people(server: LiveServer) -> AsyncIterator[People]:
    """An admin and an agent with API clients on the test's server (closed afterwards)."""
    found = await make_people(server)
    yield found
    await found.admin.aclose()
    await found.agent.aclose()
