"""`python -m bench.relay PORT`: the floor — a bare `websockets` relay with no persistence, no auth, no JSON
work: every frame a sender sends to /send is broadcast as is to every socket on /agent."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import websockets

agents: set[Any] = set()


async def handler(connection: Any) -> None:
    path = connection.request.path
    if path == "/agent":
        agents.add(connection)
        try:
            await connection.wait_closed()
        finally:
            agents.discard(connection)
    else:
        async for frame in connection:
            websockets.broadcast(agents, frame)


async def main(port: int) -> None:
    async with websockets.serve(handler, "127.0.0.1", port, compression=None, max_size=2**20):
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
