"""Organisations: CRUD with domains, members by email domain and by hand, the reports filter by organisation,
and a contact's health with its reasons (real service and app, controlled clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from channels.base import Identity, IdentityKind, Inbound
from inbox.errors import Invalid
from inbox.service import ConversationChanges, InboxService
from inbox.service.organizations import normalise_domains
from inbox.store.models import Inbox
from tests.factories import add_member, make_agent, make_inbox, make_token
from tests.report_clock import controlled
from tests.servers.app import LiveServer

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


def test_domains_are_normalised_and_checked() -> None:
    assert normalise_domains([" @Acme.TEST", "acme.test", "mail.acme.test"]) == ["acme.test", "mail.acme.test"]
    with pytest.raises(Invalid, match=r"domains\[1\]: 'not a domain'"):
        normalise_domains(["acme.test", "not a domain"])


def mail(inbox: Inbox, external_id: str, email: str, text: str = "Hello") -> Inbound:
    assert inbox.id is not None
    return Inbound(
        inbox_id=inbox.id,
        external_id=external_id,
        thread_key=f"thread:{external_id}",
        sender=Identity(IdentityKind.EMAIL, email, name=email.split("@")[0].title()),
        text=text,
    )


async def contact_of(service: InboxService, conversation_id: int) -> int:
    async with service.store.session() as session:
        from inbox.store.models import Conversation

        row = await session.get(Conversation, conversation_id)
        assert row is not None
        return row.contact_id


async def test_organizations_crud_members_and_report_filter(server: LiveServer) -> None:
    store, service = server.state.store, server.state.service
    inbox = await make_inbox(store, channel="email")
    admin = await make_agent(store, email="ann@example.test", name="Ann", role="admin")
    bob = await make_agent(store, email="bob@example.test", name="Bob")
    await add_member(store, inbox, bob)
    with controlled(START):
        ann_acme = (await service.deliver(mail(inbox, "m1", "ann@acme.test"))).conversation_id
        await service.deliver(mail(inbox, "m2", "zed@other.test"))
        hand = (await service.deliver(mail(inbox, "m3", "kim@gmail.test"))).conversation_id
    kim = await contact_of(service, hand)
    admin_token, bob_token = await make_token(store, admin), await make_token(store, bob)
    async with (
        httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {admin_token}"}) as http,
        httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {bob_token}"}) as agent,
    ):
        made = await http.post("/api/v1/organizations", json={"name": "Acme", "domains": ["ACME.test"]})
        assert made.status_code == 201, made.text
        org = made.json()
        assert org["domains"] == ["acme.test"]
        clash = await http.post("/api/v1/organizations", json={"name": "Acme 2", "domains": ["acme.test"]})
        bad = await http.post("/api/v1/organizations", json={"name": "X", "domains": ["nope"]})
        extra = await http.post("/api/v1/organizations", json={"name": "X", "colour": "red"})
        not_admin = await agent.post("/api/v1/organizations", json={"name": "Bob's"})
        added = await agent.post(f"/api/v1/organizations/{org['id']}/members", json={"contact_id": kim})
        missing = await agent.post(f"/api/v1/organizations/{org['id']}/members", json={"contact_id": 999})
        listed = await agent.get(f"/api/v1/organizations/{org['id']}/members")
        page = await agent.get(f"/api/v1/organizations/{org['id']}/members", params={"limit": 1})
        report = await http.get(
            "/api/v1/reports/summary",
            params={"from": "2026-03-01", "to": "2026-03-08", "organization_id": org["id"]},
        )
        csv_rows = await http.get(
            "/api/v1/reports/conversations.csv",
            params={"from": "2026-03-01", "to": "2026-03-08", "organization_id": org["id"]},
        )
        unknown = await http.get("/api/v1/reports/summary", params={"organization_id": 999})
        renamed = await http.patch(f"/api/v1/organizations/{org['id']}", json={"name": "Acme Inc", "domains": []})
        after = await agent.get(f"/api/v1/organizations/{org['id']}/members")
        removed = await agent.delete(f"/api/v1/organizations/{org['id']}/members/{kim}")
        deleted = await http.delete(f"/api/v1/organizations/{org['id']}")
        gone = await http.get(f"/api/v1/organizations/{org['id']}")
    assert clash.status_code == 409 and "acme.test" in clash.json()["error"]["detail"]
    assert bad.status_code == 422 and "domains[0]" in bad.json()["error"]["detail"]
    assert extra.status_code == 422 and "colour" in extra.json()["error"]["detail"]
    assert not_admin.status_code == 403
    assert added.status_code == 201 and missing.status_code == 404
    members = {(m["email"], m["via"]) for m in listed.json()["items"]}
    assert members == {("ann@acme.test", "domain"), ("kim@gmail.test", "hand")}
    assert len(page.json()["items"]) == 1 and page.json()["next_cursor"] is not None
    assert report.status_code == 200, report.text
    data = report.json()
    assert data["conversations"]["created"] == 2 and data["kpis"]["created"] == 2  # not zed@other.test
    assert len(csv_rows.text.strip().splitlines()) == 3
    assert unknown.status_code == 404
    assert renamed.json()["name"] == "Acme Inc"
    assert [m["email"] for m in after.json()["items"]] == ["kim@gmail.test"]  # the domain is gone, the hand stays
    assert removed.status_code == 204 and deleted.status_code == 204 and gone.status_code == 404
    assert ann_acme


async def test_contact_health_with_reasons(server: LiveServer) -> None:
    store, service, surveys = server.state.store, server.state.service, server.state.surveys
    inbox = await make_inbox(store, channel="email", csat_enabled=True)
    admin = await make_agent(store, email="ann@example.test", name="Ann", role="admin")
    bob = await make_agent(store, email="bob@example.test", name="Bob")
    await add_member(store, inbox, bob)
    acme = await service.create_organization(name="Acme", domains=["acme.test"])
    with controlled(START) as clock:
        first = (await service.deliver(mail(inbox, "h1", "ann@acme.test"))).conversation_id
        clock.at = START + timedelta(hours=1)
        await service.reply(first, by=admin, body="Hi", client_id=None)
        await service.update_conversation(first, ConversationChanges(status="resolved"), by=admin)
        clock.at = START + timedelta(hours=2)
        second = (await service.deliver(mail(inbox, "h2", "ann@acme.test", text="still broken"))).conversation_id
    contact_id = await contact_of(service, first)
    assert second != first
    async with store.session() as session:
        from sqlmodel import col, select

        from inbox.store.models import CsatSurvey

        survey = (
            await session.execute(select(CsatSurvey).where(col(CsatSurvey.conversation_id) == first))
        ).scalar_one()
    assert survey.id is not None
    with controlled(START + timedelta(hours=3)):
        await surveys.respond(surveys.token(survey.id), 2, "slow and wrong")
    admin_token, bob_token = await make_token(store, admin), await make_token(store, bob)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("inbox.api.organizations.utcnow", lambda: START + timedelta(days=2))
        async with (
            httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {admin_token}"}) as http,
            httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {bob_token}"}) as agent,
        ):
            health = (await http.get(f"/api/v1/contacts/{contact_id}/health")).json()
            hidden = await agent.get("/api/v1/contacts/999999/health")
    assert health["organization"] == {"id": acme.id, "name": "Acme", "via": "domain"}
    assert [c["id"] for c in health["conversations"]] == [second, first]
    assert health["open_issues"] == [second]
    assert health["median_first_response_seconds"] == 3600.0
    assert health["csat"][0]["rating"] == 2 and health["csat"][0]["comment"] == "slow and wrong"
    assert health["health"]["level"] == "poor"
    assert health["health"]["reasons"] == ["CSAT of 2 in the last 30 days", "waiting for a reply for 46 h"]
    assert hidden.status_code == 404
