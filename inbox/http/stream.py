"""The agent stream: websocket `/api/v1/stream?after=<event id>`.

Replays the log after `after`, then forwards live events from the hub; frames a client has already seen
are skipped, so the switch from replay to live neither loses nor doubles an event. Authorisation is the
hub's `may_see`. Errors are frames followed by a close with a 44xx code, never a silent close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from inbox.errors import InboxError
from inbox.http.routing import optional_caller
from inbox.http.services import services
from inbox.read import access
from inbox.realtime import events
from inbox.realtime.events import EventRecord
from inbox.realtime.hub import OVERFLOW, Subscription
from inbox.realtime.wsserver import PREPARED
from inbox.store.models import Agent

log = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_BAD_REQUEST = 4400
CLOSE_TOO_SLOW = 4408
REPLAY_BATCH = 500
FORWARD_BATCH = 64  # queued frames sent in one write at most


async def _send(ws: WebSocket, frame: dict[str, Any]) -> None:
    await ws.send_text(json.dumps(frame, separators=(",", ":")))


async def _fail(ws: WebSocket, code: int, error: str, detail: str) -> None:
    with contextlib.suppress(Exception):
        await _send(ws, {"type": "error", "code": error, "detail": detail})
        await ws.close(code=code)


async def _authenticate(ws: WebSocket) -> Agent | None:
    try:
        found = await optional_caller(ws)
    except InboxError as exc:
        await _fail(ws, CLOSE_UNAUTHORIZED, "unauthorized", exc.detail)
        return None
    if found is not None:
        return found.agent
    timeout = services(ws).config.stream.auth_timeout_seconds
    try:
        frame = json.loads(await asyncio.wait_for(ws.receive_text(), timeout))
    except (TimeoutError, ValueError, WebSocketDisconnect):
        frame = None
    if not isinstance(frame, dict) or frame.get("type") != "auth" or not isinstance(frame.get("token"), str):
        await _fail(ws, CLOSE_UNAUTHORIZED, "unauthorized", 'send {"type":"auth","token":…} first')
        return None
    agent = await services(ws).authenticator.agent_for_token(frame["token"])
    if agent is None:
        await _fail(ws, CLOSE_UNAUTHORIZED, "unauthorized", "invalid or revoked API token")
    return agent


def _after(ws: WebSocket) -> int | str | None:
    raw = ws.query_params.get("after")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        return f"after: expected a non-negative event id, got {raw!r}"
    return int(raw)


async def stream_endpoint(ws: WebSocket) -> None:
    await ws.accept()
    after = _after(ws)
    if isinstance(after, str):
        await _fail(ws, CLOSE_BAD_REQUEST, "invalid", after)
        return
    agent = await _authenticate(ws)
    if agent is None:
        return
    state = services(ws)
    visible = await access.inbox_ids(state.store, agent)
    assert agent.id is not None
    subscription = state.hub.subscribe(agent.id, is_admin=visible is None, inbox_ids=visible or frozenset())
    writer = asyncio.create_task(_write(ws, subscription, after))
    reader = asyncio.create_task(_read_client(ws, agent, subscription))

    def cut_off() -> None:
        writer.cancel()

    subscription.on_cut_off = cut_off
    try:
        await asyncio.wait({writer, reader}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        state.hub.unsubscribe(subscription)
        writer.cancel()
        reader.cancel()
        await asyncio.gather(writer, reader, return_exceptions=True)
    if subscription.overflowed:
        log.info("agent %s stream cut off: it stopped reading", agent.id)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(code=CLOSE_TOO_SLOW, reason="too slow"), 1.0)


async def _write(ws: WebSocket, subscription: Subscription, after: int | None) -> None:
    try:
        last = await _replay(ws, subscription, after)
        await _send(ws, {"type": "ready", "last_event_id": last})
        await _forward(ws, subscription, last)
    except (WebSocketDisconnect, RuntimeError, OSError):
        return


async def _replay(ws: WebSocket, subscription: Subscription, after: int | None) -> int:
    """Send every stored event after `after` the agent may see; answer the last id considered.

    Only settled ids are replayed (`events.read_settled`): an event whose transaction is still running when
    the replay ends reaches the client live, through the hub, which hands events on in id order.
    """
    state = services(ws)
    store = state.store
    async with store.session() as session:
        if after is not None and after < await events.pruned_through(session):
            await _send(ws, {"type": "resync"})
            after = None
    if after is None:
        # Start from what the hub has handed on: everything after it reaches this subscription live.
        last_id: int | None = state.hub.last_id
        return last_id if last_id is not None else await events.latest_settled(store)
    last = after
    while True:
        read = await events.read_settled(store, last, limit=REPLAY_BATCH)
        for event in read.events:
            if subscription.sees(event):
                await _send(ws, event.frame())
        last = read.through
        if read.settled and not read.more:
            return last


async def _forward(ws: WebSocket, subscription: Subscription, last: int) -> None:
    """Send what the hub queued, in order. The server's own websocket protocol takes frames made once for every
    agent (`inbox.realtime.wsserver`); the events queued together (a batch's publish queues them all at once) go out
    in one write, so the writer wakes once per batch, not once per event."""
    hub = services(ws).hub
    prepared = ws.scope.get("extensions", {}).get(PREPARED)
    queue = subscription.queue
    while True:
        items = [await queue.get()]
        while not queue.empty() and len(items) < FORWARD_BATCH:
            items.append(queue.get_nowait())
        frames: list[bytes] = []
        for item in items:
            if isinstance(item, EventRecord):
                if item.id <= last:
                    continue  # already sent during replay
                last = item.id
                if prepared is not None:
                    frames.append(hub.framed(item))
                else:
                    await ws.send_text(hub.encode(item))
                continue
            if frames:  # what came before it goes first
                await prepared(b"".join(frames))
                frames = []
            if item is OVERFLOW:
                await _fail(ws, CLOSE_TOO_SLOW, "too_slow", "the stream fell behind; reconnect with after=<last id>")
                return
            await _send(ws, item)
        if frames:
            await prepared(b"".join(frames))


async def _read_client(ws: WebSocket, agent: Agent, subscription: Subscription) -> None:
    """Client frames: typing, viewing, seen and presence (ephemeral, never stored), ping.

    `{"type":"viewing","conversation_id":N,"active":bool}` says an agent has (or no longer has) a
    conversation open; it is broadcast like typing so others see "Bob is viewing".
    """
    state = services(ws)
    try:
        while True:
            try:
                frame = json.loads(await ws.receive_text())
            except ValueError:
                continue
            if not isinstance(frame, dict):
                continue
            kind = frame.get("type")
            if kind == "ping":
                subscription.offer({"type": "pong"})
            elif kind in ("typing", "viewing") and isinstance(frame.get("conversation_id"), int):
                try:
                    conversation = await access.conversation(state.store, agent, frame["conversation_id"])
                except InboxError:
                    continue
                await state.broker.publish_ephemeral(
                    {
                        "type": kind,
                        "conversation_id": conversation.id,
                        "agent_id": agent.id,
                        "agent_name": agent.name,
                        "active": bool(frame.get("active", True)),
                        "private": bool(frame.get("private", False)),
                    },
                    conversation.inbox_id,
                )
            elif kind == "seen" and isinstance(frame.get("conversation_id"), int):
                # The agent has read the thread: the customer's widget shows "Seen" (ephemeral, never stored).
                try:
                    conversation = await access.conversation(state.store, agent, frame["conversation_id"])
                except InboxError:
                    continue
                message_id = frame.get("message_id")
                await state.broker.publish_ephemeral(
                    {
                        "type": "seen",
                        "conversation_id": conversation.id,
                        "agent_id": agent.id,
                        "message_id": message_id if isinstance(message_id, int) else None,
                    },
                    conversation.inbox_id,
                )
            elif kind == "presence" and frame.get("availability") in ("online", "busy", "offline"):
                await state.broker.publish_ephemeral(
                    {"type": "presence", "agent_id": agent.id, "availability": frame["availability"]}, None
                )
    except (WebSocketDisconnect, RuntimeError):
        return


routes = [WebSocketRoute("/api/v1/stream", stream_endpoint)]
