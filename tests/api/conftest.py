"""The JSON API's tests share one small server (the real app, no channel receivers) per test and a world of
agents, inboxes and tokens on it (`tests.api_world`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.api_world import World, build_world, small_server
from tests.servers.app import LiveServer


@pytest.fixture
async def server(db_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    async with small_server(db_url, tmp_path) as running:
        yield running


@pytest.fixture
async def world(server: LiveServer) -> World:
    return await build_world(server)
