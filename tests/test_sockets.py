"""The websocket short path (`inbox.realtime.sockets`): plain websocket routes skip Starlette's middleware and router
but keep what those layers gave them — `ws.app.state`, errors logged and closed with 1011, a
`WebSocketException`'s own close code, unknown paths refused, HTTP untouched — under the real server
(uvicorn with the server's own options)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
import websockets
from starlette.exceptions import WebSocketException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from websockets.exceptions import ConnectionClosed, InvalidStatus

from inbox.app import UVICORN_OPTIONS
from inbox.realtime.sockets import SocketShortcutApp, direct_sockets
from tests.servers.app import free_port


class Seen:
    """Middleware that records every scope it is called with (the short path must not reach it)."""

    paths: list[tuple[str, str]] = []

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        Seen.paths.append((scope["type"], scope.get("path", "")))
        await self.app(scope, receive, send)


async def echo_state(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send_text(f"{ws.app.state.greeting} {ws.query_params.get('name')} {ws.url.path}")
    await ws.send_text(await ws.receive_text())


async def fails(ws: WebSocket) -> None:
    await ws.accept()
    await ws.receive_text()
    raise ValueError("boom in the handler")


async def refuses(ws: WebSocket) -> None:
    await ws.accept()
    raise WebSocketException(code=4403, reason="not yours")


async def fails_before_accept(ws: WebSocket) -> None:
    raise ValueError("boom before accept")


async def page(request: Request) -> Response:
    return PlainTextResponse("page")


def make_app() -> SocketShortcutApp:
    app = SocketShortcutApp(
        routes=[
            Route("/page", page),
            WebSocketRoute("/ws/echo", echo_state),
            WebSocketRoute("/ws/fails", fails),
            WebSocketRoute("/ws/refuses", refuses),
            WebSocketRoute("/ws/early", fails_before_accept),
            WebSocketRoute("/ws/{name}", echo_state),  # has a path parameter: Starlette routes it
        ],
        middleware=[Middleware(Seen)],
    )
    app.state.greeting = "hello"
    return app


@contextlib.asynccontextmanager
async def serving(app: SocketShortcutApp) -> AsyncIterator[tuple[str, uvicorn.Server]]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", **UVICORN_OPTIONS)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        await task


def test_only_plain_fixed_path_socket_routes_take_the_short_path() -> None:
    app = make_app()
    assert set(app.sockets) == {"/ws/echo", "/ws/fails", "/ws/refuses", "/ws/early"}
    assert direct_sockets([Route("/page", page)]) == {}


async def test_a_socket_route_reaches_its_handler_without_the_middleware() -> None:
    Seen.paths = []
    async with serving(make_app()) as (url, _):
        async with websockets.connect(f"{url}/ws/echo?name=ada", proxy=None) as socket:
            assert await socket.recv() == "hello ada /ws/echo"
            await socket.send("again")
            assert await socket.recv() == "again"
        async with websockets.connect(f"{url}/ws/param?name=bob", proxy=None) as socket:
            assert await socket.recv() == "hello bob /ws/param"  # Starlette's router, through the middleware
    assert ("websocket", "/ws/echo") not in Seen.paths
    assert ("websocket", "/ws/param") in Seen.paths


async def test_an_error_after_accept_is_logged_and_closes_with_1011(caplog: pytest.LogCaptureFixture) -> None:
    async with serving(make_app()) as (url, _), websockets.connect(f"{url}/ws/fails", proxy=None) as socket:
        await socket.send("go")
        with pytest.raises(ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    failures = [r for r in caplog.records if r.name == "inbox.realtime.sockets" and r.levelno == logging.ERROR]
    assert failures and failures[0].exc_info is not None and "boom in the handler" in str(failures[0].exc_info[1])


async def test_a_websocket_exception_closes_with_its_own_code() -> None:
    async with serving(make_app()) as (url, _), websockets.connect(f"{url}/ws/refuses", proxy=None) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4403, "not yours")


async def test_an_error_before_accept_is_a_500_and_an_unknown_path_is_refused() -> None:
    async with serving(make_app()) as (url, _):
        with pytest.raises(InvalidStatus) as early:
            await websockets.connect(f"{url}/ws/early", proxy=None)
        with pytest.raises(InvalidStatus) as unknown:
            await websockets.connect(f"{url}/nowhere/at/all", proxy=None)
    assert early.value.response.status_code == 500
    assert unknown.value.response.status_code == 403  # Starlette's router closes it before accept


async def test_http_takes_the_usual_way() -> None:
    Seen.paths = []
    async with serving(make_app()) as (url, _), httpx.AsyncClient() as client:
        response = await client.get(url.replace("ws://", "http://") + "/page")
    assert response.text == "page"
    assert ("http", "/page") in Seen.paths
