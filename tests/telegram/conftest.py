"""Fixtures of the Telegram tests: the fake Bot API on loopback and the real app configured to use it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from inbox.config import ChannelsConfig, TelegramConfig
from tests.servers.app import LiveServer, free_port, live_server, make_config
from tests.servers.telegram import FakeTelegram, telegram_server


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with telegram_server() as running:
        yield running


@pytest.fixture
async def app(db_url: str, tmp_path: Path, fake: FakeTelegram) -> AsyncIterator[LiveServer]:
    port = free_port()
    config = make_config(
        db_url,
        tmp_path,
        port=port,
        telegram=TelegramConfig(
            api_base_url=fake.api_base_url,
            file_base_url=fake.file_base_url,
            public_base_url=f"http://127.0.0.1:{port}",
            poll_timeout_seconds=1,
        ),
        channels=ChannelsConfig(refresh_seconds=0.1, restart_backoff_max_seconds=0.5),
    )
    async with live_server(config) as running:
        yield running
