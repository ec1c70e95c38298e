"""uvicorn's `wsproto` websocket protocol, keeping less per open socket (`UVICORN_OPTIONS["ws"]`).

Per idle socket, uvicorn's `WSProtocol` keeps an `asyncio.Queue` for the app's `receive` (four deques, each
with its 64-slot block: ≈ 3 KiB), an `asyncio.Event` for write flow control (one more deque) and, inside
wsproto, the finished HTTP/1.1 handshake (an h11 connection with its buffers and the parsed request: ≈ 2 KiB)
for the socket's whole life. Here the queue and the event are small list-based equivalents that allocate
only while something waits, and the handshake state is released once the socket is accepted (wsproto only
reads frames through its `Connection` from then on). Behaviour is uvicorn's own: same events, same order,
same keepalive pings, size limit and flow control.

Each replacement checks that uvicorn/wsproto still have the shape it expects; if an upgrade changed them,
that part is left as uvicorn made it (the socket works, it only keeps the larger objects).

It also offers the app a way to send a frame serialised once for many sockets (`PREPARED`, `text_frame`):
the agent stream sends each event to every agent, and a server's frames are not masked, so the bytes are the
same for all of them. uvicorn would encode and frame the text again for each socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.wsproto_impl import WSProtocol
from wsproto import events
from wsproto.connection import ConnectionState
from wsproto.handshake import H11Handshake

PREPARED = "switchboard.prepared_frames"  # scope["extensions"][PREPARED]: async send of `text_frame` bytes


def text_frame(payload: bytes) -> bytes:
    """A complete, unmasked text frame (RFC 6455 §5.2) carrying `payload` (UTF-8), as a server sends it."""
    length = len(payload)
    if length < 126:
        header = bytes((0x81, length))
    elif length < 1 << 16:
        header = bytes((0x81, 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + length.to_bytes(8, "big")
    return header + payload


class Mailbox:
    """`asyncio.Queue` (unbounded) for what uvicorn uses of it: `put_nowait`, `get`, `empty`, `qsize`.

    uvicorn pauses reading the socket while a message waits, so it holds a handful of items at most."""

    __slots__ = ("_items", "_waiters")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiters: list[asyncio.Future[None]] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        if self._waiters:
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(None)
                    break

    async def get(self) -> Any:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled() and self._items:
                    self._wake_next(waiter)  # it was woken for an item it will not take: pass the turn on
                raise
            finally:
                self._waiters.remove(waiter)
                if not self._waiters:
                    self._waiters = None
        return self._items.pop(0)

    def _wake_next(self, skip: asyncio.Future[None]) -> None:
        for waiter in self._waiters or ():
            if waiter is not skip and not waiter.done():
                waiter.set_result(None)
                return

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


class Gate:
    """`asyncio.Event` (`set`, `clear`, `is_set`, `wait`) without a deque per instance."""

    __slots__ = ("_open", "_waiters")

    def __init__(self) -> None:
        self._open = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._open

    def set(self) -> None:
        self._open = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._open = False

    async def wait(self) -> bool:
        if self._open:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True


class SpentHandshake:
    """Stands in for wsproto's finished `H11Handshake`: no events, the state the connection reports."""

    __slots__ = ()

    state = ConnectionState.OPEN

    def events(self) -> Iterator[Any]:
        return iter(())


SPENT = SpentHandshake()


class LeanWSProtocol(WSProtocol):
    """uvicorn's `WSProtocol` with a `Mailbox`, a `Gate`, and the handshake released after `accept`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if isinstance(self.queue, asyncio.Queue) and self.queue.empty():
            self.queue = Mailbox()  # type: ignore[assignment]
        if isinstance(self.writable, asyncio.Event):
            gate = Gate()
            if self.writable.is_set():
                gate.set()
            self.writable = gate  # type: ignore[assignment]

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        extensions: Any = self.scope.get("extensions")
        if isinstance(extensions, dict) and not self.config.ws_per_message_deflate:
            extensions[PREPARED] = self.send_prepared  # compressed frames would differ per socket

    def handle_close(self, event: events.CloseConnection) -> None:
        """A frame wsproto could not parse (a text frame that is not UTF-8: 1007; a protocol error: 1002; too
        big: 1009) arrives as a CloseConnection the peer never sent, with the connection still open; uvicorn
        would neither answer it nor close, and the client would wait. Tell the peer why, then close."""
        if not self.close_sent and self.conn.state == ConnectionState.OPEN:
            self.transport.write(self.conn.send(events.CloseConnection(code=event.code, reason=event.reason)))
            self.close_sent = True
            self.queue.put_nowait({"type": "websocket.disconnect", "code": event.code, "reason": event.reason})
            self.transport.close()
            return
        super().handle_close(event)

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message.get("type") == "websocket.accept":
            self._release_handshake()

    async def send_prepared(self, frame: bytes) -> None:
        """Send a frame made by `text_frame`: uvicorn's `websocket.send` without encoding it again (same flow
        control, same silence once the socket is closing)."""
        await self.writable.wait()
        if self.disconnected:
            raise ClientDisconnected()
        if not self.handshake_complete or self.response_started:
            raise RuntimeError("send_prepared before the websocket was accepted")
        if not self.close_sent and not self.transport.is_closing():
            self.transport.write(frame)

    def _release_handshake(self) -> None:
        handshake = getattr(self.conn, "handshake", None)
        if (
            isinstance(handshake, H11Handshake)
            and getattr(self.conn, "connection", None) is not None
            and not getattr(handshake, "_events", True)  # nothing left to read from it
        ):
            self.conn.handshake = SPENT  # type: ignore[assignment]
