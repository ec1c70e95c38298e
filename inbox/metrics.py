"""Prometheus metrics (prometheus_client): one registry per app, so tests and several apps never clash."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response


class Metrics:
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


async def metrics_endpoint(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    metrics.stream_connections.set(request.app.state.hub.connections)
    for name, channel in request.app.state.channels.items():
        health = getattr(channel, "health", None)  # optional: channels that report mailbox/bot health
        for row in health() if callable(health) else []:
            for field, gauge in metrics.channel_gauges.items():
                gauge.labels(name, str(row["inbox_id"])).set(float(row.get(field) or 0))
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
