"""A webhook receiver on a free loopback port (Starlette under uvicorn in the test's loop) that records
every delivery the API channel POSTs, for counting sends."""

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
from starlette.responses import Response
from starlette.routing import Route

from tests.servers.app import free_port


@dataclass
class WebhookReceiver:
    url: str = ""
    deliveries: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        """Receipts per `X-Switchboard-Delivery` id."""
        return Counter(item["delivery_id"] for item in self.deliveries)

    def message_ids(self) -> Counter[int]:
        return Counter(int(item["body"]["message"]["id"]) for item in self.deliveries)


@contextlib.asynccontextmanager
async def webhook_receiver() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()

    async def hook(request: Request) -> Response:
        body = json.loads(await request.body())
        receiver.deliveries.append({"delivery_id": request.headers["x-switchboard-delivery"], "body": body})
        return Response(status_code=204)

    port = free_port()
    receiver.url = f"http://127.0.0.1:{port}/hook"
    server = uvicorn.Server(
        uvicorn.Config(Starlette(routes=[Route("/hook", hook, methods=["POST"])]), port=port, log_level="warning")
    )
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
