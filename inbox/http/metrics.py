"""Prometheus metrics (prometheus_client): one registry per app, so tests and several apps never clash."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from channels.base import Channel, HealthReporting
from inbox.gateway.admission import Admission
from inbox.http.services import services
from inbox.realtime.events import EventRecord


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
        labels = ["channel", "inbox_id"]
        self.channel_gauges = {
            "last_fetch_at": Gauge(
                "switchboard_channel_last_fetch_timestamp_seconds",
                "Last successful fetch",
                labels,
                registry=self.registry,
            ),
            "last_send_at": Gauge(
                "switchboard_channel_last_send_timestamp_seconds",
                "Last successful send",
                labels,
                registry=self.registry,
            ),
            "last_error_at": Gauge(
                "switchboard_channel_last_error_timestamp_seconds", "Last error", labels, registry=self.registry
            ),
            "failing_since": Gauge(
                "switchboard_channel_failing_since_timestamp_seconds",
                "Start of the current run of failures (0 when healthy)",
                labels,
                registry=self.registry,
            ),
            "backlog": Gauge(
                "switchboard_channel_backlog", "Items waiting to be fetched", labels, registry=self.registry
            ),
        }
        self.http_requests = Counter(
            "switchboard_http_requests",
            "HTTP requests by method and status class",
            ["method", "status"],
            registry=self.registry,
        )

        # Routing queues (inbox.workflow.routing): refreshed before each scrape by `before_scrape` hooks.
        self.routing_queue: list[tuple[int, int, float]] = []  # (inbox id, length, oldest wait seconds)
        self.before_scrape: list[Callable[[], Awaitable[None]]] = []
        self.registry.register(RoutingCollector(self))

    def watch_admission(self, admission: Admission) -> None:
        """Export the delivery admission counts (`inbox.gateway.admission`) on every scrape."""
        self.registry.register(AdmissionCollector(admission))

    def observe_channels(self, channels: Iterable[Channel]) -> None:
        """Copy the health that channels keep (`channels.base.ChannelHealth`) into gauges (0 = never)."""
        for channel in channels:
            if not isinstance(channel, HealthReporting):
                continue
            for health in channel.health():
                for field, gauge in self.channel_gauges.items():
                    gauge.labels(channel.name, str(health.inbox_id)).set(float(getattr(health, field) or 0))

    async def count_event(self, event: EventRecord) -> None:
        self.events_published.labels(event.type).inc()

    async def ignore_ephemeral(self, frame: dict[str, Any], inbox_id: int | None) -> None:
        return None

    def count_outbox_result(self, channel: str, result: str) -> None:
        self.outbox_results.labels(channel, result).inc()


class RoutingCollector:
    """The routing queue of each inbox that routes: conversations waiting for an agent, the oldest wait."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        length = GaugeMetricFamily(
            "switchboard_routing_queue_length", "Open unassigned conversations waiting for routing", labels=["inbox_id"]
        )
        wait = GaugeMetricFamily(
            "switchboard_routing_queue_oldest_wait_seconds",
            "How long the oldest queued conversation has waited",
            labels=["inbox_id"],
        )
        for inbox_id, count, oldest in self.metrics.routing_queue:
            length.add_metric([str(inbox_id)], count)
            wait.add_metric([str(inbox_id)], oldest)
        yield length
        yield wait


class AdmissionCollector:
    """Reads `Admission`'s counts at scrape time: deliveries in flight, the limit, admitted and refused."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission

    def collect(self) -> Iterator[Metric]:
        admission = self.admission
        yield GaugeMetricFamily(
            "switchboard_deliveries_in_flight", "Inbound deliveries being stored now", value=admission.in_flight
        )
        yield GaugeMetricFamily(
            "switchboard_deliveries_limit", "Inbound deliveries allowed in flight (0: no limit)", value=admission.limit
        )
        yield CounterMetricFamily(
            "switchboard_deliveries_admitted", "Inbound deliveries admitted", value=admission.admitted
        )
        yield CounterMetricFamily(
            "switchboard_deliveries_refused",
            "Inbound deliveries refused as overloaded (the sender was told to retry)",
            value=admission.refused,
        )


class RequestCounter:
    """ASGI middleware counting HTTP responses by method and status class (2xx, 4xx, …)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":
            # Handed straight through: no frame of ours is held for the whole life of each websocket.
            return self.app(scope, receive, send)
        return self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = f"{int(message['status']) // 100}xx"
                self.metrics.http_requests.labels(scope["method"], status).inc()
            await send(message)

        await self.app(scope, receive, counting_send)


async def metrics_endpoint(request: Request) -> Response:
    metrics: Metrics = services(request).metrics
    metrics.stream_connections.set(services(request).hub.connections)
    metrics.observe_channels(services(request).channels.values())
    for refresh in metrics.before_scrape:
        await refresh()
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
