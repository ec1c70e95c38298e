"""Spike detection on labels: this week against the 4-week baseline (pure rule and over HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from inbox.reports.spikes import detect
from inbox.service import ConversationChanges
from tests.factories import inbound, make_agent, make_inbox, make_label, make_token
from tests.report_clock import controlled
from tests.servers.app import LiveServer


def test_a_spike_needs_volume_ratio_and_excess() -> None:
    found = detect(
        {
            "billing": [8, 10, 9, 9, 31],  # the example
            "shipping": [4, 4, 4, 4, 8],  # twice the baseline but only 4 above it… a spike
            "login": [5, 5, 5, 5, 9],  # 1.8 × the baseline: not a spike
            "tiny": [0, 0, 0, 0, 4],  # too few
            "new": [0, 0, 0, 0, 5],  # from nothing to 5
        }
    )
    assert [row["label"] for row in found] == ["billing", "new", "shipping"]
    assert found[0]["text"] == "billing: 31 this week against a 4-week baseline of 9"


async def test_spikes_in_the_summary(server: LiveServer) -> None:
    store, service = server.state.store, server.state.service
    inbox = await make_inbox(store)
    admin = await make_agent(store, role="admin")
    await make_label(store, "billing")
    end = datetime(2026, 3, 30, tzinfo=UTC)
    plan = [(end - timedelta(days=20), 1), (end - timedelta(days=2), 6)]  # 1 in the baseline, 6 this week
    number = 0
    for at, count in plan:
        with controlled(at):
            for _ in range(count):
                number += 1
                cid = (await service.deliver(inbound(inbox, f"s{number}", sender=f"c{number}"))).conversation_id
                await service.update_conversation(cid, ConversationChanges(labels=["billing"]), by=admin)
    token = await make_token(store, admin)
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http:
        now = await http.get("/api/v1/reports/summary", params={"from": "2026-03-23", "to": end.isoformat()})
        earlier = await http.get("/api/v1/reports/summary", params={"from": "2026-03-01", "to": "2026-03-20"})
    assert now.json()["spikes"] == [
        {
            "label": "billing",
            "this_week": 6,
            "baseline": 0.25,
            "weeks": [0, 0, 1, 0, 6],  # 20 days before the end is in the third week of five
            "text": "billing: 6 this week against a 4-week baseline of 0.25",
        }
    ]
    assert earlier.json()["spikes"] == []
