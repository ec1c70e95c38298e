"""A client that stops reading never holds the others up: its bounded queue overflows and it is cut off (it
may resume with after=<id>), while an agent that keeps reading receives every event."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from pathlib import Path

from inbox.config import StreamConfig
from tests.factories import inbound, make_inbox
from tests.poll import eventually
from tests.servers.app import LiveServer, live_server, make_config
from tests.servers.cluster import agent_stream, seed

EVENTS = 120
BIG = "x" * 60_000  # large frames fill the socket buffers quickly


async def stalled_websocket(port: int, token: str) -> socket.socket:
    """A websocket handshake on a socket with a tiny receive buffer that is then never read."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    await asyncio.get_running_loop().sock_sendall(sock, request.encode())
    return sock


async def test_a_client_that_stops_reading_is_cut_off_and_others_get_everything(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'switchboard.db'}"
    config = make_config(db_url, tmp_path, stream=StreamConfig(queue_size=20))
    async with live_server(config) as server:
        await run_scenario(server)


async def run_scenario(server: LiveServer) -> None:
    state = server.state
    seeded = await seed(state.store)
    inbox = await make_inbox(state.store)
    port = int(server.url.rsplit(":", 1)[1])
    async with agent_stream(server.ws_url, seeded.token) as reader:
        stalled = await stalled_websocket(port, seeded.token)
        try:
            await eventually(lambda: state.hub.connections == 2, what="both agents connected")
            for number in range(EVENTS):
                await state.service.deliver(inbound(inbox, f"m{number}", sender=f"s{number % 7}", text=BIG))
            await eventually(lambda: state.hub.connections == 1, within=10, what="the stalled client was cut off")
            expected = {f"m{number}" for number in range(EVENTS)}
            await eventually(
                lambda: {f["data"]["external_id"] for f in reader.events("message.created")} >= expected,
                within=10,
                what="the reading agent got every message",
            )
            assert not reader.closed.is_set()
        finally:
            stalled.close()
