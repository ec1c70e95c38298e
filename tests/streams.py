"""A small agent-stream client for tests: connect, read frames with a deadline, prove absence with ping/pong."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect


class StreamClient:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.frames: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, ws_url: str, token: str | None, after: int | None = None) -> StreamClient:
        url = f"{ws_url}/api/v1/stream" + (f"?after={after}" if after is not None else "")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = cls(await connect(url, additional_headers=headers, compression=None))
        return client

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.connection.recv(), timeout))
        self.frames.append(frame)
        return frame

    async def until(self, type_: str, timeout: float = 10.0) -> dict[str, Any]:
        """Read frames until one of `type_` arrives; earlier frames stay in `frames`."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.next(timeout)
                if frame.get("type") == type_:
                    return frame

    async def drain(self) -> list[dict[str, Any]]:
        """Every frame queued for us so far: ping, then read up to the pong (the hub keeps order)."""
        await self.connection.send(json.dumps({"type": "ping"}))
        seen: list[dict[str, Any]] = []
        while True:
            frame = await self.next()
            if frame.get("type") == "pong":
                return seen
            seen.append(frame)

    def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        return [f for f in self.frames if "id" in f and (type_ is None or f["type"] == type_)]

    async def close(self) -> None:
        await self.connection.close()
