"""`VkChannel`: the I/O for VK community messages — the Callback API in, API methods out, over httpx.

Receive: `POST /channels/vk/{inbox_id}`, one route for every inbox. An event is accepted only when its
`group_id` is the inbox's community and its `secret` is the inbox's secret key (403 otherwise, nothing done).
`confirmation` is answered with the inbox's confirmation code; every other event with the plain text "ok" and
HTTP 200, but only once it is stored — VK sends an event again when the answer is anything else, so a 503
(database down, core `Overloaded` with `Retry-After`) means "later", never "lost". A retried event is skipped
by its `event_id` while the process remembers it, and stored once in any case because a message's
`(inbox, external_id)` is unique in the core (checked before downloading its files, too). An event that keeps
failing is skipped with "ok" after `MAX_STORE_ATTEMPTS`, because VK stops calling a server that errs many
times in a row. `message_allow`/`message_deny` set or clear the contact attribute `vk_unreachable`.

Send: `messages.send` per part of the reply (see `outbound`), files uploaded first (photos through
`photos.getMessagesUploadServer` → upload → `photos.saveMessagesPhoto`, other files through
`docs.getMessagesUploadServer` → upload → `docs.save`). VK's errors become `DeliveryError`s; a refusal that
means the person cannot be written to also marks the contact `vk_unreachable`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import httpx
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from channels.base import (
    ChannelHealth,
    DeliveryError,
    Host,
    Inbound,
    InboundAttachment,
    InboxInfo,
    Outbound,
    OutboundAttachment,
    Overloaded,
    Receipt,
)
from channels.vk.api import TooLarge, VkApi, VkApiError
from channels.vk.events import (
    DENIED,
    Action,
    Confirm,
    Echo,
    Edited,
    EventError,
    FileRef,
    Ignored,
    Reachability,
    Received,
    Refused,
    action_of,
    check_event,
    event_key,
    outbound_external_id,
)
from channels.vk.outbound import attachment_string, failure, parts, peer_of, random_id, send_params, upload_kind
from channels.vk.settings import CALLBACK_PATH, InboxSettings, SettingsError, VkSettings, inbox_settings

log = logging.getLogger(__name__)

MAX_EVENT_BODY = 1_048_576
MAX_STORE_ATTEMPTS = 5
MAX_INBOX_ID = 2**31 - 1  # the store's integer keys; a larger id cannot name an inbox
REMEMBERED_EVENTS = 10_000
REMEMBERED_NAMES = 10_000
TYPING_EVERY_SECONDS = 5.0  # VK shows "typing" for about 10 s


class Transient(Exception):
    """Storing an event failed for a reason that may pass (network, database): VK should send it again."""


def _text(status: int, body: str) -> PlainTextResponse:
    return PlainTextResponse(body, status_code=status)


class VkChannel:
    """One route for every VK inbox; sends replies through the community's access token."""

    name: ClassVar[str] = "vk"

    def __init__(self, host: Host, settings: VkSettings | None = None, client: httpx.AsyncClient | None = None) -> None:
        self.host = host
        self.settings = settings or VkSettings()
        self.routes: Sequence[BaseRoute] = [
            Route(CALLBACK_PATH.replace("{inbox_id}", "{inbox_id:int}"), self.callback, methods=["POST"])
        ]
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(timeout=self.settings.timeout_seconds)
        self.api = VkApi(self.settings, self.client)
        self._locks: dict[int, asyncio.Lock] = {}
        self._seen: OrderedDict[tuple[int, str], None] = OrderedDict()
        self._attempts: dict[tuple[int, str], int] = {}
        self._names: OrderedDict[tuple[int, int], str] = OrderedDict()
        self._typing: dict[tuple[int, str], float] = {}
        self._health: dict[int, ChannelHealth] = {}

    # ── receiving ───────────────────────────────────────────────────────────────────────────
    async def run(self, inbox: InboxInfo) -> None:
        """A push channel: check the settings (so a broken inbox shows in the runner's log) and return."""
        inbox_settings(inbox)

    async def callback(self, request: Request) -> Response:
        inbox_id: int = request.path_params["inbox_id"]
        if not 1 <= inbox_id <= MAX_INBOX_ID:
            return _text(404, f"inbox {inbox_id} not found")
        inbox = await self.host.inbox(inbox_id)
        if inbox is None or inbox.channel != self.name:
            return _text(404, f"inbox {inbox_id} not found")
        try:
            settings = inbox_settings(inbox)
        except SettingsError as exc:
            log.error("vk: %s", exc)
            return _text(503, f"inbox {inbox_id} is not configured for VK")
        body = await request.body()
        if len(body) > MAX_EVENT_BODY:
            return _text(413, f"request body is larger than {MAX_EVENT_BODY} bytes")
        try:
            event = json.loads(body)
        except ValueError as exc:
            return _text(400, f"body: malformed JSON ({exc})")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return _text(400, "body: expected a Callback API event with a type")
        try:
            check_event(settings, event)
        except Refused as exc:
            log.warning("vk: inbox %s: event refused: %s", inbox_id, exc)
            return _text(403, f"refused: {exc}")
        try:
            action = action_of(inbox_id, settings, event)
        except EventError as exc:
            # It carries the secret, so it is from VK: answer "ok", or VK would stall on it and then stop calling.
            log.error("vk: inbox %s: event %s is unreadable (%s); skipped", inbox_id, event_key(event), exc)
            return _text(200, "ok")
        if isinstance(action, Confirm):
            return _text(200, action.code)
        try:
            outcome = await self.process(inbox, settings, event_key(event), action)
        except Transient as exc:
            return _text(503, f"event not stored yet: {exc}")
        except Overloaded as busy:
            response = _text(503, f"event not stored yet: {busy.reason}")
            response.headers["retry-after"] = str(max(1, math.ceil(busy.retry_after)))
            return response
        log.debug("vk: inbox %s: event %s: %s", inbox_id, event_key(event), outcome)
        self._ok(inbox_id, "last_fetch_at")
        return _text(200, "ok")

    async def process(self, inbox: InboxInfo, settings: InboxSettings, key: str | None, action: Action) -> str:
        """Handle one event once; answers "delivered", "edited", "duplicate", "reachability", "echo",
        "ignored" or "skipped". Raises `Transient` (try again) or `Overloaded` (the core is busy)."""
        async with self._locks.setdefault(inbox.id, asyncio.Lock()):
            if key is not None and (inbox.id, key) in self._seen:
                return "duplicate"
            attempt = (inbox.id, key or "")
            try:
                outcome = await self._store(inbox, settings, action)
            except Overloaded:
                raise  # not this event's fault: it does not count towards skipping it
            except Exception as exc:
                count = self._attempts[attempt] = self._attempts.get(attempt, 0) + 1
                if count < MAX_STORE_ATTEMPTS or key is None:
                    log.warning("vk: inbox %s: event %s not stored, VK will retry: %r", inbox.id, key, exc)
                    self._failed(inbox.id, exc)
                    raise Transient(str(exc) or type(exc).__name__) from exc
                log.exception("vk: inbox %s: event %s failed %s times; skipped", inbox.id, key, count)
                outcome = "skipped"
            self._attempts.pop(attempt, None)
            if key is not None:
                self._remember(self._seen, (inbox.id, key), None, REMEMBERED_EVENTS)
            return outcome

    async def _store(self, inbox: InboxInfo, settings: InboxSettings, action: Action) -> str:
        if isinstance(action, Ignored):
            return "ignored"
        if isinstance(action, Echo):  # our own reply coming back; the outbox already recorded it as sent
            return "echo"
        if isinstance(action, Reachability):
            await self.host.set_contact_attributes(
                action.identity, {"vk_unreachable": None if action.reachable else DENIED}
            )
            return "reachability"
        if isinstance(action, Edited):
            edit = dataclasses.replace(action.edit, inbound=await self._named(inbox, settings, action.edit.inbound))
            if await self.host.edit(edit) is None:
                # The original never reached us (sent before the inbox was connected): keep the new text.
                await self.host.deliver(await self._with_files(edit.inbound, action.files))
            return "edited"
        assert isinstance(action, Received)
        inbound = action.inbound
        if await self.host.known_external_ids(inbox.id, [inbound.external_id]):
            return "duplicate"  # a retried event after a restart: nothing downloaded, nothing stored
        inbound = await self._with_files(await self._named(inbox, settings, inbound), action.files)
        delivered = await self.host.deliver(inbound)
        if inbound.thread_key == inbound.sender.value:  # writing privately allows the community to answer
            await self.host.set_contact_attributes(inbound.sender, {"vk_unreachable": None})
        return "delivered" if delivered.created else "duplicate"

    async def _named(self, inbox: InboxInfo, settings: InboxSettings, inbound: Inbound) -> Inbound:
        """The sender with their VK name (`users.get`, remembered); without it when VK cannot say."""
        user_id = int(inbound.sender.value)
        name = self._names.get((inbox.id, user_id))
        if name is None:
            try:
                users = await self.api.call(settings.access_token, "users.get", {"user_ids": str(user_id)})
                first = users[0] if isinstance(users, list) and users and isinstance(users[0], dict) else {}
                name = " ".join(str(first.get(part) or "") for part in ("first_name", "last_name")).strip()
            except (httpx.HTTPError, VkApiError, ValueError) as exc:
                log.info("vk: inbox %s: no name for user %s: %s", inbox.id, user_id, exc)
                return inbound
            self._remember(self._names, (inbox.id, user_id), name, REMEMBERED_NAMES)
        sender = dataclasses.replace(inbound.sender, name=name[:300])
        return dataclasses.replace(inbound, sender=sender)

    async def _with_files(self, inbound: Inbound, refs: Sequence[FileRef]) -> Inbound:
        """Download the message's files; one that cannot be had is noted in the text instead (not retried)."""
        if not refs:
            return inbound
        attachments: list[InboundAttachment] = []
        notes: list[str] = []
        limit = self.settings.max_file_bytes
        for ref in refs:
            if ref.size is not None and ref.size > limit:
                notes.append(f"[{ref.filename} was not stored: larger than {limit} bytes]")
                continue
            try:
                data = await self.api.download(ref.url, limit)
            except TooLarge as exc:
                notes.append(f"[{ref.filename} was not stored: {exc}]")
                continue
            except httpx.HTTPStatusError as exc:  # VK refuses the link (expired, removed): retrying won't help
                notes.append(f"[{ref.filename} could not be downloaded: HTTP {exc.response.status_code}]")
                continue
            except httpx.InvalidURL:
                notes.append(f"[{ref.filename} could not be downloaded: not an http(s) link]")
                continue
            attachments.append(InboundAttachment(ref.filename, ref.content_type, data))
        text = "\n".join([inbound.text, *notes]) if notes else inbound.text
        return dataclasses.replace(inbound, text=text, attachments=attachments)

    # ── sending ─────────────────────────────────────────────────────────────────────────────
    async def send(self, message: Outbound) -> Receipt:
        try:
            settings = inbox_settings(message.inbox)
        except SettingsError as exc:
            raise DeliveryError(str(exc)) from exc
        peer_id = peer_of(message)
        first: int | None = None
        try:
            for part in parts(message):
                files = [await self._upload(settings, peer_id, item) for item in part.attachments]
                rid = random_id(message.inbox.id, message.message_id, part.index)
                sent = await self.api.call(
                    settings.access_token, "messages.send", send_params(peer_id, part, rid, files)
                )
                if not isinstance(sent, int):
                    raise DeliveryError(f"VK answered messages.send with {sent!r}"[:300], retry_after=None)
                first = sent if first is None else first
        except VkApiError as exc:
            mapped = failure(exc.code, exc.message)
            if mapped.unreachable and message.recipient is not None and message.recipient.value == str(peer_id):
                await self.host.set_contact_attributes(message.recipient, {"vk_unreachable": mapped.error.reason})
            raise self._failure(message, mapped.error) from exc
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            retry = 5.0 if status >= 500 or status == 429 else None
            raise self._failure(message, DeliveryError(f"VK answered HTTP {status}", retry)) from exc
        except httpx.HTTPError as exc:
            raise self._failure(message, DeliveryError(f"VK unreachable: {exc or type(exc).__name__}", 5.0)) from exc
        except OSError as exc:  # an attachment's stored file is gone: retrying will not bring it back
            raise self._failure(message, DeliveryError(f"attachment could not be read: {exc.strerror or exc}")) from exc
        except DeliveryError as exc:
            raise self._failure(message, exc) from exc
        self._ok(message.inbox.id, "last_send_at")
        assert first is not None
        return Receipt(external_id=outbound_external_id(peer_id, first))

    async def _upload(self, settings: InboxSettings, peer_id: int, item: OutboundAttachment) -> str:
        """Upload one file for this dialog; answers its `attachment` string."""
        data = await asyncio.to_thread(Path(item.path).read_bytes)
        token = settings.access_token
        if upload_kind(item) == "photo":
            server = await self.api.call(token, "photos.getMessagesUploadServer", {"peer_id": str(peer_id)})
            uploaded = await self.api.upload(_upload_url(server), "photo", item.filename, item.content_type, data)
            fields = {key: str(uploaded.get(key, "")) for key in ("photo", "server", "hash")}
            saved = await self.api.call(token, "photos.saveMessagesPhoto", fields)
            return attachment_string("photo", saved[0] if isinstance(saved, list) and saved else {})
        server = await self.api.call(token, "docs.getMessagesUploadServer", {"type": "doc", "peer_id": str(peer_id)})
        uploaded = await self.api.upload(_upload_url(server), "file", item.filename, item.content_type, data)
        saved = await self.api.call(token, "docs.save", {"file": str(uploaded.get("file", "")), "title": item.filename})
        doc = saved.get("doc") if isinstance(saved, dict) else None
        return attachment_string("doc", doc if isinstance(doc, dict) else {})

    def _failure(self, message: Outbound, error: DeliveryError) -> DeliveryError:
        self._health_set(message.inbox.id, last_error_at=time.time(), last_error=error.reason)
        return error

    async def show_typing(self, inbox: InboxInfo, thread_key: str) -> None:
        """`messages.setActivity` "typing", at most every few seconds per dialog; failures only logged."""
        now = time.monotonic()
        if now - self._typing.get((inbox.id, thread_key), -TYPING_EVERY_SECONDS) < TYPING_EVERY_SECONDS:
            return
        if len(self._typing) > 10_000:  # forget dialogs nobody typed in lately
            self._typing = {k: at for k, at in self._typing.items() if now - at < TYPING_EVERY_SECONDS}
        self._typing[(inbox.id, thread_key)] = now
        try:
            settings = inbox_settings(inbox)
            params = {"peer_id": str(int(thread_key)), "type": "typing", "group_id": str(settings.group_id)}
            await self.api.call(settings.access_token, "messages.setActivity", params)
        except (httpx.HTTPError, VkApiError, SettingsError, ValueError) as exc:
            log.info("vk: inbox %s: typing not shown: %s", inbox.id, exc)

    # ── plumbing ────────────────────────────────────────────────────────────────────────────
    @staticmethod
    def _remember(memory: OrderedDict[Any, Any], key: Any, value: Any, size: int) -> None:
        memory[key] = value
        memory.move_to_end(key)
        while len(memory) > size:
            memory.popitem(last=False)

    def _ok(self, inbox_id: int, field: str) -> None:
        self._health_set(inbox_id, **{field: time.time()})

    def _failed(self, inbox_id: int, error: BaseException) -> None:
        self._health_set(inbox_id, last_error_at=time.time(), last_error=f"{type(error).__name__}: {error}")

    def _health_set(self, inbox_id: int, **changes: Any) -> None:
        current = self._health.get(inbox_id, ChannelHealth(inbox_id))
        self._health[inbox_id] = dataclasses.replace(current, **changes)

    def health(self) -> Sequence[ChannelHealth]:
        return list(self._health.values())

    async def close(self) -> None:
        if self._own_client:
            await self.client.aclose()


def _upload_url(server: Any) -> str:
    url = server.get("upload_url") if isinstance(server, dict) else None
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise DeliveryError(f"VK answered no upload_url: {server!r}"[:300])
    return url
