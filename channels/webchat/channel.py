"""The webchat channel's I/O: the widget websocket and uploads (the loader, frame and files are served by
`documents`), and the fan-out of agent replies, typing and "seen" to every open tab of a visitor.

Policy lives in `protocol`, `handshake`, `files`, `uploads`, `settings` and `frame`; this module only moves bytes. Sockets are held
per process: `send` pushes a reply to the sockets open here, `on_event` pushes replies another process sent
when their `message.updated` event arrives (and a visitor's emailed answer when its `message.created` does),
and a visitor with no open socket reads them from history in the next `welcome`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from channels.base import (
    FailureRun,
    Host,
    Identity,
    Inbound,
    InboundAttachment,
    InboxInfo,
    Outbound,
    Overloaded,
    Receipt,
    ThreadMessage,
)
from channels.webchat import protocol
from channels.webchat.connection import (
    CLOSE_BAD_REQUEST,
    CLOSE_FORBIDDEN,
    CLOSE_INVALID_DATA,
    CLOSE_NOT_FOUND,
    CLOSE_TOO_LARGE,
    Connection,
    Refused,
    Thread,
    client_id_in,
    error_frame,
    http_error,
    own_origin,
    refuse,
)
from channels.webchat.documents import WidgetDocuments, find_inbox
from channels.webchat.files import FileRefused
from channels.webchat.handshake import visitor_of_hello
from channels.webchat.protocol import FrameError, Visitor
from channels.webchat.settings import WebchatSettings, WidgetSettings
from channels.webchat.survey import survey_frame, survey_frame_of_event
from channels.webchat.uploads import read_upload, ticket_holder

log = logging.getLogger(__name__)

PUSHED_MEMORY = 10_000  # ids of replies this process pushed itself, so the broker's copy is not pushed again
SIGNALS_PER_MINUTE = 120  # typing, seen and contact frames per visitor
SLOW_DOWN = "the server is busy; your message was not stored and will be sent again shortly"


class WebchatChannel:
    """The live chat widget: websocket in and out, uploads over HTTP."""

    name: ClassVar[str] = "webchat"

    def __init__(self, host: Host, settings: WebchatSettings, *, clock: Any = time.monotonic) -> None:
        self.host = host
        self.settings = settings
        self.clock = clock
        self.documents = WidgetDocuments(host, settings)
        self._threads: dict[tuple[int, str], Thread] = {}
        self._by_conversation: dict[int, tuple[int, str]] = {}
        self._pushed: dict[int, None] = {}  # insertion-ordered set
        self._delivering: set[str] = set()  # external ids this process is storing now (its tabs are told here)
        self._inboxes: dict[int, InboxInfo] = {}  # one shared copy per inbox for all its sockets
        self._visitor_limit = protocol.RateLimiter(settings.visitor_messages_per_minute, 60.0, clock)
        self._ip_limit = protocol.RateLimiter(settings.ip_messages_per_minute, 60.0, clock)
        self._signal_limit = protocol.RateLimiter(SIGNALS_PER_MINUTE, 60.0, clock)
        self.failing = FailureRun(log, "webchat: visitor frames", trace=True)
        self.routes: Sequence[BaseRoute] = [
            *self.documents.routes,
            WebSocketRoute("/widget/ws", self.socket),
            Route("/widget/upload", self.upload, methods=["POST"]),
        ]

    # ── the core's side ─────────────────────────────────────────────────────────────────────
    async def run(self, inbox: InboxInfo) -> None:
        """Push channel: visitors connect to us."""
        return None

    async def send(self, message: Outbound) -> Receipt:
        """Push an agent reply to every open tab of the visitor; with none open it waits in history."""
        thread = self._threads.get((message.inbox.id, message.thread_key))
        if thread is not None:
            stored = ThreadMessage(
                id=message.message_id,
                conversation_id=message.conversation_id,
                kind="outgoing",
                text=message.text,
                sender_name=message.agent_name,
                external_id=None,
                created_at=datetime.now(UTC),
                attachments=message.attachments,
            )
            self._remember(message.inbox.id, message.thread_key, message.conversation_id)
            self._pushed[message.message_id] = None
            while len(self._pushed) > PUSHED_MEMORY:
                self._pushed.pop(next(iter(self._pushed)))
            await self._broadcast(thread, {"type": "message", "message": self._view(message.inbox.id, stored, "")})
            card = survey_frame(message.message_id, message.metadata)
            if card is not None:
                await self._broadcast(thread, card)
        return Receipt()

    async def on_event(self, event: Any) -> None:
        """Committed events from the broker (`type`, `inbox_id`, `data`): with several server processes the
        outbox may send a reply from another process than the one holding the visitor's socket; when it is
        marked sent, the process holding the socket pushes it here. A customer message that reached a held
        conversation through another inbox (an emailed answer to a continuity mail) is pushed too."""
        data = event.data
        if event.type == "message.created" and data.get("kind") == "incoming":
            await self._push_incoming(data)
            return
        if event.type != "message.updated" or data.get("kind") != "outgoing" or data.get("status") != "sent":
            return
        if data.get("id") in self._pushed:
            return  # this process's `send` pushed it already
        where = self._by_conversation.get(data.get("conversation_id") or 0)
        thread = self._threads.get(where) if where else None
        if thread is None or where is None:
            return
        stored = protocol.thread_message_of(data)
        await self._broadcast(thread, {"type": "message", "message": self._view(where[0], stored, "")})
        card = survey_frame_of_event(data)
        if card is not None:
            await self._broadcast(thread, card)

    async def _push_incoming(self, data: Mapping[str, Any]) -> None:
        """Show the visitor's open tabs here a message of theirs that this process did not take: one stored
        through another inbox than the chat's (an emailed answer), or one the visitor sent from a tab held by
        another server process. What a tab here sent is acked and broadcast by `_handle` instead."""
        if data.get("external_id") in self._delivering:
            return
        sender = protocol.webchat_sender_of(data)
        where = self._by_conversation.get(data.get("conversation_id") or 0)
        if where is None and sender is not None:  # a tab that opened before the conversation existed
            where = (int(data.get("inbox_id") or 0), protocol.thread_key_of(int(data.get("inbox_id") or 0), sender))
        thread = self._threads.get(where) if where else None
        if thread is None or where is None:
            return
        self._remember(where[0], where[1], int(data["conversation_id"]))
        stored = replace(protocol.thread_message_of(data), external_id=data.get("external_id"))
        await self._broadcast(thread, {"type": "message", "message": self._view(where[0], stored, sender or "")})

    async def on_signal(self, frame: Mapping[str, Any], inbox_id: int | None) -> None:
        """Ephemeral frames from agents (typing, seen) for conversations whose visitor is connected here."""
        if frame.get("agent_id") is None or frame.get("private"):
            return  # customer frames echoed back, and typing in a private note
        where = self._by_conversation.get(frame.get("conversation_id") or 0)
        thread = self._threads.get(where) if where else None
        if thread is None:
            return
        if frame.get("type") == "typing":
            name = frame.get("agent_name") if isinstance(frame.get("agent_name"), str) else ""
            await self._broadcast(thread, {"type": "typing", "active": frame.get("active") is not False, "name": name})
        elif frame.get("type") == "seen":
            message_id = frame.get("message_id")
            await self._broadcast(
                thread, {"type": "seen", "message_id": message_id if isinstance(message_id, int) else None}
            )

    # ── the widget socket ───────────────────────────────────────────────────────────────────
    async def socket(self, ws: WebSocket) -> None:
        await ws.accept()
        try:
            connection, hello, token = await self._open(ws)
        except Refused as refused:
            await refuse(ws, refused)
            return
        except WebSocketDisconnect:
            return
        thread = self._threads.setdefault((connection.inbox.id, connection.visitor.thread_key), Thread())
        thread.connections.add(connection)
        try:
            await self._welcome(connection, thread, hello, token)
            del hello, token  # not kept for the life of the socket
            await self._serve(connection, thread)
        except (WebSocketDisconnect, RuntimeError):
            pass
        except Refused as refused:
            await refuse(ws, refused)
        finally:
            thread.connections.discard(connection)
            if not thread.connections:
                key = (connection.inbox.id, connection.visitor.thread_key)
                self._threads.pop(key, None)
                if thread.conversation_id is not None:
                    self._by_conversation.pop(thread.conversation_id, None)

    async def _open(self, ws: WebSocket) -> tuple[Connection, protocol.Hello, str]:
        # The handshake is read through a throwaway view of the scope: `ws.query_params`, `ws.headers` and
        # `ws.url` would be parsed and cached on the socket for its whole life (≈ 0.8 KiB per idle socket).
        handshake = HTTPConnection(ws.scope)
        inbox = await find_inbox(self.host, handshake.query_params.get("key"))
        if inbox is None:
            raise Refused(CLOSE_NOT_FOUND, "unknown_key", "key: no chat widget has this key")
        # Each lookup builds a fresh copy (settings dict and all); the sockets of an inbox share one.
        known = self._inboxes.get(inbox.id)
        if known == inbox:
            inbox = known
        else:
            self._inboxes[inbox.id] = inbox
        widget = WidgetSettings.of(inbox.settings)
        origin = handshake.headers.get("origin")
        if not protocol.origin_allowed(origin, widget.allowed_origins, own_origin(handshake)):
            raise Refused(CLOSE_FORBIDDEN, "origin_refused", f"Origin {origin!r} may not use this chat widget")
        try:
            raw = await asyncio.wait_for(self._receive(ws), self.settings.hello_timeout_seconds)
        except TimeoutError as exc:
            raise Refused(CLOSE_BAD_REQUEST, "hello_required", 'send {"type":"hello",…} first') from exc
        try:
            hello = protocol.parse_frame(raw, max_chars=self.settings.max_message_chars)
        except FrameError as exc:
            raise Refused(CLOSE_BAD_REQUEST, exc.code, exc.detail) from exc
        if not isinstance(hello, protocol.Hello):
            raise Refused(CLOSE_BAD_REQUEST, "hello_required", 'the first frame must be {"type":"hello",…}')
        visitor, token = visitor_of_hello(self.settings.token_key, inbox, widget, hello)
        client = ws.client
        return Connection(ws, inbox, visitor, client.host if client else ""), hello, token

    async def _welcome(self, connection: Connection, thread: Thread, frame: protocol.Hello, token: str) -> None:
        inbox, visitor = connection.inbox, connection.visitor
        history = await self.host.thread(
            inbox.id, visitor.thread_key, after=frame.after, limit=self.settings.history_limit
        )
        latest = history[-1:] or await self.host.thread(inbox.id, visitor.thread_key, after=None, limit=1)
        if latest:  # so agent typing and replies from other processes find this socket
            self._remember(inbox.id, visitor.thread_key, latest[0].conversation_id)
        messages = [self._view(inbox.id, item, visitor.sender.value) for item in history]
        await connection.send(
            {
                "type": "welcome",
                "visitor_token": token,
                "verified": visitor.verified,
                "conversation_id": thread.conversation_id,
                "messages": messages,
                "seen_up_to": protocol.seen_up_to(messages),
                "agents_online": await self.host.agents_online(inbox.id),
                "upload_token": self._upload_ticket(connection),
            }
        )

    async def _serve(self, connection: Connection, thread: Thread) -> None:
        ws = connection.ws
        while True:
            # `_receive` inlined: an idle socket then holds one coroutine frame less.
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            raw = message.get("text")
            if raw is None:
                raw = _utf8(message.get("bytes"))
            if len(raw.encode()) > self.settings.max_frame_bytes:
                raise Refused(CLOSE_TOO_LARGE, "too_large", f"frame: larger than {self.settings.max_frame_bytes} bytes")
            try:
                frame = protocol.parse_frame(raw, max_chars=self.settings.max_message_chars)
            except FrameError as exc:
                await connection.send(error_frame(exc.code, exc.detail, client_id=client_id_in(raw)))
                continue
            try:
                await self._handle(connection, thread, frame)
            except FrameError as exc:
                await connection.send(error_frame(exc.code, exc.detail))
            except Exception as error:
                # An outage fails every frame: one line when it starts (with its traceback), one when it ends.
                self.failing.failed(error)
                await connection.send(
                    error_frame(
                        "unavailable",
                        "the message could not be stored; it will be retried",
                        client_id=getattr(frame, "client_id", None),
                    )
                )

    async def _handle(self, connection: Connection, thread: Thread, frame: protocol.Frame) -> None:
        inbox, visitor = connection.inbox, connection.visitor
        if isinstance(frame, protocol.Send):
            retry = self._throttle(visitor.thread_key, connection.ip)
            if retry is not None:
                await connection.send(
                    {
                        **error_frame("rate_limited", "too many messages; wait a moment"),
                        "client_id": frame.client_id,
                        "retry_after": round(retry, 1),
                    }
                )
                return
            try:
                held = connection.hold_until - self.clock()
                if held > 0:  # rounded up: a resend after `retry_after` finds the hold over
                    raise Overloaded(math.ceil(held * 100) / 100)
                view = await self._deliver(inbox, visitor, frame.client_id, frame.body, ())
            except Overloaded as busy:
                self._give_back(visitor.thread_key, connection.ip)
                connection.hold_until = max(connection.hold_until, self.clock() + busy.retry_after)
                await connection.send(
                    {**error_frame("slow_down", SLOW_DOWN, client_id=frame.client_id), "retry_after": busy.retry_after}
                )
                return
            self.failing.succeeded()
            await connection.send({"type": "ack", "client_id": frame.client_id, "message": view})
            await self._broadcast(thread, {"type": "message", "message": view}, skip=connection)
        elif not isinstance(frame, protocol.Ping) and self._signal_limit.take(visitor.thread_key) is not None:
            # Typing, seen and contact frames are cheap to send and cost the server a query: drop a flood.
            if isinstance(frame, protocol.ContactInfo):
                await connection.send(error_frame("rate_limited", "too many updates; wait a moment"))
        elif isinstance(frame, protocol.Typing):
            await self.host.signal(
                inbox.id, visitor.thread_key, {"type": "typing", "sender": "contact", "active": frame.active}
            )
        elif isinstance(frame, protocol.Seen):
            await self.host.signal(
                inbox.id, visitor.thread_key, {"type": "seen", "sender": "contact", "message_id": frame.message_id}
            )
        elif isinstance(frame, protocol.ContactInfo):
            sender = replace(
                visitor.sender, name=frame.name or visitor.sender.name, email=frame.email or visitor.sender.email
            )
            for other in thread.connections:
                other.visitor = replace(other.visitor, sender=sender)
            await self.host.update_contact(sender)
            await connection.send({"type": "contact", "name": sender.name, "email": sender.email})
        elif isinstance(frame, protocol.Ping):
            await connection.send({"type": "pong", "agents_online": await self.host.agents_online(inbox.id)})
        else:
            raise FrameError("unexpected", "hello: already said")

    async def _deliver(
        self, inbox: InboxInfo, visitor: Visitor, client_id: str, body: str, files: Sequence[InboundAttachment]
    ) -> dict[str, Any]:
        external_id = protocol.external_id(visitor.sender.value, client_id)
        self._delivering.add(external_id)  # its event reaches `on_event` before `deliver` returns
        try:
            delivered = await self.host.deliver(
                Inbound(
                    inbox_id=inbox.id,
                    external_id=external_id,
                    thread_key=visitor.thread_key,
                    sender=visitor.sender,
                    text=body,
                    attachments=files,
                    metadata={"webchat": {"verified": visitor.verified}},
                )
            )
        finally:
            self._delivering.discard(external_id)
        self._remember(inbox.id, visitor.thread_key, delivered.conversation_id)
        if delivered.message is not None:
            return self._view(inbox.id, delivered.message, visitor.sender.value)  # new: no need to read it back
        # A resend of a client_id already stored: answer with what was stored, if it was this visitor's.
        found = await self.host.thread(inbox.id, visitor.thread_key, after=delivered.message_id - 1, limit=1)
        if not found or found[0].id != delivered.message_id:
            raise FrameError("conflict", f"client_id {client_id}: already used for another message")
        return self._view(inbox.id, found[0], visitor.sender.value)

    # ── HTTP: loader, frame, uploads, files ─────────────────────────────────────────────────
    async def upload(self, request: Request) -> Response:
        """`POST /widget/upload?key=` with the welcome's upload token: one file (and optional text) as a message."""
        holder = await ticket_holder(self.host, self.settings, request)
        if isinstance(holder, Response):
            return holder
        inbox, visitor = holder
        limit = self.settings.max_attachment_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit + 65_536:
            return http_error(413, "too_large", f"file: larger than {limit} bytes")
        try:
            attachment, client_id, body = await read_upload(request, self.settings)
        except FileRefused as exc:
            return http_error(exc.status, exc.code, exc.detail)
        retry = self._throttle(visitor.thread_key, request.client.host if request.client else "")
        if retry is not None:
            return http_error(429, "rate_limited", "too many messages; wait a moment", retry_after=round(retry, 1))
        thread = self._threads.get((inbox.id, visitor.thread_key))
        try:
            view = await self._deliver(inbox, visitor, client_id, body, [attachment])
        except FrameError as exc:
            return http_error(409, exc.code, exc.detail)
        except Overloaded as busy:
            self._give_back(visitor.thread_key, request.client.host if request.client else "")
            return http_error(503, "slow_down", SLOW_DOWN, retry_after=busy.retry_after)
        if thread is not None:
            await self._broadcast(thread, {"type": "message", "message": view})
        return JSONResponse({"type": "ack", "client_id": client_id, "message": view}, status_code=201)

    async def visitor_of_request(self, request: Request) -> tuple[InboxInfo, str, Identity] | Response:
        """The inbox, thread key and identity a widget HTTP request speaks for, or the error to answer.

        Checked as for uploads: `?key=` names the inbox and `Authorization: Bearer` carries the welcome's
        upload token. The core's own widget endpoints (self-service answers) authorise visitors with this.
        """
        holder = await ticket_holder(self.host, self.settings, request)
        if isinstance(holder, Response):
            return holder
        inbox, visitor = holder
        return inbox, visitor.thread_key, visitor.sender

    # ── plumbing ────────────────────────────────────────────────────────────────────────────
    async def _receive(self, ws: WebSocket) -> str:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        if message.get("text") is not None:
            return str(message["text"])
        return _utf8(message.get("bytes"))

    def _throttle(self, thread_key: str, ip: str) -> float | None:
        return self._visitor_limit.take(thread_key) or self._ip_limit.take(ip)

    def _give_back(self, thread_key: str, ip: str) -> None:
        """A refused message costs the visitor nothing against the rate limits: it is sent again later."""
        self._visitor_limit.give_back(thread_key)
        self._ip_limit.give_back(ip)

    def _remember(self, inbox_id: int, thread_key: str, conversation_id: int) -> None:
        thread = self._threads.get((inbox_id, thread_key))
        if thread is not None:
            thread.conversation_id = conversation_id
            self._by_conversation[conversation_id] = (inbox_id, thread_key)

    def _view(self, inbox_id: int, message: ThreadMessage, sender_value: str) -> dict[str, Any]:
        key = self.settings.token_key

        def url(message_id: int, index: int) -> str:
            return "/widget/files/" + protocol.sign(key, {"k": "file", "i": inbox_id, "m": message_id, "n": index})

        return protocol.message_view(message, sender_value, url)

    def _upload_ticket(self, connection: Connection) -> str:
        expires = time.time() + self.settings.upload_ticket_seconds
        return protocol.upload_ticket(self.settings.token_key, connection.inbox.id, connection.visitor, expires)

    async def _broadcast(self, thread: Thread, frame: Mapping[str, Any], skip: Connection | None = None) -> None:
        targets = [connection for connection in list(thread.connections) if connection is not skip]
        await asyncio.gather(*(connection.send(frame) for connection in targets))


def _utf8(data: bytes | None) -> str:
    """A binary frame's JSON: refused with 1007 when it is not UTF-8 (never guessed at with U+FFFD).

    Text frames are validated by the websocket layer before they reach the channel.
    """
    try:
        return bytes(data or b"").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(CLOSE_INVALID_DATA, "invalid_utf8", f"frame: not valid UTF-8 (byte {exc.start})") from exc
