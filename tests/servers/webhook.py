"""A webhook receiver on loopback for the API channel: records every POST, answers a chosen status."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.servers.app import free_port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    port: int
    status: int = 200
    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        """Each POST as `{"delivery_id": X-Switchboard-Delivery, "body": parsed JSON}`."""
        return [
            {"delivery_id": item.headers["x-switchboard-delivery"], "body": json.loads(item.body)}
            for item in self.received
        ]

    def counts(self) -> Counter[str]:
        """Receipts per `X-Switchboard-Delivery` id."""
        return Counter(item["delivery_id"] for item in self.deliveries)

    def message_ids(self) -> Counter[int]:
        """Receipts per switchboard message id."""
        return Counter(int(item["body"]["message"]["id"]) for item in self.deliveries)

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received


@contextlib.asynccontextmanager
async def webhook_receiver(port: int | None = None, status: int = 200) -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver(port or free_port(), status)

    async def hook(request: Request) -> Response:
        receiver.received.append(Received(dict(request.headers), await request.body()))
        receiver.arrived.set()
        return JSONResponse({"ok": receiver.status < 300}, status_code=receiver.status)

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=receiver.port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
