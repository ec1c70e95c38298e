"""`WhatsAppChannel`: the I/O of the WhatsApp Cloud API channel (webhooks in, Graph API out).

Receive: `GET /channels/whatsapp/{inbox_id}` answers Meta's subscription handshake; `POST` on the same path
takes notifications signed with X-Hub-Signature-256 (checked over the raw body before anything is parsed;
a bad or missing signature is 401 and nothing is delivered). Messages already stored (a replayed webhook)
are skipped before their media is downloaded; the others get their media fetched and go to
`Host.deliver`. The answer is 200 only once everything is stored: 503 (with Retry-After when the core is
overloaded) makes Meta send the notification again, and the core's `(inbox, wamid)` uniqueness makes that
safe. Receipts go to the host's optional `StatusRecording` (else failures to `Host.mark_failed`); a receipt
for a wamid the outbox has not stored yet is retried a few times in the background.
Send: text split at 4096 characters, attachments uploaded then sent as media, or an approved template;
refused early (permanently) when the customer's 24-hour window is known to be closed. Graph errors become
`DeliveryError`s in `errors.graph_error`. This module must not parse payloads or build requests itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from channels.base import (
    ChannelHealth,
    DeliveryError,
    DeliveryStatus,
    Host,
    Inbound,
    InboundAttachment,
    InboxInfo,
    Outbound,
    OutboundAttachment,
    Overloaded,
    Receipt,
    StatusRecording,
)
from channels.whatsapp import errors
from channels.whatsapp.graph import Graph, GraphError, TooLarge
from channels.whatsapp.outbound import (
    Template,
    approved_templates,
    media_kind,
    media_request,
    next_page,
    recipient,
    sent_id,
    template_of,
    template_request,
    text_requests,
    window_closes_at,
    window_open,
)
from channels.whatsapp.settings import WEBHOOK_PATH, InboxSettings, SettingsError, WhatsAppSettings, inbox_settings
from channels.whatsapp.webhook import (
    SIGNATURE_HEADER,
    PayloadError,
    Received,
    StatusUpdate,
    latest_statuses,
    read_notification,
    signature_valid,
    verify_handshake,
)

log = logging.getLogger(__name__)

MAX_WEBHOOK_BODY = 3_145_728  # Meta batches up to 1000 updates per notification
MAX_INBOX_ID = 2**63 - 1
UNREACHABLE = "whatsapp_unreachable"
THREAD_LOOKBACK = 50  # messages read back to find the customer's last one (the window)
MAX_TEMPLATE_PAGES = 20


def _error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "detail": detail}}, status_code=status)


class WhatsAppChannel:
    """One Graph client for all inboxes; each inbox is one business phone number with its own secrets."""

    name: ClassVar[str] = "whatsapp"

    def __init__(
        self,
        host: Host,
        settings: WhatsAppSettings | None = None,
        *,
        status_retry_delays: Sequence[float] = (2.0, 10.0, 30.0),
    ) -> None:
        self.host = host
        self.settings = settings or WhatsAppSettings()
        path = WEBHOOK_PATH.replace("{inbox_id}", "{inbox_id:int}")
        self.routes: Sequence[BaseRoute] = [
            Route(path, self.verify, methods=["GET"]),
            Route(path, self.webhook, methods=["POST"]),
        ]
        self.graph = Graph(self.settings.api_base_url, self.settings.timeout_seconds)
        self.status_retry_delays = tuple(status_retry_delays)
        self._health: dict[int, ChannelHealth] = {}
        self._pending: set[asyncio.Task[None]] = set()

    # ── receiving ───────────────────────────────────────────────────────────────────────────
    async def run(self, inbox: InboxInfo) -> None:
        """Push channel: validate the inbox's settings (the runner shows the error) and return."""
        inbox_settings(inbox)

    async def _inbox(self, request: Request) -> tuple[InboxInfo, InboxSettings] | Response:
        inbox_id: int = request.path_params["inbox_id"]
        if not 0 < inbox_id <= MAX_INBOX_ID:
            return _error(404, "not_found", f"inbox {inbox_id} not found")
        inbox = await self.host.inbox(inbox_id)
        if inbox is None or inbox.channel != self.name:
            return _error(404, "not_found", f"inbox {inbox_id} not found")
        try:
            return inbox, inbox_settings(inbox)
        except SettingsError as exc:
            log.error("whatsapp: %s", exc)
            return _error(503, "misconfigured", f"inbox {inbox_id} is not configured for WhatsApp")

    async def verify(self, request: Request) -> Response:
        """Meta's subscription handshake: echo `hub.challenge` when `hub.verify_token` is ours."""
        found = await self._inbox(request)
        if isinstance(found, Response):
            return found
        _, settings = found
        challenge = verify_handshake(request.query_params, settings.verify_token)
        if challenge is None:
            return _error(403, "forbidden", "hub.mode must be subscribe and hub.verify_token must match")
        return PlainTextResponse(challenge)

    async def webhook(self, request: Request) -> Response:
        found = await self._inbox(request)
        if isinstance(found, Response):
            return found
        inbox, settings = found
        body = await _read_body(request)
        if body is None:
            return _error(413, "too_large", f"request body is larger than {MAX_WEBHOOK_BODY} bytes")
        if not signature_valid(body, request.headers.get(SIGNATURE_HEADER), settings.app_secret):
            log.warning("whatsapp: inbox %s: webhook with a missing or wrong signature refused", inbox.id)
            return _error(401, "unauthorized", "X-Hub-Signature-256: missing or wrong")
        try:
            notification = read_notification(inbox.id, _loads(body), settings.phone_number_id)
        except (ValueError, PayloadError) as exc:
            return _error(400, "invalid", str(exc))
        for reason in notification.skipped:
            log.info("whatsapp: inbox %s: skipped %s", inbox.id, reason)
        try:
            outcome = await self.process(inbox, settings, notification.messages, notification.statuses)
        except Overloaded as busy:
            response = _error(503, "slow_down", f"notification not stored yet: {busy.reason}")
            response.headers["retry-after"] = str(max(1, math.ceil(busy.retry_after)))
            return response
        except Exception as exc:
            log.exception("whatsapp: inbox %s: notification not stored; Meta will send it again", inbox.id)
            self._failed(inbox.id, exc)
            return _error(503, "unavailable", "notification not stored yet; send it again later")
        self._ok(inbox.id, "last_fetch_at")
        return JSONResponse({"ok": True, **outcome})

    async def process(
        self,
        inbox: InboxInfo,
        settings: InboxSettings,
        messages: Sequence[Received],
        statuses: Sequence[StatusUpdate],
    ) -> dict[str, int]:
        """Deliver new messages (media first) and record receipts; counts what happened."""
        counts = {"delivered": 0, "duplicates": 0, "statuses": 0}
        ids = [received.inbound.external_id for received in messages]
        known = await self.host.known_external_ids(inbox.id, ids) if ids else set()
        for received in messages:
            if received.inbound.external_id in known:
                counts["duplicates"] += 1
                continue
            inbound = await self._with_media(settings, received)
            delivered = await self.host.deliver(inbound)
            counts["delivered" if delivered.created else "duplicates"] += 1
            known.add(inbound.external_id)  # the same wamid twice in one batch
            await self.host.set_contact_attributes(inbound.sender, {UNREACHABLE: None})
        for update in latest_statuses(statuses):
            if await self._record(inbox.id, update):
                counts["statuses"] += 1
            else:
                self._retry_later(inbox.id, update)
        return counts

    async def _with_media(self, settings: InboxSettings, received: Received) -> Inbound:
        inbound = received.inbound
        if not received.media:
            return inbound
        attachments: list[InboundAttachment] = []
        notes: list[str] = []
        for ref in received.media:
            try:
                data = await self._download(settings, ref.media_id)
            except (GraphError, TooLarge) as exc:  # refused or too big: retrying will not help
                notes.append(f"[{ref.filename} could not be downloaded: {_why(exc)}]")
                continue
            attachments.append(InboundAttachment(ref.filename, ref.content_type, data))
        text = "\n".join([inbound.text, *notes]) if notes else inbound.text
        return dataclasses.replace(inbound, text=text, attachments=attachments)

    async def _download(self, settings: InboxSettings, media_id: str) -> bytes:
        """GET /{media-id} → its short-lived url (and size), then GET that url with the same token."""
        info = await self.graph.get(media_id, settings.access_token)
        url = info.get("url") if isinstance(info, dict) else None
        if not isinstance(url, str) or not url:
            raise GraphError(200, info, None)
        size = info.get("file_size")
        limit = self.settings.max_media_bytes
        if isinstance(size, int) and size > limit:
            raise TooLarge(f"larger than {limit} bytes")
        return await self.graph.download(url, settings.access_token, limit)

    # ── receipts ────────────────────────────────────────────────────────────────────────────
    async def _record(self, inbox_id: int, update: StatusUpdate) -> bool:
        if isinstance(self.host, StatusRecording):
            return await self.host.record_status(
                inbox_id, update.external_id, update.status, at=update.at, error=update.error
            )
        if update.status is DeliveryStatus.FAILED:
            return await self.host.mark_failed(inbox_id, update.external_id, update.error or "failed")
        return True  # the host keeps no receipts: nothing to wait for

    def _retry_later(self, inbox_id: int, update: StatusUpdate) -> None:
        """A receipt can beat the outbox storing the wamid it is for: try again a few times, then log."""
        if not self.status_retry_delays:
            return

        async def retry() -> None:
            for delay in self.status_retry_delays:
                await asyncio.sleep(delay)
                try:
                    if await self._record(inbox_id, update):
                        return
                except Exception:
                    log.exception("whatsapp: inbox %s: receipt for %s not recorded", inbox_id, update.external_id)
            log.info(
                "whatsapp: inbox %s: receipt %s for unknown message %s dropped (sent from elsewhere?)",
                inbox_id,
                update.status,
                update.external_id,
            )

        task = asyncio.get_running_loop().create_task(retry())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # ── sending ─────────────────────────────────────────────────────────────────────────────
    async def send(self, message: Outbound) -> Receipt:
        try:
            settings = inbox_settings(message.inbox)
        except SettingsError as exc:
            raise DeliveryError(str(exc)) from exc
        to = recipient(message)
        template = template_of(message)
        if template is None:
            await self._check_window(message)
        try:
            first = await self._send_parts(message, settings, to, template)
        except GraphError as exc:
            failure = errors.graph_error(exc.status, exc.body, exc.retry_after)
            await self._maybe_unreachable(message, exc, failure)
            raise self._failure(message, failure.reason, failure.retry_after) from exc
        except httpx.TransportError as exc:
            raise self._failure(message, f"WhatsApp unreachable: {type(exc).__name__}", 0.0) from exc
        except OSError as exc:  # an attachment's stored file is gone: retrying will not bring it back
            raise self._failure(message, f"attachment could not be read: {exc.strerror or exc}", None) from exc
        self._ok(message.inbox.id, "last_send_at")
        return Receipt(external_id=first)

    async def _check_window(self, message: Outbound) -> None:
        """Refuse free text when the customer's last message is known to be over 24 hours old."""
        try:
            thread = await self.host.thread(message.inbox.id, message.thread_key, after=None, limit=THREAD_LOOKBACK)
        except Exception:
            log.exception("whatsapp: inbox %s: thread not readable; the window is left to WhatsApp", message.inbox.id)
            return
        incoming = [m.created_at for m in thread if m.kind == "incoming"]
        if incoming and not window_open(max(incoming), datetime.now(UTC)):
            closed = window_closes_at(max(incoming)).strftime("%Y-%m-%d %H:%M UTC")
            reason = errors.describe(errors.WINDOW_CLOSED)
            raise self._failure(message, f"{reason}; it closed at {closed}", None)

    async def _send_parts(self, message: Outbound, settings: InboxSettings, to: str, template: Any) -> str | None:
        """Send each part once; with several parts, progress is kept per delivery so a retry resumes."""
        path = f"{settings.phone_number_id}/messages"
        if template is not None:
            return sent_id(await self.graph.post(path, settings.access_token, template_request(to, template)))
        reply_to = message.metadata.get("whatsapp_reply_to")
        bodies: list[Any] = list(
            text_requests(to, message.text, reply_to=reply_to if isinstance(reply_to, str) else None)
        )
        bodies.extend(message.attachments)
        if not bodies:
            raise DeliveryError("the message has neither text nor attachments")
        key = f"whatsapp:delivery:{message.delivery_id}"
        progress = key if len(bodies) > 1 else None
        done = int(await self.host.load_cursor(progress) or 0) if progress else 0
        first = await self.host.load_cursor(f"{progress}:first") if progress and done else None
        for index, body in enumerate(bodies):
            if index < done:
                continue
            if not isinstance(body, dict):
                body = await self._media_body(settings, to, body, f"{key}:media:{index}")
            wamid = sent_id(await self.graph.post(path, settings.access_token, body))
            if first is None:
                first = wamid
                if progress:
                    await self.host.save_cursor(f"{progress}:first", wamid)
            if progress:
                await self.host.save_cursor(progress, str(index + 1))
        return first

    async def _media_body(self, settings: InboxSettings, to: str, item: OutboundAttachment, key: str) -> dict[str, Any]:
        """Upload the file once per delivery (its media id is kept, valid for 30 days) and build the message."""
        kind = media_kind(item.content_type)
        media_id = await self.host.load_cursor(key)
        if media_id is None:
            data = await asyncio.to_thread(Path(item.path).read_bytes)
            if len(data) > self.settings.max_media_bytes:
                raise DeliveryError(f"{item.filename} is larger than {self.settings.max_media_bytes} bytes")
            media_id = await self.graph.upload(
                settings.phone_number_id, settings.access_token, item.filename, item.content_type, data
            )
            await self.host.save_cursor(key, media_id)
        return media_request(to, kind, media_id, item.filename)

    async def _maybe_unreachable(self, message: Outbound, exc: GraphError, failure: DeliveryError) -> None:
        code, _, _ = errors.error_fields(exc.body.get("error") if isinstance(exc.body, dict) else None)
        if code == errors.UNDELIVERABLE and message.recipient is not None:
            await self.host.set_contact_attributes(message.recipient, {UNREACHABLE: failure.reason})

    def _failure(self, message: Outbound, reason: str, retry_after: float | None) -> DeliveryError:
        self._health_set(message.inbox.id, last_error_at=time.time(), last_error=reason)
        return DeliveryError(reason, retry_after=retry_after)

    # ── templates ───────────────────────────────────────────────────────────────────────────
    async def templates(self, inbox: InboxInfo) -> list[Template]:
        """The inbox's approved templates (GET /{waba_id}/message_templates, every page)."""
        settings = inbox_settings(inbox)
        if settings.waba_id is None:
            raise SettingsError(f"inbox {inbox.id} settings.waba_id: required to list templates")
        pages: list[Any] = []
        url: str | None = f"{settings.waba_id}/message_templates"
        params: dict[str, str] | None = {"fields": "name,language,status,category,components", "limit": "100"}
        while url is not None and len(pages) < MAX_TEMPLATE_PAGES:
            page = await self.graph.get(url, settings.access_token, params)
            pages.append(page)
            url, params = next_page(page), None  # `next` carries its own query
        return approved_templates(pages)

    # ── plumbing ────────────────────────────────────────────────────────────────────────────
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
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        await self.graph.close()


async def _read_body(request: Request) -> bytes | None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_WEBHOOK_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_WEBHOOK_BODY:
                return None
            chunks.append(chunk)
    except ClientDisconnect:
        return b""
    return b"".join(chunks)


def _loads(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ValueError(f"body: malformed JSON ({exc})") from exc


def _why(exc: Exception) -> str:
    if isinstance(exc, GraphError):
        code, title, details = errors.error_fields(exc.body.get("error") if isinstance(exc.body, dict) else None)
        return errors.describe(code, title, details) if code is not None else f"HTTP {exc.status}"
    return str(exc)
