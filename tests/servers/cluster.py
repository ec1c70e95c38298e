"""Several `switchboard serve` processes sharing one PostgreSQL database and one Redis: config files, the
seed rows a test needs (an admin with an API token, an API-channel inbox), and an agent-stream client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

from inbox.auth import hash_password, new_api_token
from inbox.store.engine import Store
from inbox.store.models import Agent, ApiToken, Inbox

SECRET_KEY = "cluster-test-secret-key"


def write_config(
    path: Path, *, db_url: str, redis_url: str, state_dir: Path, port: int, prefix: str, lease_seconds: float = 2.0
) -> Path:
    """A config file for one process of the cluster (every process shares the database, Redis and key)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""
[server]
secret_key = "{SECRET_KEY}"
state_directory = "{state_dir}"
base_url = "http://127.0.0.1:{port}"

[database]
url = "{db_url}"

[redis]
url = "{redis_url}"
channel_prefix = "{prefix}"
reconnect_max_seconds = 0.5

[cluster]
lease_seconds = {lease_seconds}
catchup_interval_seconds = 0.5

[storage]
directory = "{state_dir / "attachments"}"

[outbox]
lease_seconds = 3.0
poll_interval_seconds = 0.1
backoff_base_seconds = 0.2
backoff_max_seconds = 1.0
""",
        encoding="utf-8",
    )
    return path


@dataclass(frozen=True)
class Seed:
    agent_id: int
    token: str
    inbox_id: int
    inbox_secret: str


async def seed(store: Store, *, webhook_url: str | None = None) -> Seed:
    """An admin agent with an API token and an API-channel inbox."""
    token, token_hash = new_api_token()
    async with store.transaction() as tx:
        agent = Agent(email="admin@example.test", name="Ada Admin", role="admin", password_hash=hash_password("pw"))
        tx.add(agent)
        await tx.flush()
        tx.add(ApiToken(agent_id=agent.id, token_hash=token_hash, name="tests"))  # type: ignore[arg-type]
        inbox = Inbox(
            name="Integration",
            channel="api",
            settings={"webhook_url": webhook_url} if webhook_url else {},
            public_key=secrets.token_urlsafe(12),
            secret=secrets.token_urlsafe(24),
        )
        tx.add(inbox)
        await tx.flush()
        assert agent.id is not None and inbox.id is not None
        return Seed(agent.id, token, inbox.id, inbox.secret)


@dataclass
class AgentStream:
    """An agent's websocket on `/api/v1/stream`, collecting every frame in the background."""

    ws_url: str
    token: str
    frames: list[dict[str, Any]] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    @property
    def last_id(self) -> int:
        ids = [frame["id"] for frame in self.frames if "id" in frame]
        return max(ids) if ids else 0

    def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        return [f for f in self.frames if "id" in f and (type_ is None or f["type"] == type_)]

    async def connect(self, after: int | None = None) -> None:
        self.closed.clear()
        self.ready.clear()
        url = f"{self.ws_url}/api/v1/stream" + (f"?after={after}" if after is not None else "")
        connection = await websockets.connect(
            url, additional_headers={"Authorization": f"Bearer {self.token}"}, compression=None, max_size=None
        )
        self._task = asyncio.create_task(self._read(connection))
        await asyncio.wait_for(self.ready.wait(), 10)

    async def _read(self, connection: Any) -> None:
        try:
            async for raw in connection:
                frame = json.loads(raw)
                if frame.get("type") == "ready":
                    self.ready.set()
                else:
                    self.frames.append(frame)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()
            with contextlib.suppress(Exception):
                await connection.close()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@contextlib.asynccontextmanager
async def agent_stream(ws_url: str, token: str, after: int | None = None) -> AsyncIterator[AgentStream]:
    stream = AgentStream(ws_url, token)
    await stream.connect(after)
    try:
        yield stream
    finally:
        await stream.close()
