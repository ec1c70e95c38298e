"""HTTP API: channel set-up checks the settings forms call before an inbox is saved.

`POST /api/v1/wizards/api` sends a signed `{"event": "test"}` to an API inbox's webhook and answers its status.
`POST /api/v1/wizards/email` tests an email inbox's settings as typed (IMAP login and folder, SMTP EHLO,
STARTTLS and AUTH) and answers each step; the check itself belongs to the email channel and is handed to the
app by the composition root (`services(request).extra["connection_checks"]`), so this module names no channel.

`POST /api/v1/wizards/telegram` asks the Bot API `getMe` with a pasted token (or the stored token of an
inbox) and answers the bot's name, and how updates will arrive: by webhook when this server has a public
https address Telegram can reach, else by polling. The channel itself sets the webhook (or starts polling)
once the inbox is saved. Plain HTTP with httpx: no channel library is imported here (`inbox.app` alone wires
channels). Nothing is stored; the token never appears in an answer or a log line.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
from pydantic import Field, StringConstraints
from starlette.requests import Request
from starlette.responses import Response

from inbox.api.common import Body, Id
from inbox.errors import Invalid, NotFound
from inbox.gateway.outbox import CORE_SETTINGS, inbox_info
from inbox.http.routing import Api, admin, json, parse_body
from inbox.http.services import services
from inbox.store.models import Inbox

api = Api()
TIMEOUT_SECONDS = 10.0
Token = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


class EmailCheck(Body):
    settings: dict[str, Any]
    inbox_id: Id | None = Field(default=None, description="fill passwords left empty from this inbox's stored ones")


class ApiTestEvent(Body):
    inbox_id: Id
    webhook_url: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = Field(
        default=None, description="the address as typed in the form; default: the stored one"
    )


class TelegramCheck(Body):
    bot_token: Token = ""
    inbox_id: Id | None = Field(default=None, description="check this inbox's stored token when none is pasted")


def updates_mode(public_url: str) -> str:
    """Telegram pushes webhooks only to a public https address; anything else has to poll."""
    parts = urlsplit(public_url)
    local = parts.hostname in (None, "", "localhost") or (parts.hostname or "").startswith(("127.", "10.", "192.168."))
    return "webhook" if parts.scheme == "https" and not local else "polling"


async def _token(request: Request, check: TelegramCheck) -> str:
    token = check.bot_token
    if not token and check.inbox_id is not None:
        async with services(request).store.session() as session:
            inbox = await session.get(Inbox, check.inbox_id)
        if inbox is None or inbox.channel != "telegram":
            raise NotFound(f"telegram inbox {check.inbox_id} not found")
        stored = inbox.settings.get("bot_token")
        token = stored if isinstance(stored, str) else ""
    if token.startswith("env:"):
        token = os.environ.get(token.removeprefix("env:"), "")
        if not token:
            raise Invalid("bot_token: the environment variable it names is not set")
    if ":" not in token:
        raise Invalid("bot_token: not a bot token (expected '<bot id>:<secret>' from @BotFather)")
    return token


@api.route(
    "POST",
    "/api/v1/wizards/telegram",
    summary="Check a Telegram bot token with getMe; answers the bot and how updates will arrive",
    tag="inboxes",
    body=TelegramCheck,
    auth="admin",
)
async def check_telegram(request: Request) -> Response:
    await admin(request)
    token = await _token(request, await parse_body(request, TelegramCheck))
    config = services(request).config
    url = f"{config.telegram.api_base_url}{token}/getMe"
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client:
            answer = await client.post(url)
        data: Any = answer.json()
    except (httpx.HTTPError, ValueError):
        raise Invalid("bot_token: could not reach the Telegram Bot API to check it") from None
    if not isinstance(data, dict) or not data.get("ok") or not isinstance(data.get("result"), dict):
        reason = data.get("description") if isinstance(data, dict) else None
        raise Invalid(f"bot_token: Telegram refused this token ({reason or answer.status_code})")
    bot = data["result"]
    public = config.telegram.public_base_url or config.server.base_url
    mode = updates_mode(public)
    return json(
        {
            "bot": {"id": bot.get("id"), "username": bot.get("username"), "first_name": bot.get("first_name")},
            "mode": mode,
            "webhook_url": public.rstrip("/") + "/channels/telegram/{inbox_id}" if mode == "webhook" else None,
        }
    )


@api.route(
    "POST",
    "/api/v1/wizards/email",
    summary="Test an email inbox's IMAP and SMTP settings; answers each step (connect, login, select, EHLO, STARTTLS, AUTH)",
    tag="inboxes",
    body=EmailCheck,
    auth="admin",
)
async def check_email(request: Request) -> Response:
    await admin(request)
    check = await parse_body(request, EmailCheck)
    settings = {name: value for name, value in check.settings.items() if name not in CORE_SETTINGS}
    if check.inbox_id is not None:
        async with services(request).store.session() as session:
            inbox = await session.get(Inbox, check.inbox_id)
        if inbox is None or inbox.channel != "email":
            raise NotFound(f"email inbox {check.inbox_id} not found")
        for name in ("imap_password", "smtp_password"):  # the form never shows a stored secret
            if not settings.get(name) and inbox.settings.get(name):
                settings[name] = inbox.settings[name]
    checker = services(request).extra.get("connection_checks", {}).get("email")
    if checker is None:
        raise NotFound("the email channel is not available in this server")
    steps = await checker(settings)
    return json({"ok": all(step["ok"] for step in steps), "steps": steps})


@api.route(
    "POST",
    "/api/v1/wizards/api",
    summary="Send a signed test event to an API inbox's webhook; answers the integration's status",
    tag="inboxes",
    body=ApiTestEvent,
    auth="admin",
)
async def api_test_event(request: Request) -> Response:
    await admin(request)
    event = await parse_body(request, ApiTestEvent)
    async with services(request).store.session() as session:
        inbox = await session.get(Inbox, event.inbox_id)
    if inbox is None or inbox.channel != "api":
        raise NotFound(f"API inbox {event.inbox_id} not found")
    info = inbox_info(inbox)
    if event.webhook_url is not None:
        info = dataclasses.replace(info, settings={**info.settings, "webhook_url": event.webhook_url})
    sender = services(request).extra.get("connection_checks", {}).get("api")
    if sender is None:
        raise NotFound("the API channel is not available in this server")
    return json(await sender(info))
