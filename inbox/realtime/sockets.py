"""The Starlette app with a short path for websockets: a websocket whose path is one of the app's plain
`WebSocketRoute`s (the widget socket, the agent stream) goes straight to its handler.

Starlette would route it through its middleware stack, its router and two exception wrappers, and every one of
those coroutine frames stays alive as long as the socket is open (≈ 4 KiB per idle socket, see BENCHMARKS.md).
The short path holds one frame. It keeps what those layers give a websocket handler: `scope["app"]` (so
`ws.app.state` works), `scope["router"]`, a `WebSocketException` closes with its own code, and any other
error after `accept` is logged and closes the socket with 1011 (internal error). HTTP requests, lifespan and
every other websocket (no such route: closed by Starlette's router as before) take the usual way.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import WebSocketException
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

log = logging.getLogger(__name__)

CLOSE_INTERNAL_ERROR = 1011
SocketHandler = Callable[[WebSocket], Awaitable[None]]


def direct_sockets(routes: Sequence[BaseRoute]) -> dict[str, SocketHandler]:
    """Path → handler of every websocket route that is a plain function at a fixed path (no path parameters,
    no route middleware); any other route is left to Starlette."""
    found: dict[str, SocketHandler] = {}
    for route in routes:
        if not isinstance(route, WebSocketRoute) or route.param_convertors or route.path in found:
            continue
        if getattr(route, "middleware", None) or not (
            inspect.isfunction(route.endpoint) or inspect.ismethod(route.endpoint)
        ):
            continue
        found[route.path] = route.endpoint
    return found


class SocketShortcutApp(Starlette):
    """`Starlette`, except that the websockets of `direct_sockets(routes)` skip its middleware and router."""

    def __init__(self, *, routes: Sequence[BaseRoute], **options: Any) -> None:
        super().__init__(routes=routes, **options)
        self.sockets = direct_sockets(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = (
            self.sockets.get(scope["path"]) if scope["type"] == "websocket" and not scope.get("root_path") else None
        )
        if handler is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        scope.setdefault("router", self.router)
        ws = WebSocket(scope, receive=receive, send=send)
        try:
            await handler(ws)
        except WebSocketDisconnect:
            return  # the client left; nothing to answer
        except WebSocketException as exc:
            with contextlib.suppress(Exception):
                await ws.close(code=exc.code, reason=exc.reason)
        except Exception:
            if ws.application_state != WebSocketState.CONNECTED:
                raise  # not accepted yet (uvicorn answers 500) or already closed: as under Starlette
            log.exception("websocket %s failed", scope["path"])
            with contextlib.suppress(Exception):
                await ws.close(code=CLOSE_INTERNAL_ERROR, reason="internal error")
