"""Quarantined (poison) mail is for admins only: agents of the inbox get 403 and never see it in a
conversation; admins list it with the reason, download the raw original, retry it after a fix (it then lands
in a conversation, once) or discard it (and the same bytes arriving again stay discarded)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete
from sqlmodel import col, select

from channels.email import EmailChannel
from inbox.config import EmailConfig
from inbox.gateway.outbox import inbox_info
from inbox.store.models import Inbox, Quarantined, key
from tests.email_helpers import email_inbox, messages, quarantined, raw_mail
from tests.factories import add_member, make_agent, make_token
from tests.servers.app import LiveServer, live_server, make_config

DATA = Path(__file__).parent / "data" / "email"


@pytest.fixture
async def mail_server(db_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    """The real app with the email channel on (no mailbox: mail is handed to `ingest` directly)."""
    async with live_server(make_config(db_url, tmp_path, email=EmailConfig(max_message_bytes=2000))) as running:
        yield running


async def test_quarantine_is_admin_only_and_retry_after_a_fix_delivers_once(mail_server: LiveServer) -> None:
    store = mail_server.state.store
    inbox = await email_inbox(store)
    ann = await make_agent(store, email="ann@example.test")
    await add_member(store, inbox, ann)
    boss = await make_agent(store, email="boss@example.test", name="Boss", role="admin")
    channel: EmailChannel = mail_server.state.channels["email"]
    big = raw_mail(subject="Huge order", message_id="<big@customer.test>", body="x" * 3000)
    assert await channel.ingest(inbox_info(inbox), big) is None  # too large for this server: quarantined

    agent_headers = {"Authorization": f"Bearer {await make_token(store, ann)}"}
    admin_headers = {"Authorization": f"Bearer {await make_token(store, boss)}"}
    async with httpx.AsyncClient(base_url=mail_server.url) as http:
        [held] = await quarantined(store, key(inbox))
        for method, path in [
            ("GET", "/api/v1/quarantine"),
            ("GET", f"/api/v1/quarantine/{held.id}/raw"),
            ("POST", f"/api/v1/quarantine/{held.id}/retry"),
            ("DELETE", f"/api/v1/quarantine/{held.id}"),
        ]:
            answer = await http.request(method, path, headers=agent_headers)
            assert answer.status_code == 403, (method, path, answer.text)
        assert (await http.get("/api/v1/quarantine")).status_code == 401
        listed = (await http.get("/api/v1/conversations", headers=agent_headers)).json()["items"]
        assert listed == []  # nothing of it reaches the agents' inbox

        [item] = (await http.get("/api/v1/quarantine", headers=admin_headers)).json()["items"]
        assert item["id"] == held.id and item["inbox_id"] == key(inbox) and item["inbox_name"] == "Support"
        assert "larger than the 2000-byte limit" in item["reason"]
        assert item["sender"] == "carol@customer.test" and item["subject"] == "Huge order"
        filtered = await http.get(f"/api/v1/quarantine?inbox_id={key(inbox) + 1}", headers=admin_headers)
        assert filtered.json()["items"] == []

        raw = await http.get(item["raw_url"], headers=admin_headers)
        assert raw.status_code == 200 and raw.content == big
        assert raw.headers["content-type"] == "message/rfc822"
        assert raw.headers["content-disposition"].startswith("attachment;")
        assert raw.headers["x-content-type-options"] == "nosniff"

        # Not fixed yet: the retry fails with the reason, the mail stays in quarantine.
        again = await http.post(f"/api/v1/quarantine/{held.id}/retry", headers=admin_headers)
        assert again.status_code == 422 and "still fails" in again.json()["error"]["detail"]
        assert "2000-byte limit" in again.json()["error"]["detail"]
        [still] = await quarantined(store, key(inbox))
        assert still.attempts == 2 and await messages(store, key(inbox)) == []

        # The fix: a larger size limit. Now the retry stores it in a conversation, and only once.
        channel.settings = dataclasses.replace(channel.settings, max_message_bytes=100_000)
        done = await http.post(f"/api/v1/quarantine/{held.id}/retry", headers=admin_headers)
        assert done.status_code == 200, done.text
        delivered = done.json()["delivered"]
        assert delivered["created"] is True
        assert (await http.get("/api/v1/quarantine", headers=admin_headers)).json()["items"] == []
        assert await quarantined(store, key(inbox)) == []
        [stored] = await messages(store, key(inbox))
        assert stored.external_id == "<big@customer.test>" and stored.id == delivered["message_id"]
        gone = await http.post(f"/api/v1/quarantine/{held.id}/retry", headers=admin_headers)
        assert gone.status_code == 404
        assert not mail_server.state.blobs.path(held.storage_name or "").exists()
        seen = (await http.get("/api/v1/conversations", headers=agent_headers)).json()["items"]
        assert [row["id"] for row in seen] == [delivered["conversation_id"]]


async def test_discarded_mail_is_gone_and_stays_discarded(mail_server: LiveServer) -> None:
    store = mail_server.state.store
    inbox = await email_inbox(store)
    boss = await make_agent(store, email="boss@example.test", name="Boss", role="admin")
    channel: EmailChannel = mail_server.state.channels["email"]
    garbage = (DATA / "garbage_not_mail.eml").read_bytes()
    await channel.ingest(inbox_info(inbox), garbage)
    [held] = await quarantined(store, key(inbox))
    headers = {"Authorization": f"Bearer {await make_token(store, boss)}"}
    async with httpx.AsyncClient(base_url=mail_server.url, headers=headers) as http:
        assert (await http.delete(f"/api/v1/quarantine/{held.id}")).status_code == 204
        assert (await http.get("/api/v1/quarantine")).json()["items"] == []
        assert (await http.get(f"/api/v1/quarantine/{held.id}/raw")).status_code == 404
        assert (await http.delete(f"/api/v1/quarantine/{held.id}")).status_code == 404
        assert not mail_server.state.blobs.path(held.storage_name or "").exists()
        # The same bytes again (a mailbox rebuilt with a new UIDVALIDITY): still discarded, not listed.
        await channel.ingest(inbox_info(inbox), garbage)
        assert (await http.get("/api/v1/quarantine")).json()["items"] == []
        # Other poison mail is still quarantined as usual.
        await channel.ingest(inbox_info(inbox), garbage + b"\r\nmore junk\r\n")
        assert len((await http.get("/api/v1/quarantine")).json()["items"]) == 1
    assert await messages(store, key(inbox)) == []


async def test_an_inbox_with_mail_in_quarantine_is_not_deleted_and_its_tombstones_go_with_it(
    mail_server: LiveServer,
) -> None:
    store = mail_server.state.store
    inbox = await email_inbox(store)
    boss = await make_agent(store, email="boss@example.test", name="Boss", role="admin")
    channel: EmailChannel = mail_server.state.channels["email"]
    garbage = (DATA / "garbage_not_mail.eml").read_bytes()
    await channel.ingest(inbox_info(inbox), garbage)
    await channel.ingest(inbox_info(inbox), garbage + b"\r\nother junk\r\n")
    first, second = await quarantined(store, key(inbox))
    headers = {"Authorization": f"Bearer {await make_token(store, boss)}"}
    async with httpx.AsyncClient(base_url=mail_server.url, headers=headers) as http:
        refused = await http.delete(f"/api/v1/inboxes/{key(inbox)}")
        assert refused.status_code == 409
        assert refused.json()["error"]["detail"] == (
            f"inbox {key(inbox)} has 2 quarantined messages: retry or discard them first"
        )
        assert (await http.get(f"/api/v1/inboxes/{key(inbox)}")).status_code == 200
        assert (await http.delete(f"/api/v1/quarantine/{first.id}")).status_code == 204
        refused = await http.delete(f"/api/v1/inboxes/{key(inbox)}")
        assert refused.status_code == 409 and "has 1 quarantined message:" in refused.json()["error"]["detail"]
        assert (await http.delete(f"/api/v1/quarantine/{second.id}")).status_code == 204
        assert (await http.delete(f"/api/v1/inboxes/{key(inbox)}")).status_code == 204
    async with store.session() as session:  # the tombstones went with the inbox
        left = (await session.execute(select(Quarantined).where(col(Quarantined.inbox_id) == key(inbox)))).all()
    assert left == []


async def test_mail_of_a_deleted_inbox_is_listed_downloadable_and_discardable_but_not_retried(
    mail_server: LiveServer,
) -> None:
    """Rows left by an inbox deleted before the rule above (or quarantined by a receiver while the inbox was
    being deleted) stay visible to admins with a clear state instead of vanishing or failing."""
    store = mail_server.state.store
    inbox = await email_inbox(store)
    boss = await make_agent(store, email="boss@example.test", name="Boss", role="admin")
    channel: EmailChannel = mail_server.state.channels["email"]
    garbage = (DATA / "garbage_not_mail.eml").read_bytes()
    await channel.ingest(inbox_info(inbox), garbage)
    [held] = await quarantined(store, key(inbox))
    async with store.transaction() as tx:  # as the old delete did: the inbox goes, its quarantine stays
        await tx.execute(delete(Inbox).where(col(Inbox.id) == key(inbox)))
    headers = {"Authorization": f"Bearer {await make_token(store, boss)}"}
    async with httpx.AsyncClient(base_url=mail_server.url, headers=headers) as http:
        [item] = (await http.get("/api/v1/quarantine")).json()["items"]
        assert item["id"] == held.id and item["inbox_id"] == key(inbox)
        assert item["inbox_deleted"] is True and item["inbox_name"] is None and item["channel"] is None
        raw = await http.get(item["raw_url"])
        assert raw.status_code == 200 and raw.content == garbage
        retried = await http.post(f"/api/v1/quarantine/{held.id}/retry")
        assert retried.status_code == 409
        assert retried.json()["error"]["detail"] == (
            f"inbox {key(inbox)} of quarantined message {held.id} was deleted: download the original or discard it"
        )
        assert (await http.delete(f"/api/v1/quarantine/{held.id}")).status_code == 204
        assert (await http.get("/api/v1/quarantine")).json()["items"] == []
    assert not mail_server.state.blobs.path(held.storage_name or "").exists()
    async with store.session() as session:  # no tombstone for an inbox that is gone (its id may come back)
        assert await session.get(Quarantined, held.id) is None
