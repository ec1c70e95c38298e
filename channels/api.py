"""The API channel: for teams that integrate their own systems.

In: `POST /api/v1/inboxes/{id}/incoming` with `Authorization: Bearer <inbox secret>` and
`{"external_id", "sender": {"id", "name", "email"?}, "body", "thread_id"?}`.
Out: each agent reply is POSTed as JSON to the inbox's `webhook_url`, signed with HMAC-SHA256 over
`"<timestamp>." + raw body` with the inbox secret; `X-Switchboard-Delivery` stays the same across retries.
5xx, 429 and timeouts are retried; other 4xx fail with the status shown to the agent.
When the server is overloaded, incoming messages are refused with 503 and `Retry-After` (nothing stored).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from channels.base import (
    DeliveryError,
    Host,
    Identity,
    IdentityKind,
    Inbound,
    InboxInfo,
    Outbound,
    Overloaded,
    Receipt,
)

MAX_BODY_BYTES = 1_048_576
MAX_TEXT = 65_536
FIELDS = {"external_id", "sender", "body", "thread_id"}
SENDER_FIELDS = {"id", "name", "email"}


@dataclass(frozen=True, slots=True)
class ApiChannelSettings:
    webhook_timeout_seconds: float = 10.0


INBOX_KEYS = {"webhook_url"}


class SettingsError(ValueError):
    """An API inbox's settings are unknown or malformed; the message names the key."""


def check_settings(settings: Mapping[str, Any]) -> None:
    """An API inbox's settings: only `webhook_url` (optional), an http(s) address where replies are POSTed."""
    unknown = sorted(set(settings) - INBOX_KEYS)
    if unknown:
        raise SettingsError(f"settings.{unknown[0]}: unknown key (known: {', '.join(sorted(INBOX_KEYS))})")
    url = settings.get("webhook_url")
    if url is not None and url != "":
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 2000:
            raise SettingsError(f"settings.webhook_url: expected an http(s) address, got {url!r}"[:300])


# ── pure functions ──────────────────────────────────────────────────────────────────────────
class PayloadError(ValueError):
    """The incoming JSON does not have the documented shape; the message names the field."""


def inbound_from_payload(inbox_id: int, data: Any) -> Inbound:
    """Validate an incoming payload and normalise it into an `Inbound`."""
    if not isinstance(data, Mapping):
        raise PayloadError("body: expected a JSON object")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise PayloadError(f"body.{unknown[0]}: unknown field")
    external_id = _string(data, "external_id", required=True, limit=512)
    text = _string(data, "body", required=True, limit=MAX_TEXT)
    thread_id = _string(data, "thread_id", required=False, limit=256)
    sender = data.get("sender")
    if not isinstance(sender, Mapping):
        raise PayloadError("body.sender: expected an object with id and name")
    unknown = sorted(set(sender) - SENDER_FIELDS)
    if unknown:
        raise PayloadError(f"body.sender.{unknown[0]}: unknown field")
    sender_id = _string(sender, "id", required=True, limit=256, prefix="body.sender.")
    name = _string(sender, "name", required=False, limit=300, prefix="body.sender.") or ""
    email = _string(sender, "email", required=False, limit=320, prefix="body.sender.")
    if email is not None and "@" not in email:
        raise PayloadError("body.sender.email: not an email address")
    return Inbound(
        inbox_id=inbox_id,
        external_id=external_id or "",
        thread_key=f"thread:{thread_id}" if thread_id else f"sender:{sender_id}",
        # Identities are unique store-wide, so the integration's own ids are namespaced by inbox.
        sender=Identity(IdentityKind.EXTERNAL, f"{inbox_id}:{sender_id}", name=name, email=email, verified=True),
        text=text or "",
        metadata={"thread_id": thread_id} if thread_id else {},
    )


def _string(data: Mapping[str, Any], key: str, *, required: bool, limit: int, prefix: str = "body.") -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise PayloadError(f"{prefix}{key}: required")
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{prefix}{key}: expected a string, got {type(value).__name__}")
    if required and not value.strip():
        raise PayloadError(f"{prefix}{key}: must not be empty")
    if len(value) > limit:
        raise PayloadError(f"{prefix}{key}: longer than {limit} characters")
    return value


def webhook_payload(message: Outbound) -> dict[str, Any]:
    """The JSON body POSTed to the integration's webhook for one agent reply."""
    recipient_id = None
    if message.recipient is not None:
        recipient_id = message.recipient.value.split(":", 1)[-1]
    return {
        "event": "message.created",
        "delivery_id": message.delivery_id,
        "inbox_id": message.inbox.id,
        "conversation_id": message.conversation_id,
        "thread_id": message.thread_key.removeprefix("thread:") if message.thread_key.startswith("thread:") else None,
        "recipient": {"id": recipient_id},
        "message": {
            "id": message.message_id,
            "body": message.text,
            "agent": {"name": message.agent_name},
            "attachments": [
                {"filename": item.filename, "content_type": item.content_type, "size": item.size}
                for item in message.attachments
            ],
        },
    }


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over `timestamp + "." + body`, keyed with the inbox secret."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


async def send_test_event(inbox: InboxInfo, *, timeout_seconds: float = 10.0) -> dict[str, Any]:
    """POST a signed `{"event": "test"}` to the inbox's `webhook_url` (the settings "Send test event" button);
    answers whether the integration took it, with its status — nothing is stored or retried."""
    url = inbox.settings.get("webhook_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return {"ok": False, "status": None, "detail": "webhook_url: set an http(s) address first"}
    body = json.dumps({"event": "test", "inbox_id": inbox.id, "sent_at": int(time.time())}, separators=(",", ":"))
    timestamp = str(int(time.time()))
    headers = {
        "content-type": "application/json",
        "x-switchboard-timestamp": timestamp,
        "x-switchboard-signature": sign(inbox.secret, timestamp, body.encode()),
        "x-switchboard-delivery": f"test-{timestamp}",
        "user-agent": "Switchboard-Webhook/1",
    }
    try:
        async with httpx.AsyncClient(timeout=timeout_seconds, follow_redirects=False) as client:
            response = await client.post(url, content=body.encode(), headers=headers)
    except httpx.HTTPError as exc:
        return {"ok": False, "status": None, "detail": f"webhook unreachable: {exc or type(exc).__name__}"}
    excerpt = response.text[:200].strip()
    detail = f"webhook answered {response.status_code}" + (f": {excerpt}" if excerpt else "")
    return {"ok": response.status_code < 300, "status": response.status_code, "detail": detail}


def _error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "detail": detail}}, status_code=status)


def overloaded_response(busy: Overloaded) -> JSONResponse:
    """503 with `Retry-After` (whole seconds, at least 1) and the exact wait in the body; nothing was stored."""
    return JSONResponse(
        {"error": {"code": "slow_down", "detail": busy.reason, "retry_after": busy.retry_after}},
        status_code=503,
        headers={"retry-after": str(max(1, math.ceil(busy.retry_after)))},
    )


# ── I/O ─────────────────────────────────────────────────────────────────────────────────────
class ApiChannel:
    """Receives messages over HTTP and sends replies to a signed webhook."""

    name: ClassVar[str] = "api"

    def __init__(self, host: Host, settings: ApiChannelSettings | None = None) -> None:
        self.host = host
        self.settings = settings or ApiChannelSettings()
        self.routes: Sequence[BaseRoute] = [
            Route("/api/v1/inboxes/{inbox_id:int}/incoming", self.incoming, methods=["POST"])
        ]
        self._client: httpx.AsyncClient | None = None

    async def incoming(self, request: Request) -> Response:
        inbox_id: int = request.path_params["inbox_id"]
        inbox = await self.host.inbox(inbox_id)
        if inbox is None or inbox.channel != self.name:
            return _error(404, "not_found", f"inbox {inbox_id} not found")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), inbox.secret.encode()):
            return _error(401, "unauthorized", "Authorization: expected 'Bearer <inbox secret>'")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _error(413, "too_large", f"request body is larger than {MAX_BODY_BYTES} bytes")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY_BYTES:
                return _error(413, "too_large", f"request body is larger than {MAX_BODY_BYTES} bytes")
        try:
            data = json.loads(raw)
        except ValueError as exc:
            return _error(400, "malformed_json", f"body: malformed JSON ({exc})")
        try:
            inbound = inbound_from_payload(inbox_id, data)
        except PayloadError as exc:
            return _error(422, "invalid", str(exc))
        try:
            delivered = await self.host.deliver(inbound)
        except Overloaded as busy:
            return overloaded_response(busy)
        return JSONResponse(
            {
                "message_id": delivered.message_id,
                "conversation_id": delivered.conversation_id,
                "contact_id": delivered.contact_id,
                "duplicate": not delivered.created,
            },
            status_code=201 if delivered.created else 200,
        )

    async def run(self, inbox: InboxInfo) -> None:
        """Push channel: nothing to poll."""
        return None

    async def send(self, message: Outbound) -> Receipt:
        url = message.inbox.settings.get("webhook_url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise DeliveryError(f"inbox {message.inbox.id} has no webhook_url configured")
        body = json.dumps(webhook_payload(message), separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "content-type": "application/json",
            "x-switchboard-timestamp": timestamp,
            "x-switchboard-signature": sign(message.inbox.secret, timestamp, body),
            "x-switchboard-delivery": message.delivery_id,
            "user-agent": "Switchboard-Webhook/1",
        }
        try:
            response = await self._http().post(url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise DeliveryError(f"webhook timed out: {type(exc).__name__}", retry_after=0) from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook unreachable: {exc or type(exc).__name__}", retry_after=0) from exc
        if response.status_code < 300:
            return Receipt(external_id=message.delivery_id)
        excerpt = response.text[:200].strip()
        reason = f"webhook answered {response.status_code}" + (f": {excerpt}" if excerpt else "")
        if response.status_code == 429:
            retry = response.headers.get("retry-after", "")
            raise DeliveryError(reason, retry_after=float(retry) if retry.isdigit() else 0)
        if response.status_code >= 500:
            raise DeliveryError(reason, retry_after=0)
        raise DeliveryError(reason)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.settings.webhook_timeout_seconds, follow_redirects=False)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
