"""Privacy requests: export everything about a contact as one archive, erase the contact (reports unchanged,
a new message from the same identity starts a new contact), and the retention timer for resolved
conversations, run by one process of the cluster under a lease."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import zipfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from inbox.audit.retention import erase_due
from inbox.clock import iso, utcnow
from inbox.config import PrivacyConfig
from inbox.service import ConversationChanges, InboxService
from inbox.store.models import Attachment, Contact, Conversation, Identity, Message
from tests.api_world import World, build_world, small_server
from tests.conftest import Recorder
from tests.factories import inbound, make_inbox
from tests.servers.app import live_server, make_config

PDF = b"%PDF-1.4 the customer's invoice"


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with small_server(db_url, tmp_path) as server:
        yield await build_world(server)


async def summary(world: World, period: dict[str, str]) -> dict[str, Any]:
    async with world.client("admin") as http:
        response = await http.get("/api/v1/reports/summary", params=period)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_export_then_erase_keeps_reports_and_a_new_message_starts_a_new_contact(world: World) -> None:
    delivered = await world.deliver(sender="carol", text="My card number is 4111 and my address is Elm St 5")
    conversation_id = delivered.conversation_id
    async with world.client("ann") as http:
        uploaded = await http.post("/api/v1/attachments", files={"file": ("invoice.pdf", PDF, "application/pdf")})
        assert uploaded.status_code == 201, uploaded.text
        attachment_id = uploaded.json()["id"]
        reply = await http.post(
            f"/api/v1/conversations/{conversation_id}/messages",
            json={"body": "Here is your invoice", "attachment_ids": [attachment_id]},
        )
        assert reply.status_code == 201, reply.text
        assert (
            await http.patch(f"/api/v1/conversations/{conversation_id}", json={"status": "resolved"})
        ).status_code == 200
    period = {"from": iso(utcnow() - timedelta(days=1)) or "", "to": iso(utcnow() + timedelta(days=1)) or ""}
    before = await summary(world, period)
    assert before["conversations"]["created"] == 1 and before["conversations"]["resolved"] == 1
    assert before["messages"]["incoming"] == 1 and before["messages"]["outgoing"] == 1

    async with world.client("admin") as http:
        exported = await http.get(f"/api/v1/contacts/{delivered.contact_id}/export")
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/zip"
    assert "attachment" in exported.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(exported.content))
    document = json.loads(archive.read("contact.json"))
    assert document["contact"]["name"] == "Carol Customer"
    assert [identity["value"] for identity in document["contact"]["identities"]] == [f"{world.support_id}:carol"]
    [thread] = document["conversations"]
    bodies = [message["body"] for message in thread["messages"]]
    assert "My card number is 4111 and my address is Elm St 5" in bodies and "Here is your invoice" in bodies
    [name] = document["attachments"]
    assert name.endswith("invoice.pdf") and archive.read(name) == PDF

    recorder = Recorder()
    world.server.state.broker.subscribe(recorder.on_event, recorder.on_ephemeral)
    async with world.store.session() as session:
        [storage_name] = (await session.execute(select(Attachment.storage_name))).scalars()
    blob = world.server.state.blobs.path(storage_name)
    assert blob.exists()
    async with world.client("admin") as http:
        erased = await http.post(f"/api/v1/contacts/{delivered.contact_id}/erase")
    assert erased.status_code == 200, erased.text
    assert erased.json() == {"id": delivered.contact_id, "conversation_ids": [conversation_id]}

    assert await summary(world, period) == before  # aggregates are kept
    assert "contact.erased" in recorder.types()
    assert not blob.exists()
    async with world.store.session() as session:
        contact = await session.get(Contact, delivered.contact_id)
        assert contact is not None
        assert (contact.name, contact.email, contact.phone, contact.attributes) == ("", None, None, {})
        identities = (
            await session.execute(select(Identity).where(col(Identity.contact_id) == delivered.contact_id))
        ).all()
        assert identities == []
        messages = list(
            (await session.execute(select(Message).where(col(Message.conversation_id) == conversation_id))).scalars()
        )
        assert messages and all(message.body == "" and message.html is None for message in messages)
        assert (await session.execute(select(Attachment))).first() is None
        conversation = await session.get(Conversation, conversation_id)
        assert conversation is not None and conversation.status == "resolved" and conversation.subject is None
    async with world.client("admin") as http:
        again = await http.get(f"/api/v1/contacts/{delivered.contact_id}/export")
        assert (
            "4111" not in again.text
            and "Carol" not in zipfile.ZipFile(io.BytesIO(again.content)).read("contact.json").decode()
        )
        assert (await http.get(f"/api/v1/attachments/{attachment_id}")).status_code == 404
        assert (await http.post("/api/v1/contacts/999999/erase")).status_code == 404
        assert (await http.get("/api/v1/contacts/999999/export")).status_code == 404

    returning = await world.deliver(external_id="m-again", sender="carol", text="Hello again")
    assert returning.contact_id != delivered.contact_id
    assert returning.conversation_id != conversation_id


async def old_and_new(service: InboxService) -> list[int]:
    """Four conversations: resolved 40 days ago (two), resolved today, open; answers their ids."""
    inbox = await make_inbox(service.store)
    ids = []
    for n in range(4):
        delivered = await service.deliver(inbound(inbox, f"m{n}", sender=f"s{n}", text=f"secret {n}"))
        ids.append(delivered.conversation_id)
    for conversation_id in ids[:3]:
        await service.update_conversation(conversation_id, ConversationChanges(status="resolved"), by=None)
    async with service.store.transaction() as tx:
        await tx.execute(
            update(Conversation)
            .where(col(Conversation.id).in_(ids[:2]))
            .values(resolved_at=utcnow() - timedelta(days=40))
        )
    return ids


async def bodies(service: InboxService, conversation_id: int) -> list[str]:
    async with service.store.session() as session:
        query = select(Message.body).where(
            col(Message.conversation_id) == conversation_id, col(Message.kind) == "incoming"
        )
        return list((await session.execute(query)).scalars())


async def test_retention_erases_only_resolved_conversations_past_the_period(service: InboxService) -> None:
    ids = await old_and_new(service)
    assert await erase_due(service, PrivacyConfig(erase_resolved_after_days=0)) == 0  # off
    assert await bodies(service, ids[0]) == ["secret 0"]
    assert await erase_due(service, PrivacyConfig(erase_resolved_after_days=30)) == 2
    assert await bodies(service, ids[0]) == [""] and await bodies(service, ids[1]) == [""]
    assert await bodies(service, ids[2]) == ["secret 2"] and await bodies(service, ids[3]) == ["secret 3"]
    assert await erase_due(service, PrivacyConfig(erase_resolved_after_days=30)) == 0  # done once


async def test_the_app_runs_retention_under_one_cluster_lease(db_url: str, tmp_path: Path) -> None:
    config = make_config(db_url, tmp_path)
    config = dataclasses.replace(config, privacy=PrivacyConfig(erase_resolved_after_days=30, interval_seconds=0.2))
    async with live_server(config) as server:
        ids = await old_and_new(server.state.service)
        deadline = asyncio.get_running_loop().time() + 10
        while await bodies(server.state.service, ids[0]) != [""]:
            assert asyncio.get_running_loop().time() < deadline, "retention did not run"
            await asyncio.sleep(0.1)
        assert await server.state.leases.holder("timer:privacy") == server.state.leases.owner
        assert await bodies(server.state.service, ids[2]) == ["secret 2"]
