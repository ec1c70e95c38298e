"""The trimmed websocket protocol (`inbox.realtime.wsserver`): its queue and gate behave like asyncio's, and the real
server (uvicorn with `UVICORN_OPTIONS`) uses it, with the finished handshake released after `accept`."""

from __future__ import annotations

import asyncio

import websockets
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from wsproto.frame_protocol import FrameProtocol

from inbox.realtime.sockets import SocketShortcutApp
from inbox.realtime.wsserver import PREPARED, SPENT, Gate, LeanWSProtocol, Mailbox, text_frame
from tests.test_sockets import serving


async def test_mailbox_hands_items_over_in_order_to_waiting_and_later_getters() -> None:
    box = Mailbox()
    box.put_nowait("a")
    assert (box.empty(), box.qsize()) == (False, 1)
    assert await box.get() == "a"
    first = asyncio.create_task(box.get())
    second = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    assert not first.done() and not second.done()
    box.put_nowait("b")
    box.put_nowait("c")
    assert sorted(await asyncio.gather(first, second)) == ["b", "c"]
    assert box.empty() and box._waiters is None


async def test_a_getter_cancelled_after_being_woken_passes_the_item_on() -> None:
    box = Mailbox()
    first = asyncio.create_task(box.get())
    second = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    box.put_nowait("x")  # wakes `first` …
    first.cancel()  # … which is cancelled before it runs
    assert await asyncio.wait_for(second, 5) == "x"
    assert first.cancelled()


async def test_gate_blocks_while_clear_and_opens_every_waiter() -> None:
    gate = Gate()
    waiters = [asyncio.create_task(gate.wait()) for _ in range(2)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters) and not gate.is_set()
    gate.set()
    assert await asyncio.gather(*waiters) == [True, True]
    gate.clear()
    late = asyncio.create_task(gate.wait())
    await asyncio.sleep(0)
    assert not late.done()
    gate.set()
    assert await late is True


async def echo(ws: WebSocket) -> None:
    await ws.accept()
    while True:
        await ws.send_text(await ws.receive_text())


async def test_the_server_uses_the_trimmed_protocol_and_releases_the_handshake() -> None:
    app = SocketShortcutApp(routes=[WebSocketRoute("/echo", echo)])
    async with serving(app) as (url, server), websockets.connect(f"{url}/echo", proxy=None) as socket:
        for text in ("one", "two", "x" * 200_000):  # a large frame goes through flow control
            await socket.send(text)
            assert await socket.recv() == text
        protocols = [p for p in server.server_state.connections if isinstance(p, LeanWSProtocol)]
        assert len(protocols) == 1
        protocol = protocols[0]
        assert isinstance(protocol.queue, Mailbox) and isinstance(protocol.writable, Gate)
        assert protocol.conn.handshake is SPENT


def test_a_prepared_frame_is_the_frame_wsproto_makes() -> None:
    """`text_frame` makes the bytes wsproto would send for the same text, at every length encoding."""
    for text in ("", "a", "é" * 62, "x" * 125, "x" * 126, "x" * 65_535, "x" * 65_536, "ü" * 70_000):
        expected = FrameProtocol(client=False, extensions=[]).send_data(text, fin=True)
        assert text_frame(text.encode()) == expected, len(text)


async def broadcast(ws: WebSocket) -> None:
    """Accept, then send each text the client sends as one prepared frame, and a plain text after it."""
    await ws.accept()
    prepared = ws.scope["extensions"][PREPARED]
    while True:
        text = await ws.receive_text()
        await prepared(text_frame(text.encode()))
        await ws.send_text(f"after {text}")
        await prepared(text_frame(b"one of two") + text_frame(b"two of two"))  # several frames in one write


async def test_a_prepared_frame_reaches_the_client_in_order_with_plain_sends() -> None:
    app = SocketShortcutApp(routes=[WebSocketRoute("/broadcast", broadcast)])
    async with serving(app) as (url, _server), websockets.connect(f"{url}/broadcast", proxy=None) as socket:
        for text in ("one", "ünïcode", "x" * 200_000):
            await socket.send(text)
            assert await socket.recv() == text
            assert await socket.recv() == f"after {text}"
            assert [await socket.recv(), await socket.recv()] == ["one of two", "two of two"]
