"""The app served for real: health, metrics, OpenAPI."""

from __future__ import annotations

import httpx

from tests.servers.app import LiveServer


async def test_healthz_metrics_openapi(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        await http.get("/nowhere")
        metrics = await http.get("/metrics")
        assert metrics.status_code == 200 and "switchboard_stream_connections" in metrics.text
        assert 'switchboard_http_requests_total{method="GET",status="4xx"} 1.0' in metrics.text
        document = (await http.get("/api/v1/openapi.json")).json()
        assert document["openapi"] == "3.1.0"
        assert "/api/v1/inboxes/{inbox_id}/incoming" in document["paths"]
