"""TCP relays in front of Dovecot that break connections on purpose: mid-FETCH, on demand, on one mail."""

from __future__ import annotations

import asyncio
import contextlib


class CuttingProxy:
    """A TCP relay to Dovecot that kills its first connection in the middle of the Nth message body."""

    def __init__(self, port: int, cut_at_body: int) -> None:
        self.port = port
        self.cut_at_body = cut_at_body
        self.cut = asyncio.Event()
        self.listen_port = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.listen_port = self.server.sockets[0].getsockname()[1]

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.port)
        cutting = not self.cut.is_set()

        async def upstream() -> None:
            with contextlib.suppress(Exception):
                while data := await client_r.read(65536):
                    up_w.write(data)
                    await up_w.drain()

        async def downstream() -> None:
            seen = 0
            with contextlib.suppress(Exception):
                while data := await up_r.read(65536):
                    if cutting and not self.cut.is_set():
                        seen += data.count(b"BODY[] {")
                        if seen >= self.cut_at_body:
                            # forward a few bytes of the body, then drop the connection mid-literal
                            client_w.write(data[: data.rfind(b"BODY[] {") + 30])
                            await client_w.drain()
                            self.cut.set()
                            break
                    client_w.write(data)
                    await client_w.drain()
            for writer in (client_w, up_w):
                writer.transport.abort()

        await asyncio.gather(upstream(), downstream())

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


class DroppingProxy:
    """A TCP relay to Dovecot whose open connections a test can drop at any moment (a server restart)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.listen_port = 0
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.listen_port = self.server.sockets[0].getsockname()[1]

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.port)
        self.writers += [client_w, up_w]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w))

    def drop(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    async def close(self) -> None:
        self.drop()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


class StuckMailProxy(DroppingProxy):
    """Drops the connection every time the server starts sending the full body of one particular mail."""

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.port)

        async def upstream() -> None:
            with contextlib.suppress(Exception):
                while data := await client_r.read(65536):
                    up_w.write(data)
                    await up_w.drain()
            up_w.transport.abort()

        async def downstream() -> None:
            with contextlib.suppress(Exception):
                while data := await up_r.read(65536):
                    if b"BODY[] {" in data and b"<stuck@customer.test>" in data:
                        break
                    client_w.write(data)
                    await client_w.drain()
            client_w.transport.abort()
            up_w.transport.abort()

        await asyncio.gather(upstream(), downstream())
