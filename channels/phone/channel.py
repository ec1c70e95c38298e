"""`PhoneChannel`: the I/O of the phone (CTI) channel — a call-event webhook in, click-to-call out, over httpx.

Receive: `POST /channels/phone/{inbox_id}`, one route for every phone inbox, one signed JSON event per request
(`events` and `signature` say what). Answers: 404 unknown inbox; 401 bad/missing signature or stale timestamp;
400 not JSON; 413 too large; 422 an event we cannot read (the body names the field); 503 the core cannot store
it now (with `Retry-After` when it is overloaded: the PBX should send it again); otherwise 200 and
`{"outcome": "stored" | "signalled" | "duplicate"}`. Nothing is delivered before the signature is checked.

One message per call, stored from `call.ended` only: `call.ringing` and `call.answered` are ephemeral frames
(`{"type": "call", "state": …}`) that show the call live and store nothing, so nothing needs updating later and
the message is created once, complete (duration, who answered, recording), by the event that can reopen a
conversation. A missed call or voicemail is therefore never lost to an earlier event's failure, and a replayed
event is stored once because the core keys messages by `(inbox, external_id)` (`call:<call_id>`); that key
is checked first, so a replay downloads no recording. Out of order: an `answered` that comes after `ended`, or
a `ringing` after `answered`, is answered "duplicate" and not shown; an `ended` that comes before `answered`
is stored at once, and the agent of an earlier `answered` fills in an `ended` that lacks one (while this
process remembers the call).

The ringing frame goes to the host's optional `ContactSignalling` (reaches agents even before the caller has a
conversation, with the contact's name and history), else to `Host.signal` (only callers with a conversation).

The recording is downloaded (size-limited) into the message's attachment; if it cannot be had, the message is
stored anyway with a note and the URL in its metadata — a missed call must not wait for a file server.

Send: a phone inbox cannot carry text; `send` fails permanently with the reason. `dial` asks the PBX to call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import mimetypes
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from channels.base import (
    ChannelHealth,
    ContactSignalling,
    DeliveryError,
    Host,
    InboundAttachment,
    InboxInfo,
    Outbound,
    Overloaded,
    Receipt,
)
from channels.phone.dial import dial_request
from channels.phone.events import (
    CallEvent,
    EventError,
    EventType,
    call_frame,
    identity_of,
    inbound_of,
    merged,
    read_event,
    recording_filename,
)
from channels.phone.settings import EVENTS_PATH, InboxSettings, PhoneSettings, SettingsError, inbox_settings
from channels.phone.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_problem

log = logging.getLogger(__name__)

MAX_EVENT_BODY = 65_536
MAX_INBOX_ID = 2**31 - 1  # the store's integer keys; a larger id cannot name an inbox
REMEMBERED_CALLS = 10_000
STAGE = {EventType.RINGING: 0, EventType.ANSWERED: 1, EventType.ENDED: 2}
CANNOT_SEND = "a phone inbox cannot send messages: call the customer back (click-to-call) or answer on another channel"


@dataclasses.dataclass(slots=True)
class _Call:
    """What this process remembers of a call: how far it got, and its answered event (who took it)."""

    stage: int
    answered: CallEvent | None = None


@dataclasses.dataclass(slots=True)
class _Lock:
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    users: int = 0


class TooLarge(Exception):
    """A download is larger than the limit; nothing was kept."""


def _json(status: int, **body: Any) -> JSONResponse:
    return JSONResponse(body, status_code=status)


class PhoneChannel:
    """One route for every phone inbox; `dial` for click-to-call."""

    name: ClassVar[str] = "phone"

    def __init__(
        self,
        host: Host,
        settings: PhoneSettings | None = None,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host = host
        self.settings = settings or PhoneSettings()
        self.clock = clock
        self.routes: Sequence[BaseRoute] = [
            Route(EVENTS_PATH.replace("{inbox_id}", "{inbox_id:int}"), self.receive, methods=["POST"])
        ]
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(timeout=self.settings.timeout_seconds)
        self._calls: OrderedDict[tuple[int, str], _Call] = OrderedDict()
        self._locks: dict[tuple[int, str], _Lock] = {}
        self._health: dict[int, ChannelHealth] = {}

    # ── receiving ───────────────────────────────────────────────────────────────────────────
    async def run(self, inbox: InboxInfo) -> None:
        """A push channel: check the settings (so a broken inbox shows in the runner's log) and return."""
        inbox_settings(inbox)

    async def receive(self, request: Request) -> Response:
        inbox_id: int = request.path_params["inbox_id"]
        if not 1 <= inbox_id <= MAX_INBOX_ID:
            return _json(404, error=f"inbox {inbox_id} not found")
        inbox = await self.host.inbox(inbox_id)
        if inbox is None or inbox.channel != self.name:
            return _json(404, error=f"inbox {inbox_id} not found")
        try:
            settings = inbox_settings(inbox)
        except SettingsError as exc:
            log.error("phone: %s", exc)
            return _json(503, error=f"inbox {inbox_id} is not configured for phone events")
        body = await request.body()
        if len(body) > MAX_EVENT_BODY:
            return _json(413, error=f"request body is larger than {MAX_EVENT_BODY} bytes")
        problem = signature_problem(
            settings.signing_secret,
            body,
            request.headers.get(SIGNATURE_HEADER),
            request.headers.get(TIMESTAMP_HEADER),
            now=self.clock(),
            max_skew=self.settings.max_clock_skew_seconds,
        )
        if problem:
            log.warning("phone: inbox %s: event refused: %s", inbox_id, problem)
            return _json(401, error=problem)
        try:
            data = json.loads(body)
        except ValueError as exc:
            return _json(400, error=f"body: malformed JSON ({exc})")
        try:
            event = read_event(data, settings.default_country_code)
        except EventError as exc:
            log.warning("phone: inbox %s: event refused: %s", inbox_id, exc)
            return _json(422, error=str(exc), field=exc.key)
        try:
            outcome = await self.process(inbox, settings, event)
        except Overloaded as busy:
            response = _json(503, error=f"event not stored yet: {busy.reason}")
            response.headers["retry-after"] = str(max(1, math.ceil(busy.retry_after)))
            return response
        except Exception as exc:  # database down and the like: the PBX sends it again
            log.exception("phone: inbox %s: %s of call %s not handled", inbox_id, event.type, event.call_id)
            self._health_set(inbox_id, last_error_at=time.time(), last_error=f"{type(exc).__name__}: {exc}")
            return _json(503, error="event not stored yet; send it again")
        self._health_set(inbox_id, last_fetch_at=time.time())
        log.debug("phone: inbox %s: %s of call %s: %s", inbox_id, event.type, event.call_id, outcome)
        return _json(200, outcome=outcome)

    async def process(self, inbox: InboxInfo, settings: InboxSettings, event: CallEvent) -> str:
        """Handle one event: "stored" (the call's message), "signalled" (a live frame) or "duplicate"."""
        key = (inbox.id, event.call_id)
        entry = self._locks.setdefault(key, _Lock())
        entry.users += 1
        try:
            async with entry.lock:  # one event of a call at a time; other calls go on meanwhile
                return await self._process(inbox, event)
        finally:
            entry.users -= 1
            if not entry.users:
                del self._locks[key]

    async def _process(self, inbox: InboxInfo, event: CallEvent) -> str:
        key = (inbox.id, event.call_id)
        known = self._calls.get(key)
        if known is not None and known.stage >= STAGE[event.type] and event.type is not EventType.ENDED:
            return "duplicate"  # a replay, or an event overtaken by a later one of the same call
        if await self.host.known_external_ids(inbox.id, [event.external_id]):
            self._remember(key, _Call(STAGE[EventType.ENDED]))
            return "duplicate"  # the call's message is stored: it already says everything
        if event.type is not EventType.ENDED:
            await self._signal(inbox, event)
            self._remember(key, _Call(STAGE[event.type], event if event.type is EventType.ANSWERED else None))
            return "signalled"
        ended = merged(event, known.answered if known else None)
        attachments, note = await self._recording(ended)
        delivered = await self.host.deliver(inbound_of(inbox.id, ended, attachments, note))
        self._remember(key, _Call(STAGE[EventType.ENDED]))
        try:  # the message is stored; the frame only takes the ringing call off the agents' screens
            await self._signal(inbox, ended)
        except Exception:
            log.exception("phone: inbox %s: call %s stored, its end not signalled", inbox.id, event.call_id)
        return "stored" if delivered.created else "duplicate"

    async def _signal(self, inbox: InboxInfo, event: CallEvent) -> None:
        frame = call_frame(event)
        if isinstance(self.host, ContactSignalling):
            await self.host.signal_contact(inbox.id, identity_of(event), frame)
        else:
            await self.host.signal(inbox.id, event.customer, frame)

    async def _recording(self, event: CallEvent) -> tuple[tuple[InboundAttachment, ...], str | None]:
        """The call's recording as an attachment, or a note saying why it is not there (never an error)."""
        if event.recording_url is None:
            return (), None
        limit = self.settings.max_recording_bytes
        try:
            data, content_type = await self._download(event.recording_url, limit)
        except TooLarge:
            return (), f"[The recording was not stored: larger than {limit} bytes]"
        except httpx.HTTPStatusError as exc:
            return (), f"[The recording could not be downloaded: HTTP {exc.response.status_code}]"
        except httpx.HTTPError as exc:
            log.warning("phone: recording of call %s not downloaded: %r", event.call_id, exc)
            return (), f"[The recording could not be downloaded: {type(exc).__name__}]"
        if not content_type.startswith("audio/"):
            content_type = mimetypes.guess_type(urlsplit(event.recording_url).path)[0] or content_type
        return (InboundAttachment(recording_filename(event, content_type), content_type, data),), None

    async def _download(self, url: str, limit: int) -> tuple[bytes, str]:
        """A file's bytes and content type; raises `TooLarge` past `limit`, checked while streaming."""
        async with self.client.stream("GET", url, follow_redirects=True) as response:
            response.raise_for_status()
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise TooLarge(f"larger than {limit} bytes")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"larger than {limit} bytes")
                chunks.append(chunk)
            content_type = response.headers.get("content-type", "application/octet-stream").split(";")[0].strip()
            return b"".join(chunks), content_type.lower() or "application/octet-stream"

    # ── sending ─────────────────────────────────────────────────────────────────────────────
    async def send(self, message: Outbound) -> Receipt:
        """A phone line carries no text: always a permanent failure with the reason."""
        raise DeliveryError(CANNOT_SEND)

    async def dial(self, inbox: InboxInfo, agent_extension: str | None, number: str) -> str | None:
        """Click-to-call: ask the inbox's PBX to connect the agent with `number` (E.164).

        Answers None when the PBX accepted the request, or the `tel:` link for the agent's browser to open when
        the inbox has no `dial_url`. Raises `DeliveryError` when the PBX refuses (permanent) or is unreachable
        or answers 5xx/429 (`retry_after` set), and `ValueError` for a number or extension that cannot be dialled.
        """
        try:
            settings = inbox_settings(inbox)
        except SettingsError as exc:
            raise DeliveryError(str(exc)) from exc
        url = dial_request(settings.dial_url, agent_extension, number)
        if settings.dial_url is None:
            return url
        try:
            response = await self.client.get(url)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"the PBX is unreachable: {type(exc).__name__}", retry_after=5.0) from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise DeliveryError(f"the PBX answered HTTP {response.status_code}", retry_after=5.0)
        if response.status_code >= 400:
            raise DeliveryError(f"the PBX refused the call: HTTP {response.status_code}")
        self._health_set(inbox.id, last_send_at=time.time())
        return None

    # ── plumbing ────────────────────────────────────────────────────────────────────────────
    def _remember(self, key: tuple[int, str], call: _Call) -> None:
        self._calls[key] = call
        self._calls.move_to_end(key)
        while len(self._calls) > REMEMBERED_CALLS:
            self._calls.popitem(last=False)

    def _health_set(self, inbox_id: int, **changes: Any) -> None:
        current = self._health.get(inbox_id, ChannelHealth(inbox_id))
        self._health[inbox_id] = dataclasses.replace(current, **changes)

    def health(self) -> Sequence[ChannelHealth]:
        return list(self._health.values())

    async def close(self) -> None:
        if self._own_client:
            await self.client.aclose()
