"""Loose ends: stale unattached uploads are removed (row and file, by one process's timer), API tokens record
when they were last used (at most once a minute), and a renamed label reaches connected agents as an event."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import update
from sqlmodel import col, select

from inbox.clock import utcnow
from inbox.config import StorageConfig
from inbox.service import InboxService
from inbox.store.models import ApiToken, Attachment, Cursor
from tests.factories import add_member, inbound, make_agent, make_inbox, make_label, make_token
from tests.poll import eventually
from tests.servers.app import LiveServer, live_server, make_config
from tests.webchat_client import agent_stream


async def upload(service: InboxService, agent: object, data: bytes, *, age: timedelta) -> tuple[int, Path]:
    blob = await service.blobs.save(data)
    view = await service.add_upload(by=agent, filename="f.txt", content_type="text/plain", blob=blob)  # type: ignore[arg-type]
    async with service.store.transaction() as tx:
        await tx.execute(update(Attachment).where(col(Attachment.id) == view["id"]).values(created_at=utcnow() - age))
    return int(view["id"]), service.blobs.path(blob.storage_name)


async def test_stale_unattached_uploads_are_removed_with_their_files(service: InboxService) -> None:
    agent = await make_agent(service.store, role="admin")
    inbox = await make_inbox(service.store)
    delivered = await service.deliver(inbound(inbox))
    _, stale_file = await upload(service, agent, b"stale", age=timedelta(hours=30))
    fresh_id, fresh_file = await upload(service, agent, b"fresh", age=timedelta(hours=1))
    sent_id, sent_file = await upload(service, agent, b"sent", age=timedelta(hours=30))
    await service.reply(delivered.conversation_id, by=agent, body="see file", client_id=None, attachment_ids=[sent_id])

    assert await service.remove_unattached_uploads(timedelta(hours=24)) == 1
    async with service.store.session() as session:
        left = set((await session.execute(select(Attachment.id))).scalars())
    assert left == {fresh_id, sent_id}
    assert not stale_file.exists() and fresh_file.exists() and sent_file.exists()
    assert await service.remove_unattached_uploads(timedelta(hours=24)) == 0


async def test_the_cleanup_timer_runs_under_a_cluster_lease(db_url: str, tmp_path: Path) -> None:
    config = make_config(db_url, tmp_path)
    config = dataclasses.replace(
        config, storage=StorageConfig(directory=str(tmp_path / "files"), cleanup_interval_seconds=0.05)
    )
    async with live_server(config) as server:
        service: InboxService = server.state.service
        agent = await make_agent(service.store)
        _, stale_file = await upload(service, agent, b"stale", age=timedelta(hours=25))
        fresh_id, _ = await upload(service, agent, b"fresh", age=timedelta(hours=23))

        async def cleaned() -> bool:
            async with service.store.session() as session:
                ids = set((await session.execute(select(Attachment.id))).scalars())
                lease = await session.get(Cursor, "lease:timer:uploads")
            return ids == {fresh_id} and not stale_file.exists() and lease is not None

        await eventually(cleaned, what="the stale upload was removed by the leased timer")


async def test_token_last_used_at_is_recorded_at_most_once_a_minute(server: LiveServer) -> None:
    store = server.state.store
    agent = await make_agent(store)
    token = await make_token(store, agent)

    async def last_used() -> object:
        async with store.session() as session:
            return (await session.execute(select(ApiToken.last_used_at))).scalar_one()

    assert await last_used() is None
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http:
        assert (await http.get("/api/v1/me")).status_code == 200
        first = await last_used()
        assert first is not None and abs((utcnow() - first).total_seconds()) < 60  # type: ignore[operator]
        assert (await http.get("/api/v1/me")).status_code == 200
        assert await last_used() == first  # throttled: no second write
        earlier = utcnow() - timedelta(minutes=2)
        async with store.transaction() as tx:
            await tx.execute(update(ApiToken).values(last_used_at=earlier))
        assert (await http.get("/api/v1/me")).status_code == 200
        later = await last_used()
        assert later is not None and later > earlier  # type: ignore[operator]
        listed = (await http.get("/api/v1/tokens")).json()
    [row] = listed["items"] if isinstance(listed, dict) else listed
    assert row["last_used_at"] is not None


async def test_renaming_a_label_reaches_connected_agents(server: LiveServer) -> None:
    store = server.state.store
    admin = await make_agent(store, email="admin@example.test", role="admin")
    agent = await make_agent(store, email="agent@example.test")
    await add_member(store, await make_inbox(store), agent)
    label = await make_label(store, "billing")
    await make_label(store, "shipping")
    admin_token, agent_token = await make_token(store, admin), await make_token(store, agent)
    async with (
        httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {admin_token}"}) as http,
        agent_stream(server, agent_token) as stream,
    ):
        clash = await http.patch(f"/api/v1/labels/{label.id}", json={"name": "shipping"})
        assert clash.status_code == 409
        same = await http.patch(f"/api/v1/labels/{label.id}", json={"name": "billing"})
        assert same.status_code == 200
        await stream.nothing(lambda frame: frame.get("type") == "label.updated")
        renamed = await http.patch(f"/api/v1/labels/{label.id}", json={"name": "invoices"})
        assert renamed.status_code == 200
        frame = await stream.expect_type("label.updated")
    assert frame["data"] == {
        "id": label.id,
        "name": "invoices",
        "color": "#6b7280",
        "description": "",
        "previous_name": "billing",
    }
    assert isinstance(frame["id"], int)  # a stored event: replayed to agents who reconnect
