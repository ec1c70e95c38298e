"""One widget socket and the set of a visitor's sockets, the refusal of a socket, and the shapes of errors.

Small I/O helpers for `channels.webchat.channel`; no policy lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket

from channels.base import InboxInfo
from channels.webchat.protocol import Visitor

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_LARGE = 1009
CLOSE_INVALID_DATA = 1007  # RFC 6455 §7.4.1: a frame's data does not match its type (not UTF-8)
SEND_TIMEOUT = 5.0


class Refused(Exception):
    """The socket is refused (before `welcome`, or for an oversized frame): an error frame, then a close."""

    def __init__(self, close_code: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.close_code = close_code
        self.code = code
        self.detail = detail


@dataclass(eq=False, slots=True)  # slots: one per open socket, thousands per process
class Connection:
    """One open widget socket."""

    ws: WebSocket
    inbox: InboxInfo
    visitor: Visitor
    ip: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # After a `slow_down`, messages already on the wire behind the refused one are refused too until this
    # (monotonic) time, so the widget's resends keep the visitor's order.
    hold_until: float = 0.0

    async def send(self, frame: Mapping[str, Any]) -> bool:
        """Send one frame; a socket that cannot take it within a few seconds is closed."""
        try:
            async with self.lock:
                await asyncio.wait_for(self.ws.send_text(json.dumps(frame, separators=(",", ":"))), SEND_TIMEOUT)
            return True
        except Exception:
            with contextlib.suppress(Exception):
                await self.ws.close()
            return False


@dataclass(eq=False, slots=True)
class Thread:
    """Every open socket of one visitor thread (the tabs of one visitor), and its conversation once known."""

    connections: set[Connection] = field(default_factory=set)
    conversation_id: int | None = None


def own_origin(conn: HTTPConnection) -> str:
    scheme = "https" if conn.url.scheme in ("https", "wss") else "http"
    return f"{scheme}://{conn.headers.get('host', '')}"


def error_frame(code: str, detail: str, *, client_id: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail}
    if client_id is not None:
        frame["client_id"] = client_id
    return frame


def client_id_in(raw: str) -> str | None:
    with contextlib.suppress(ValueError, AttributeError):
        value = json.loads(raw).get("client_id")
        return value if isinstance(value, str) else None
    return None


def http_error(status: int, code: str, detail: str, *, retry_after: float | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": {"code": code, "detail": detail}}
    headers = None
    if retry_after is not None:
        body["error"]["retry_after"] = retry_after
        headers = {"retry-after": str(max(1, round(retry_after)))}
    return JSONResponse(body, status_code=status, headers=headers)


async def refuse(ws: WebSocket, refused: Refused) -> None:
    with contextlib.suppress(Exception):
        await ws.send_text(json.dumps(error_frame(refused.code, refused.detail), separators=(",", ":")))
        await ws.close(code=refused.close_code, reason=refused.code)
