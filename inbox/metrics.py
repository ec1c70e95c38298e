"""Prometheus metrics (prometheus_client): one registry per app, so tests and several apps never clash."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from channels.base import Channel, HealthReporting
from inbox.events import EventRecord


class Metrics:
    """The counters and gauges this process exports at `/metrics`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events_published = Counter(
            "switchboard_events_published", "Events appended to the log and published", ["type"], registry=self.registry
        )
        self.outbox_results = Counter(
            "switchboard_outbox_results",
            "Outbox send attempts by result",
            ["channel", "result"],
            registry=self.registry,
        )
        self.stream_connections = Gauge(
            "switchboard_stream_connections", "Open agent stream websockets in this process", registry=self.registry
        )
        self.http_requests = Counter(
            "switchboard_http_requests",
            "HTTP requests by method and status class",
            ["method", "status"],
            registry=self.registry,
        )
        self.channel_last_success = Gauge(
            "switchboard_channel_last_success_timestamp_seconds",
            "Unix time of a channel's last successful receive (fetch) or send, per inbox",
            ["channel", "inbox_id", "operation"],
            registry=self.registry,
        )
        self.channel_last_error = Gauge(
            "switchboard_channel_last_error_timestamp_seconds",
            "Unix time of a channel's last error per inbox (the error text is logged)",
            ["channel", "inbox_id"],
            registry=self.registry,
        )

    def observe_channels(self, channels: Iterable[Channel]) -> None:
        """Copy the health that channels keep (`channels.base.ChannelHealth`) into gauges."""
        for channel in channels:
            if not isinstance(channel, HealthReporting):
                continue
            for health in channel.health():
                inbox = str(health.inbox_id)
                if health.last_fetch_at is not None:
                    self.channel_last_success.labels(channel.name, inbox, "fetch").set(health.last_fetch_at)
                if health.last_send_at is not None:
                    self.channel_last_success.labels(channel.name, inbox, "send").set(health.last_send_at)
                if health.last_error_at is not None:
                    self.channel_last_error.labels(channel.name, inbox).set(health.last_error_at)

    async def count_event(self, event: EventRecord) -> None:
        self.events_published.labels(event.type).inc()

    async def ignore_ephemeral(self, frame: dict[str, Any], inbox_id: int | None) -> None:
        return None

    def count_outbox_result(self, channel: str, result: str) -> None:
        self.outbox_results.labels(channel, result).inc()


class RequestCounter:
    """ASGI middleware counting HTTP responses by method and status class (2xx, 4xx, …)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = f"{int(message['status']) // 100}xx"
                self.metrics.http_requests.labels(scope["method"], status).inc()
            await send(message)

        await self.app(scope, receive, counting_send)


async def metrics_endpoint(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    metrics.stream_connections.set(request.app.state.hub.connections)
    metrics.observe_channels(request.app.state.channels.values())
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
