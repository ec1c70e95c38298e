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
        self.http_requests = Counter(
            "switchboard_http_requests",
            "HTTP requests by method and status class",
            ["method", "status"],
            registry=self.registry,
        )


async def metrics_endpoint(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    metrics.stream_connections.set(request.app.state.hub.connections)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
