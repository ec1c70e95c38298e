"""CSV exports: the conversations export (one row each, both clocks) streamed page by page, and report tables."""

from __future__ import annotations

import csv
import io
from unittest import mock

import httpx

from inbox.reports import export
from tests.factories import make_token
from tests.servers.app import LiveServer
from tests.test_reports_kpi import world

PERIOD = {"from": "2026-03-02", "to": "2026-03-16"}


def test_cells_that_would_run_as_formulas_are_quoted() -> None:
    assert [export.cell(v) for v in ("=1+1", "+4", "-x", "@a", "plain", None, 3)] == [
        "'=1+1", "'+4", "'-x", "'@a", "plain", "", 3,
    ]  # fmt: skip


async def test_conversations_csv_streams_one_row_each(server: LiveServer) -> None:
    admin = (await world(server.state.service))[2]
    token = await make_token(server.state.store, admin)
    chunks: list[bytes] = []
    with mock.patch.object(export, "PAGE", 1):  # one conversation per page: the keyset must carry on
        async with (
            httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http,
            http.stream("GET", "/api/v1/reports/conversations.csv", params=PERIOD) as response,
        ):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/csv")
            assert "content-length" not in response.headers  # streamed, not buffered
            assert response.headers["content-disposition"] == 'attachment; filename="conversations.csv"'
            async for chunk in response.aiter_raw():
                chunks.append(chunk)
    rows = list(csv.DictReader(io.StringIO(b"".join(chunks).decode())))
    assert [row["inbox"] for row in rows] == ["Office", "Always"]
    a, b = rows
    assert a["link"].endswith(f"/#conversation/{a['id']}")
    assert (a["assignee"], a["team"], a["status"], a["labels"], a["channel"]) == (
        "Bob", "Tier 1", "resolved", "billing", "api",
    )  # fmt: skip
    assert (a["first_response_seconds"], a["first_response_business_seconds"]) == ("235800", "5400")
    assert (a["resolution_seconds"], a["resolution_business_seconds"]) == ("252000", "21600")
    assert a["created_at"] == "2026-03-06T15:00:00.000Z" and a["contact_name"] == "Carol Customer"
    assert (b["first_response_seconds"], b["resolution_seconds"], b["assignee"]) == ("1200", "", "")


async def test_report_tables_as_csv(server: LiveServer) -> None:
    admin = (await world(server.state.service))[2]
    token = await make_token(server.state.store, admin)
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http:
        agents = await http.get("/api/v1/reports/agent.csv", params=PERIOD)
        heat = await http.get("/api/v1/reports/volume_by_hour.csv", params={**PERIOD, "tz": "Europe/Berlin"})
        series = await http.get(
            "/api/v1/reports/timeseries.csv", params={**PERIOD, "metric": "created", "bucket": "week"}
        )
        unknown = await http.get("/api/v1/reports/planets.csv", params=PERIOD)
        bad = await http.get("/api/v1/reports/agent.csv", params={"from": "later"})
    table = {row["name"]: row for row in csv.DictReader(io.StringIO(agents.text))}
    assert table["Bob"]["first_response_business_median_seconds"] == "5400.0"
    assert table["Bob"]["resolution_wall_count"] == "1" and table["Bob"]["reopened"] == "1"
    heat_rows = list(csv.reader(io.StringIO(heat.text)))
    assert heat_rows[5][0] == "fri" and heat_rows[5][1 + 16] == "1"
    assert list(csv.reader(io.StringIO(series.text)))[1][3] == "2"
    assert unknown.status_code == 404
    assert bad.status_code == 422 and "query.from" in bad.json()["error"]["detail"]
