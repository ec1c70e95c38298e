"""The real app under uvicorn on a free loopback port: in the test's own event loop, or as a subprocess
(for tests that SIGKILL the server)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

from inbox.app import UVICORN_OPTIONS, create_app
from inbox.config import Config, DatabaseConfig, OutboxConfig, ServerConfig, StorageConfig
from inbox.store.engine import Store
from inbox.store.migrate import upgrade

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_config(db_url: str, state_dir: Path, port: int = 0, **sections: Any) -> Config:
    """A config for tests: fast outbox retries, files under `state_dir`."""
    config = Config(
        server=ServerConfig(
            port=port,
            secret_key="test-secret-key",
            state_directory=str(state_dir),
            base_url=f"http://127.0.0.1:{port}",
            development=True,
        ),
        database=DatabaseConfig(url=db_url),
        storage=StorageConfig(directory=str(state_dir / "attachments")),
        outbox=OutboxConfig(
            backoff_base_seconds=0.2, backoff_max_seconds=1.0, lease_seconds=3.0, poll_interval_seconds=0.1
        ),
    )
    return dataclasses.replace(config, **sections) if sections else config


@dataclass
class LiveServer:
    app: Starlette
    url: str
    ws_url: str

    @property
    def state(self) -> Any:
        """The app's typed services (`inbox.http.services.Services`)."""
        return self.app.state.services


@contextlib.asynccontextmanager
async def live_server(config: Config) -> AsyncIterator[LiveServer]:
    """Migrate, then serve `create_app(config)` on 127.0.0.1:<free port> inside the running loop."""
    store = Store(config.database.url)
    await upgrade(store)
    await store.close()
    port = config.server.port or free_port()
    config = dataclasses.replace(
        config, server=dataclasses.replace(config.server, port=port, base_url=f"http://127.0.0.1:{port}")
    )
    app = create_app(config)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **UVICORN_OPTIONS)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server stopped during start-up")
        await asyncio.sleep(0.01)
    try:
        yield LiveServer(app, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await task


class ServerProcess:
    """`switchboard serve` as a child process, so a test can SIGKILL it and start it again."""

    def __init__(self, config_path: Path, port: int, env: dict[str, str] | None = None) -> None:
        self.config_path = config_path
        self.port = port
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{port}"
        self.log = config_path.parent / f"server-{port}.log"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "inbox", "--config", str(self.config_path), "serve", "--port", str(self.port)],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
