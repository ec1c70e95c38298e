"""The composition root: builds the Starlette app and its long-running loops from a `Config`.

This is the one module of `inbox/` that names concrete channels.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import Field
from sqlalchemy import func
from sqlmodel import col, select
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from channels import api as api_settings
from channels.api import ApiChannel, ApiChannelSettings, send_test_event
from channels.base import Channel, DeliveryError, InboxInfo, TypingAware
from channels.email import EmailChannel, EmailSettings, MailboxSettings
from channels.email import settings as email_settings
from channels.email.check import check_connection as check_email_connection
from channels.email.smtp import send_message
from channels.phone import PhoneChannel, PhoneSettings
from channels.phone import settings as phone_settings
from channels.telegram import TelegramChannel, TelegramSettings
from channels.telegram import settings as telegram_settings
from channels.vk import VkChannel, VkSettings
from channels.vk import settings as vk_settings
from channels.webchat import WebchatChannel, WebchatSettings
from channels.webchat import settings as widget_settings
from channels.whatsapp import SettingsError as WhatsAppSettingsError
from channels.whatsapp import Template, WhatsAppChannel, WhatsAppSettings, window_open
from channels.whatsapp import settings as whatsapp_settings
from channels.whatsapp.graph import GraphError
from channels.whatsapp.outbound import TEMPLATE_KEY as WHATSAPP_TEMPLATE
from channels.whatsapp.outbound import window_closes_at
from inbox.admin.directory import SettingsValidator
from inbox.api import admin, attachments, channel_status, contacts, conversations, health, quarantine, reports
from inbox.api import audit as audit_api
from inbox.api import automation as automation_api
from inbox.api import organizations as organizations_api
from inbox.api import privacy as privacy_api
from inbox.api import wizards as wizards_api
from inbox.api import workflow as workflow_api
from inbox.api.common import Body, Id, Query, path_id
from inbox.audit import retention
from inbox.auth import Authenticator, LoginThrottle, Sessions
from inbox.clock import utcnow
from inbox.config import Config, resolve_secret
from inbox.continuity.worker import ContinuityWorker
from inbox.csat.survey import Surveys
from inbox.errors import InboxError, Invalid, NotFound
from inbox.gateway.admission import Admission
from inbox.gateway.host import CoreHost
from inbox.gateway.outbox import OutboxWorker, inbox_info
from inbox.gateway.runners import ChannelRunners
from inbox.http import openapi, readiness, stream
from inbox.http.metrics import Metrics, RequestCounter, metrics_endpoint
from inbox.http.routing import (
    Api,
    caller,
    http_error_handler,
    inbox_error_handler,
    parse_body,
    parse_query,
    upgrade_required,
)
from inbox.http.routing import json as json_response
from inbox.http.services import Services, services
from inbox.pages import audit as audit_page
from inbox.pages import base as pages
from inbox.pages import contacts as contacts_page
from inbox.pages import csat as csat_pages
from inbox.pages import demo as demo_page
from inbox.pages import portal as portal_pages
from inbox.pages import reports as reports_page
from inbox.pages import selfserve as selfserve_pages
from inbox.pages import settings as settings_pages
from inbox.portal.acknowledgement import Acknowledgements
from inbox.portal.customer import Mailer, Portal
from inbox.read import access, queries
from inbox.realtime import events
from inbox.realtime.broker import Broker, LocalBroker
from inbox.realtime.hub import Hub
from inbox.realtime.redis_broker import RedisBroker
from inbox.realtime.sockets import SocketShortcutApp
from inbox.realtime.wsserver import LeanWSProtocol
from inbox.selfserve import api as selfserve_api
from inbox.selfserve import store as selfserve_store
from inbox.selfserve.widget import WidgetAnswers
from inbox.service import InboxService
from inbox.store.blobs import BlobStore
from inbox.store.engine import Store
from inbox.store.lease import Leases
from inbox.store.models import Conversation, Inbox, Message, MessageKind
from inbox.store.models import Identity as IdentityRow
from inbox.workflow.clocks import SlaClocks
from inbox.workflow.routing import Router, queue_stats
from inbox.workflow.rules import RuleEngine
from inbox.workflow.webhooks import WebhookWorker

log = logging.getLogger(__name__)
ChannelT = TypeVar("ChannelT")

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
API_MODULES: list[Api] = [
    conversations.api,
    contacts.api,
    admin.api,
    attachments.api,
    reports.api,
    organizations_api.api,
    health.api,
    quarantine.api,
    channel_status.api,
    selfserve_api.api,
    audit_api.api,
    privacy_api.api,
    workflow_api.api,
    automation_api.api,
    wizards_api.api,
]


# Each channel's check of the settings an admin saves for its inboxes (API, settings page, CLI: 422 naming the
# key, nothing stored); the channel runners use them too, so stored settings that no longer pass show on the
# channel-health page instead of a receiver restarting forever.
class _AnySecret(dict[str, str]):
    """At save time an `env:NAME` secret is checked for its form only: the CLI's environment is not the
    server's, so every name reads as set."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return "x" * 64

    def get(self, key: str, default: Any = None) -> str:
        return "x" * 64


def _from_inbox_settings(read: Callable[..., Any]) -> SettingsValidator:
    """A channel whose check reads a whole `InboxInfo` (WhatsApp, VK, phone), as a settings validator."""

    def check(settings: Mapping[str, Any]) -> None:
        try:
            read(InboxInfo(0, "", "", settings, "x" * 32, ""), _AnySecret())
        except ValueError as error:  # "inbox 0 settings.key: …" → "settings.key: …"
            raise ValueError(str(error).removeprefix("inbox 0 ")) from error

    return check


SETTINGS_VALIDATORS: dict[str, SettingsValidator] = {
    "api": api_settings.check_settings,
    "webchat": widget_settings.check_settings,
    "email": email_settings.check_settings,
    "telegram": telegram_settings.check_settings,
    "whatsapp": _from_inbox_settings(whatsapp_settings.inbox_settings),
    "vk": _from_inbox_settings(vk_settings.inbox_settings),
    "phone": _from_inbox_settings(phone_settings.inbox_settings),
}
# How uvicorn serves the app: `switchboard serve`, the bench servers and the test servers all use these.
# uvicorn's `wsproto` protocol, trimmed (`inbox.realtime.wsserver`): ≈ 5 KiB less per open websocket than uvicorn's
# default; see BENCHMARKS.md. Per-message deflate stays off (its compressor state per socket costs more than
# it saves on small frames). Keepalive pings and the frame size limit are uvicorn's defaults (a ping every
# 20 s, 20 s to answer, 16 MiB per message).
UVICORN_OPTIONS: dict[str, Any] = {"ws": LeanWSProtocol, "ws_per_message_deflate": False, "proxy_headers": False}


def secret_key(config: Config) -> str:
    """The configured key, or one generated once and kept under the state directory."""
    if config.server.secret_key:
        return resolve_secret(config.server.secret_key, "server.secret_key")
    path = Path(config.server.state_directory) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(config: Config, *, broker: Broker | None = None) -> Starlette:
    store = Store(config.database.url, pool_size=config.database.pool_size, echo=config.database.echo)
    hub = Hub(config.stream.queue_size, read_log=lambda after, limit: _read_log(store, after, limit))
    broker = broker or make_broker(config)
    broker.subscribe(hub.on_event, hub.on_ephemeral)
    leases = Leases(store, ttl_seconds=config.cluster.lease_seconds)
    blobs = BlobStore(config.storage.directory)
    service = InboxService(store, broker, blobs)
    admission = Admission(
        config.admission.max_deliveries_in_flight,
        base_retry_after=config.admission.retry_after_seconds,
        max_retry_after=config.admission.max_retry_after_seconds,
    )
    host = CoreHost(store, service, hub, admission)
    continuity = ContinuityWorker(store, service, config.continuity)
    host.on_seen.append(continuity.record_seen)  # what a chat visitor saw is never emailed
    sessions = Sessions(secret_key(config), config.auth.session_max_age_days * 86400)
    api_channel = ApiChannel(host, ApiChannelSettings(config.api_channel.webhook_timeout_seconds))
    webchat = WebchatChannel(host, webchat_settings(config))
    broker.subscribe(webchat.on_event, webchat.on_signal)  # replies, agent typing/seen reach the visitor
    telegram = TelegramChannel(host, _telegram_settings(config))
    whatsapp = WhatsAppChannel(host, WhatsAppSettings(**dataclasses.asdict(config.whatsapp)))
    vk = VkChannel(host, VkSettings(**dataclasses.asdict(config.vk)))
    phone = PhoneChannel(host, PhoneSettings(**dataclasses.asdict(config.phone)))
    channels: dict[str, Channel] = {
        channel.name: channel for channel in (api_channel, webchat, telegram, whatsapp, vk, phone)
    }
    email_channel = EmailChannel(host, EmailSettings(**dataclasses.asdict(config.email))) if config.email else None
    if email_channel is not None:
        channels[email_channel.name] = email_channel
    outbox = OutboxWorker(store, service, blobs, channels, config.outbox)
    surveys = Surveys(service, secret=secret_key(config), base_url=config.server.base_url, settings=config.csat)
    service.on_resolved.append(surveys.on_resolved)
    # Acknowledgements of new conversations and the customer portal (issue 22 items 1-2; inbox.portal).
    acknowledgements = Acknowledgements(service, base_url=config.server.base_url)
    broker.subscribe(acknowledgements.on_event, acknowledgements.on_ephemeral)
    portal = Portal(
        service,
        secret=secret_key(config),
        base_url=config.server.base_url,
        surveys=surveys,
        mailer=portal_mailer(store, config) if config.email else None,
    )
    service.on_queued.append(outbox.wake)
    metrics = Metrics()
    metrics.watch_admission(admission)
    broker.subscribe(metrics.count_event, metrics.ignore_ephemeral)
    outbox.on_result = metrics.count_outbox_result
    runners = ChannelRunners(
        host,
        # Every receiver (IMAP mailboxes, Telegram polling) runs here, each under its own cluster lease
        # `receiver:<channel>:<inbox id>`; inbound SMTP (EmailChannel.serve) runs in every process.
        dict(channels),
        refresh_seconds=config.channels.refresh_seconds,
        backoff_max_seconds=config.channels.restart_backoff_max_seconds,
        exclusive=leases.hold,
        validators=SETTINGS_VALIDATORS,
    )
    broker.subscribe(_ignore_event, _typing_relay(store, channels))
    broker.subscribe(_on_inbox_change(runners), _ignore_ephemeral)
    router = Router(service, interval_seconds=config.cluster.lease_seconds)  # team workflow: routing
    broker.subscribe(router.on_event, router.on_ephemeral)
    sla_clocks = SlaClocks(service, interval_seconds=1.0)  # team workflow: SLA clocks, warnings and breaches
    metrics.before_scrape.append(lambda: _observe_queue(store, metrics))
    rule_engine = RuleEngine(service)  # team workflow: automation rules
    broker.subscribe(rule_engine.on_event, _ignore_ephemeral)
    webhook_worker = WebhookWorker(service, timeout_seconds=config.api_channel.webhook_timeout_seconds)
    broker.subscribe(webhook_worker.on_event, _ignore_ephemeral)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        hub.start(await events.latest_settled(store))
        await broker.start()
        loops = [
            asyncio.create_task(outbox.run(), name="outbox"),
            # Timers run in one process of the cluster at a time (trivially so on one process).
            asyncio.create_task(
                leases.run_exclusive("timer:snooze", lambda: _every(1.0, service.wake_snoozed, "snooze")),
                name="snooze",
            ),
            asyncio.create_task(
                leases.run_exclusive("timer:prune", lambda: _every(3600.0, lambda: _prune(store, config), "prune")),
                name="prune",
            ),
            asyncio.create_task(
                leases.run_exclusive(
                    "timer:uploads",
                    lambda: _every(
                        config.storage.cleanup_interval_seconds,
                        lambda: service.remove_unattached_uploads(
                            timedelta(hours=config.storage.unattached_upload_hours)
                        ),
                        "uploads",
                    ),
                ),
                name="uploads",
            ),
            asyncio.create_task(
                leases.run_exclusive(
                    "timer:selfserve",
                    lambda: _every(
                        config.selfservice.prune_interval_seconds,
                        lambda: selfserve_store.prune(
                            store, retention_days=config.selfservice.retention_days, now=utcnow()
                        ),
                        "selfserve-retention",
                    ),
                ),
                name="selfserve-retention",
            ),
            asyncio.create_task(
                leases.run_exclusive("timer:privacy", lambda: retention.run(service, config.privacy)), name="privacy"
            ),
            asyncio.create_task(runners.run(), name="channel-runners"),
            asyncio.create_task(leases.run_exclusive("timer:routing", router.run), name="routing"),
            asyncio.create_task(leases.run_exclusive("timer:sla", sla_clocks.run), name="sla"),
            asyncio.create_task(leases.run_exclusive("timer:rules", rule_engine.run), name="rules"),
            asyncio.create_task(leases.run_exclusive("timer:webhooks", webhook_worker.run), name="webhooks"),
            asyncio.create_task(leases.run_exclusive("timer:continuity", continuity.run), name="continuity"),
            # SQLite only (returns at once otherwise): WAL checkpoints off the commit path.
            asyncio.create_task(
                store.run_checkpoints(config.database.checkpoint_interval_seconds), name="sqlite-checkpoints"
            ),
        ]
        if isinstance(broker, RedisBroker):
            broker.on_resume.append(hub.catch_up)
            loops.append(
                asyncio.create_task(
                    _every(config.cluster.catchup_interval_seconds, hub.catch_up, "catch-up"), name="catch-up"
                )
            )
        if email_channel is not None:
            loops.append(asyncio.create_task(email_channel.serve(), name="email"))
        # What startup loaded (modules, the models' metadata, compiled statements, the app) lives as long as
        # the process: keep it out of the collector's full passes, which otherwise walk all of it each time
        # and stop the event loop for tens of ms (`SB_BENCH_GCLOG` in bench/serve.py measures them).
        gc.collect()
        gc.freeze()
        app.state.services.workers = loops  # /readyz: started (and none died)
        try:
            yield
        finally:
            app.state.services.workers = None
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await api_channel.close()
            await telegram.close()
            for closing in (whatsapp, vk, phone):
                await closing.close()
            await broker.stop()
            await hub.stop()
            await store.close()

    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        Route("/readyz", readiness.readyz),
        Route("/metrics", metrics_endpoint),
        Route("/api/v1/openapi.json", openapi.endpoint),
        *stream.routes,
        *[route for module in API_MODULES for route in module.routes()],
        *channel_api.routes(),
        *[route for channel in channels.values() for route in channel.routes],
        *WidgetAnswers(
            webchat.visitor_of_request,
            per_visitor_per_minute=config.selfservice.widget_requests_per_minute,
            per_ip_per_minute=config.selfservice.ip_requests_per_minute,
        ).routes,
        *pages.routes,
        *selfserve_pages.routes,
        *audit_page.routes,  # before settings: /settings/audit is its own page
        *settings_pages.routes,
        *reports_page.routes,
        *contacts_page.routes,
        *csat_pages.routes,
        *portal_pages.routes,
        *(demo_page.routes if config.server.development else []),
        Mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static"),
    ]
    routes += upgrade_required(routes)  # a plain GET to a websocket path: 426, not 404
    app = SocketShortcutApp(  # the widget socket and the agent stream skip the middleware (memory per socket)
        routes=routes,
        middleware=[Middleware(RequestCounter, metrics=metrics)],
        lifespan=lifespan,
        exception_handlers={InboxError: inbox_error_handler, HTTPException: http_error_handler},
    )
    app.state.services = Services(
        config=config,
        store=store,
        service=service,
        hub=hub,
        broker=broker,
        leases=leases,
        blobs=blobs,
        host=host,
        sessions=sessions,
        authenticator=Authenticator(store, sessions),
        throttle=LoginThrottle(config.auth.login_max_attempts, config.auth.login_window_seconds),
        channels=channels,
        outbox=outbox,
        runners=runners,
        metrics=metrics,
        api_modules=[*API_MODULES, channel_api],
        surveys=surveys,
        continuity=continuity,
        router=router,
        sla_clocks=sla_clocks,
        portal=portal,
        acknowledgements=acknowledgements,
        settings_validators=SETTINGS_VALIDATORS,
        rule_engine=rule_engine,
        webhooks=webhook_worker,
        # the set-up wizards (inbox.api.wizards): checks that belong to a channel, named here and nowhere else
        extra={"connection_checks": {"email": check_email_connection, "api": send_test_event}},
    )
    return app


def portal_mailer(store: Store, config: Config) -> Mailer:
    """The portal's sign-in mail: sent directly (not a conversation's message) through the relay of the first
    email inbox whose mailbox settings are complete, marked machine-sent. Not retried: the customer asks again."""
    seconds = config.email.connect_timeout_seconds if config.email else 30.0

    async def send(address: str, subject: str, text: str) -> None:
        async with store.session() as session:
            rows = (
                await session.execute(select(Inbox).where(col(Inbox.channel) == "email").order_by(col(Inbox.id)))
            ).scalars()
            mailboxes = []
            for row in rows:
                with contextlib.suppress(Exception):
                    mailboxes.append((row.name, MailboxSettings.from_inbox(inbox_info(row).settings)))
        if not mailboxes:
            log.warning("portal: no email inbox can send the sign-in mail")
            return
        name, mailbox = mailboxes[0]
        message = EmailMessage()
        message["From"] = formataddr((mailbox.display_name or name, mailbox.address))
        message["To"] = address
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain=mailbox.domain)
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Auto-Submitted"] = "auto-generated"
        message["X-Auto-Response-Suppress"] = "All"
        message.set_content(text + "\n")
        await send_message(message, mailbox, seconds=seconds)

    return send


def make_broker(config: Config) -> Broker:
    """Redis pub/sub when `redis.url` is set (several processes), else the in-process broker."""
    if config.redis.url:
        return RedisBroker(
            config.redis.url,
            prefix=config.redis.channel_prefix,
            reconnect_max_seconds=config.redis.reconnect_max_seconds,
        )
    return LocalBroker()


async def _read_log(store: Store, after: int, limit: int) -> events.LogRead:
    return await events.read_settled(store, after, limit=limit)


def webchat_settings(config: Config) -> WebchatSettings:
    """The webchat channel's settings: its `[webchat]` limits, a key derived from the server secret."""
    section = config.webchat
    return WebchatSettings(
        token_key=hmac.new(secret_key(config).encode(), b"webchat-visitor-token", hashlib.sha256).hexdigest(),
        assets=str(WEB_DIR),
        max_frame_bytes=section.max_frame_bytes,
        max_message_chars=section.max_message_chars,
        max_attachment_bytes=min(section.max_attachment_bytes, config.storage.max_attachment_bytes),
        attachment_types=section.attachment_types,
        visitor_messages_per_minute=section.visitor_messages_per_minute,
        ip_messages_per_minute=section.ip_messages_per_minute,
        history_limit=section.history_limit,
        hello_timeout_seconds=section.hello_timeout_seconds,
    )


async def _every(seconds: float, job: Callable[[], Awaitable[Any]], name: str) -> None:
    """Run `job` periodically; one failure is logged and the loop goes on."""
    while True:
        try:
            await job()
        except Exception:
            log.exception("%s: periodic job failed", name)
        await asyncio.sleep(seconds)


async def _prune(store: Store, config: Config) -> int:
    async with store.transaction() as tx:
        return await events.prune(tx, retention_days=config.stream.retention_days)


def _telegram_settings(config: Config) -> TelegramSettings:
    section = config.telegram
    return TelegramSettings(
        api_base_url=section.api_base_url,
        file_base_url=section.file_base_url,
        public_base_url=section.public_base_url or config.server.base_url,
        poll_timeout_seconds=section.poll_timeout_seconds,
        max_file_bytes=section.max_file_bytes,
    )


async def _observe_queue(store: Store, metrics: Metrics) -> None:
    """The routing queues for `/metrics`, read fresh (any process may be scraped, one routes)."""
    async with store.session() as session:
        stats = await queue_stats(session, utcnow())
    metrics.routing_queue = [(stat.inbox_id, stat.length, stat.oldest_wait_seconds) for stat in stats]


def _on_inbox_change(runners: ChannelRunners) -> Callable[[Any], Awaitable[None]]:
    """An inbox was created, changed or removed (in any process): look at the receivers now."""

    async def wake(event: Any) -> None:
        if event.type == "inbox.updated":
            runners.wake()

    return wake


async def _ignore_ephemeral(frame: dict[str, Any], inbox_id: int | None) -> None:
    return None


async def _ignore_event(event: Any) -> None:
    return None


def _typing_relay(
    store: Store, channels: dict[str, Channel]
) -> Callable[[dict[str, Any], int | None], Awaitable[None]]:
    """An agent typing in a conversation → the channel's "typing" indicator (e.g. Telegram's chat action).

    Runs as a task so a slow channel never holds up the broker; private (note) typing is not shown.
    """
    pending: set[asyncio.Task[None]] = set()

    async def show(conversation_id: int) -> None:
        try:
            async with store.session() as session:
                conversation = await session.get(Conversation, conversation_id)
                inbox = await session.get(Inbox, conversation.inbox_id) if conversation else None
            channel = channels.get(inbox.channel) if inbox else None
            if conversation is not None and inbox is not None and isinstance(channel, TypingAware):
                await channel.show_typing(inbox_info(inbox), conversation.thread_key)
        except Exception:
            log.exception("typing indicator for conversation %s failed", conversation_id)

    async def on_ephemeral(frame: dict[str, Any], inbox_id: int | None) -> None:
        conversation_id = frame.get("conversation_id")
        if frame.get("type") != "typing" or not frame.get("active") or frame.get("private"):
            return
        if isinstance(conversation_id, int):
            task = asyncio.create_task(show(conversation_id))
            pending.add(task)
            task.add_done_callback(pending.discard)

    return on_ephemeral


# ── channel actions: the few endpoints that need one concrete channel (so they live in the composition root) ──
channel_api = Api()


class Upstream(InboxError):
    """The channel's provider (Graph API, the PBX) refused or could not be reached."""

    status = 502
    code = "upstream"


class TemplateSend(Body):
    """An approved WhatsApp template, sent as a reply (the only kind of reply outside the 24-hour window)."""

    name: str = Field(min_length=1, max_length=512)
    language: str | None = Field(default=None, min_length=2, max_length=15)
    parameters: list[str] = Field(default_factory=list, max_length=20)
    client_id: str | None = Field(default=None, min_length=1, max_length=64)


class CallRequest(Body):
    """Click-to-call: which phone inbox's PBX dials (default: the first one the caller may see)."""

    inbox_id: Id | None = None
    agent_extension: str | None = Field(default=None, min_length=1, max_length=32)


class TemplatesQuery(Query):
    conversation_id: Id | None = Field(default=None, description="also answer whether its 24-hour window is open")


def _channel(request: Request, kind: type[ChannelT]) -> ChannelT:
    found = [channel for channel in services(request).channels.values() if isinstance(channel, kind)]
    return found[0]


async def _inbox_of(request: Request, inbox_id: int, channel: str) -> Inbox:
    who = await caller(request)
    store: Store = services(request).store
    async with store.session() as session:
        inbox = await session.get(Inbox, inbox_id)
    if inbox is None or inbox.channel != channel or not await access.may_see_inbox(store, who.agent, inbox_id):
        raise NotFound(f"{channel} inbox {inbox_id} not found")
    return inbox


async def _templates(request: Request, inbox: Inbox) -> list[Template]:
    try:
        return await _channel(request, WhatsAppChannel).templates(inbox_info(inbox))
    except WhatsAppSettingsError as exc:
        raise Invalid(str(exc)) from exc
    except (GraphError, httpx.HTTPError) as exc:
        raise Upstream(f"WhatsApp templates could not be listed: {exc}") from exc


@channel_api.route(
    "GET",
    "/api/v1/inboxes/{inbox_id:int}/whatsapp/templates",
    summary="A WhatsApp inbox's approved message templates (and, for a conversation, whether its window is open)",
    tag="channels",
    query=TemplatesQuery,
)
async def whatsapp_templates(request: Request) -> Response:
    inbox = await _inbox_of(request, path_id(request, "inbox_id", "inbox"), "whatsapp")
    query = parse_query(request, TemplatesQuery)
    body: dict[str, Any] = {}
    if query.conversation_id is not None:
        body["window"] = await _window(request, inbox, query.conversation_id)
    body["items"] = [dataclasses.asdict(template) for template in await _templates(request, inbox)]
    return json_response(body)


async def _window(request: Request, inbox: Inbox, conversation_id: int) -> dict[str, Any]:
    """The conversation's customer-service window: open while the customer's last message is under 24 h old."""
    async with services(request).store.session() as session:
        conversation = await session.get(Conversation, conversation_id)
        if conversation is None or conversation.inbox_id != inbox.id:
            raise NotFound(f"conversation {conversation_id} not found")
        last = (
            await session.execute(
                select(func.max(Message.created_at)).where(
                    col(Message.conversation_id) == conversation_id, col(Message.kind) == MessageKind.INCOMING
                )
            )
        ).scalar_one_or_none()
    return {
        "open": window_open(last, utcnow()),
        "closes_at": window_closes_at(last).isoformat() if last is not None else None,
    }


@channel_api.route(
    "POST",
    "/api/v1/conversations/{conversation_id:int}/whatsapp/template",
    summary="Reply with an approved WhatsApp template (idempotent on client_id)",
    tag="channels",
    body=TemplateSend,
    status=201,
)
async def send_whatsapp_template(request: Request) -> Response:
    who = await caller(request)
    send = await parse_body(request, TemplateSend)
    conversation = await access.conversation(
        services(request).store, who.agent, path_id(request, "conversation_id", "conversation")
    )
    inbox = await _inbox_of(request, conversation.inbox_id, "whatsapp")
    found = [t for t in await _templates(request, inbox) if t.name == send.name]
    if send.language is not None:
        found = [t for t in found if t.language == send.language]
    if not found:
        raise Invalid(f"name: no approved template {send.name!r} in inbox {inbox.id}")
    template = found[0]
    if len(send.parameters) != template.parameter_count:
        raise Invalid(f"parameters: template {template.name!r} takes {template.parameter_count}")
    text = template.body
    for index, value in enumerate(send.parameters, start=1):
        text = text.replace(f"{{{{{index}}}}}", value)
    option = {"name": template.name, "language": template.language, "parameters": send.parameters}
    assert conversation.id is not None
    message, created = await services(request).service.reply(
        conversation.id,
        by=who.agent,
        body=text or template.name,
        client_id=send.client_id,
        options={WHATSAPP_TEMPLATE: option},
    )
    return json_response(message, 201 if created else 200)


@channel_api.route(
    "POST",
    "/api/v1/contacts/{contact_id:int}/call",
    summary='Click-to-call: the PBX dials the contact ({"status": "dialing"}), or a tel: link to open',
    tag="channels",
    body=CallRequest,
)
async def call_contact(request: Request) -> Response:
    who = await caller(request)
    wanted = await parse_body(request, CallRequest)
    store: Store = services(request).store
    contact_id = path_id(request, "contact_id", "contact")
    visible = await access.inbox_ids(store, who.agent)
    async with store.session() as session:
        contact = await queries.contact_visible(session, contact_id, visible)
        if contact is None:
            raise NotFound(f"contact {contact_id} not found")
        phones = (
            await session.execute(
                select(IdentityRow.value)
                .where(col(IdentityRow.contact_id) == contact_id, col(IdentityRow.kind) == "phone")
                .order_by(col(IdentityRow.id))
            )
        ).scalars()
        number = contact.phone or next(iter(phones), None)
        inboxes = (
            await session.execute(select(Inbox).where(col(Inbox.channel) == "phone").order_by(col(Inbox.id)))
        ).scalars()
        choices = [row for row in inboxes if visible is None or row.id in visible]
    if not number:
        raise Invalid(f"contact {contact_id} has no phone number")
    if wanted.inbox_id is not None:
        choices = [row for row in choices if row.id == wanted.inbox_id]
    if not choices:
        raise Invalid("inbox_id: no phone inbox you may use")
    try:
        tel = await _channel(request, PhoneChannel).dial(inbox_info(choices[0]), wanted.agent_extension, number)
    except DeliveryError as exc:
        raise Upstream(exc.reason) from exc
    except ValueError as exc:  # a number or extension that cannot be dialled; settings that are wrong
        raise Invalid(str(exc)) from exc
    return json_response({"status": "dialing"} if tel is None else {"tel": tel})
