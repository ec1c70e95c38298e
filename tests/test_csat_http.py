"""CSAT over HTTP against the real server: the public survey page (form and JSON), the inbox setting, the
survey reaching an API-channel webhook, and the report summary's CSAT numbers over seeded data."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlmodel import col, select

from inbox.service import ConversationChanges
from inbox.store.models import CsatSurvey, Message
from tests.factories import inbound, make_agent, make_inbox, make_token
from tests.poll import eventually
from tests.report_seed import EXPECTED, seed
from tests.servers.app import LiveServer


async def resolved_with_survey(server: LiveServer, **settings: Any) -> tuple[int, str, Any]:
    service = server.state.service
    inbox = await make_inbox(service.store, csat_enabled=True, **settings)
    agent = await make_agent(service.store, role="admin")
    delivered = await service.deliver(inbound(inbox, "q1"))
    await service.reply(delivered.conversation_id, by=agent, body="Done!", client_id=None)
    await service.update_conversation(delivered.conversation_id, ConversationChanges(status="resolved"), by=agent)
    async with service.store.session() as session:
        survey = (
            await session.execute(
                select(CsatSurvey).where(col(CsatSurvey.conversation_id) == delivered.conversation_id)
            )
        ).scalar_one()
        message = await session.get(Message, survey.message_id)
    assert message is not None
    return delivered.conversation_id, message.meta["options"]["survey"]["url"], agent


async def test_survey_page_form_and_json(server: LiveServer) -> None:
    conversation_id, url, agent = await resolved_with_survey(server)
    assert url.startswith(server.url + "/csat/")
    async with httpx.AsyncClient() as http:
        page = await http.get(url, params={"rating": "4"})
        assert page.status_code == 200 and "How would you rate the help you got?" in page.text
        assert re.search(r'value="4" required checked', page.text)
        assert page.headers["x-frame-options"] == "DENY"

        bad = await http.post(url, data={"rating": "9", "comment": "hmm"})
        assert bad.status_code == 422 and "Please choose a rating from 1 to 5." in bad.text
        assert ">hmm</textarea>" in bad.text  # the comment is kept for the next try

        saved = await http.post(url, data={"rating": "5", "comment": "thanks!"})
        assert saved.status_code == 200 and "Your rating of 5 was saved" in saved.text

        changed = await http.post(url, json={"rating": 4, "comment": "ok"})
        assert changed.status_code == 200
        assert changed.json()["survey"] | {"id": 0} == {
            "id": 0,
            "question": "How would you rate the help you got?",
            "rating": 4,
            "comment": "ok",
            "open": True,
            "closed_reason": None,
        }
        for body in (b"[1]", b"{not json"):
            refused = await http.post(url, content=body, headers={"content-type": "application/json"})
            assert refused.status_code == 422 and refused.json()["error"]["code"]
        missing = await http.get(server.url + "/csat/not-a-token")
        assert missing.status_code == 404 and "Survey not found" in missing.text

        token = await make_token(server.state.store, agent)
        thread = await http.get(
            f"{server.url}/api/v1/conversations/{conversation_id}/messages",
            headers={"Authorization": f"Bearer {token}"},
        )
    bodies = [m["body"] for m in thread.json()["items"] if m["kind"] == "activity"]
    assert "Customer rated 5 — “thanks!”" in bodies and "Customer changed their rating to 4 — “ok”" in bodies


async def test_survey_goes_out_on_the_conversations_channel(server: LiveServer) -> None:
    """An API-channel inbox without a webhook: the survey message is attempted by the outbox and marked failed
    with the reason, like any reply — it went through the same path."""
    _, url, _ = await resolved_with_survey(server)

    async def survey_failed() -> bool:
        async with server.state.store.session() as session:
            rows = (await session.execute(select(Message).where(col(Message.sender_type) == "system"))).scalars()
            found = [row for row in rows if url in row.body]
        return bool(found) and found[0].status == "failed" and "webhook" in (found[0].error or "")

    await eventually(survey_failed, what="the survey message was attempted and failed")


async def test_inbox_setting_is_checked(server: LiveServer) -> None:
    admin = await make_agent(server.state.store, role="admin")
    token = await make_token(server.state.store, admin)
    inbox = await make_inbox(server.state.store)
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http:
        bad = await http.patch(f"/api/v1/inboxes/{inbox.id}", json={"settings": {"csat_enabled": "yes"}})
        good = await http.patch(f"/api/v1/inboxes/{inbox.id}", json={"settings": {"csat_enabled": True}})
        created = await http.post(
            "/api/v1/inboxes", json={"name": "X", "channel": "api", "settings": {"csat_enabled": 1}}
        )
    assert bad.status_code == 422 and bad.json()["error"]["detail"] == "settings.csat_enabled: must be true or false"
    assert good.status_code == 200 and good.json()["settings"]["csat_enabled"] is True
    assert created.status_code == 422


async def test_summary_reports_csat_and_trends(server: LiveServer) -> None:
    seeded = await seed(server.state.service, server.state.surveys)
    token = await make_token(server.state.store, seeded.admin)
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http:
        data = (await http.get("/api/v1/reports/summary")).json()
        cat_token = await make_token(server.state.store, seeded.cat)
        as_cat = (await http.get("/api/v1/reports/summary", headers={"Authorization": f"Bearer {cat_token}"})).json()
    for key, value in EXPECTED.items():
        assert data[key] == value, key
    assert data["messages"] == {"incoming": 6, "outgoing": 4, "notes": 0}
    assert data["workload"] == [
        {"agent_id": seeded.cat.id, "name": "Cat", "open": 1, "resolved": 1},
        {"agent_id": seeded.bob.id, "name": "Bob", "open": 0, "resolved": 2},
    ]
    assert data["csat"] == {
        "sent": 3,
        "responses": 3,
        "average": 3.67,
        "satisfied_percent": 66.7,
        "response_rate": 1.0,
        "distribution": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1},
        "by_agent": [
            {"agent_id": seeded.bob.id, "name": "Bob", "responses": 2, "average": 4.5, "satisfied_percent": 100.0},
            {"agent_id": seeded.cat.id, "name": "Cat", "responses": 1, "average": 2.0, "satisfied_percent": 0.0},
        ],
        "by_label": [
            {"name": "billing", "responses": 2, "average": 4.5, "satisfied_percent": 100.0},
            {"name": "shipping", "responses": 1, "average": 2.0, "satisfied_percent": 0.0},
        ],
    }
    assert as_cat["csat"]["responses"] == 3  # Cat is a member of the inbox: same scope
