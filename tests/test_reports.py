"""Reports: first-response and resolution times, volumes, workload and labels, scoped to what the caller sees."""

from __future__ import annotations

from datetime import timedelta

import httpx

from inbox.clock import utcnow
from inbox.reports.summary import Durations
from inbox.service import ConversationChanges
from inbox.store.models import Conversation
from tests.factories import add_member, inbound, make_agent, make_inbox, make_label, make_token
from tests.servers.app import LiveServer


def test_durations_use_nearest_rank_percentiles() -> None:
    summary = Durations.of([10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
    assert (summary.count, summary.average, summary.median, summary.p90) == (10, 55, 50, 90)
    assert Durations.of([]).as_dict()["median_seconds"] is None


async def test_summary_over_http(server: LiveServer) -> None:
    store, service = server.state.store, server.state.service
    inbox = await make_inbox(store, sla_first_response_minutes=60)
    other = await make_inbox(store, name="Other")
    bob = await make_agent(store, email="bob@example.test", name="Bob")
    await add_member(store, inbox, bob)
    await make_label(store, "billing")
    first = await service.deliver(inbound(inbox, "1", sender="a"))
    second = await service.deliver(inbound(inbox, "2", sender="b"))
    await service.deliver(inbound(other, "3", sender="c"))  # invisible to Bob
    created = utcnow() - timedelta(hours=2)
    async with store.transaction() as tx:
        for conversation_id in (first.conversation_id, second.conversation_id):
            row = await tx.get(Conversation, conversation_id)
            assert row is not None
            row.created_at = created
    await service.reply(first.conversation_id, by=bob, body="hello", client_id=None)
    await service.update_conversation(
        first.conversation_id, ConversationChanges(status="resolved", labels=["billing"]), by=bob
    )
    await service.update_conversation(second.conversation_id, ConversationChanges(assignee_id=bob.id), by=bob)
    token = await make_token(store, bob)
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http:
        response = await http.get("/api/v1/reports/summary")
        bad = await http.get("/api/v1/reports/summary", params={"from": "yesterday"})
        hidden = await http.get("/api/v1/reports/summary", params={"inbox_id": other.id})
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["conversations"]["created"] == 2 and data["conversations"]["resolved"] == 1
    assert data["conversations"]["unanswered"] == 1
    assert data["messages"]["incoming"] == 2 and data["messages"]["outgoing"] == 1
    assert 7100 < data["first_response"]["median_seconds"] < 7300
    assert data["workload"] == [{"agent_id": bob.id, "name": "Bob", "open": 1, "resolved": 0}]
    assert data["labels"] == [{"name": "billing", "conversations": 1, "previous": 0}]
    # Both were created 2 h ago with a 60-minute target: one answered late, one not yet answered.
    assert data["sla"] == {"met": 0, "breached": 2, "pending": 0, "rate": 0.0}
    assert bad.status_code == 422 and "from" in bad.json()["error"]["detail"]
    assert hidden.status_code == 404


def test_sla_counts_met_breached_and_pending() -> None:
    from inbox.reports.summary import sla

    now = utcnow()
    hour_ago = now - timedelta(hours=1)
    rows = [
        (hour_ago, hour_ago + timedelta(minutes=10), None, 1),  # met
        (hour_ago, hour_ago + timedelta(minutes=50), None, 1),  # breached (late)
        (now - timedelta(minutes=5), None, None, 1),  # pending: still inside 30 min
        (hour_ago, None, None, 1),  # breached: waiting past the target
        (hour_ago, None, None, 2),  # inbox without a target: not counted
    ]
    assert sla(rows, {1: 30, 2: None}, now=now) == {"met": 1, "breached": 2, "pending": 1, "rate": 0.333}
