"""Telegram replies end to end: Markdown, splitting, attachments, typing, and Telegram's errors (429, 403, 400)."""

from __future__ import annotations

import itertools
import json

import httpx

from inbox.store.models import Attachment
from tests.factories import make_agent
from tests.servers.app import LiveServer
from tests.servers.telegram import FakeTelegram
from tests.telegram.support import (
    CAROL,
    admin,
    contact_attributes,
    conversation,
    eventually,
    messages,
    open_stream,
    returns,
    status,
    update,
)


async def test_429_storm_is_retried_after_the_given_seconds_and_sent_once(app: LiveServer, fake: FakeTelegram) -> None:
    conversation_id = await conversation(app, fake)
    agent = await make_agent(app.state.store, role="admin")
    fake.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1, times=3)
    reply, _ = await app.state.service.reply(conversation_id, by=agent, body="Hello again", client_id=None)
    sent = await eventually(lambda: status(app.state.store, reply["id"], "sent"))
    assert sent.error is None
    attempts = fake.called("sendMessage")
    assert [c.status for c in attempts] == [429, 429, 429, 200]
    for before, after in itertools.pairwise(attempts):
        assert after.at - before.at >= 0.9  # never sooner than Telegram's retry_after
    assert len(await messages(app.state.store)) == 2


async def test_blocked_bot_fails_with_reason_and_marks_the_contact_unreachable(
    app: LiveServer, fake: FakeTelegram
) -> None:
    conversation_id = await conversation(app, fake)
    agent = await make_agent(app.state.store, role="admin")
    fake.blocked.add(CAROL)
    reply, _ = await app.state.service.reply(conversation_id, by=agent, body="Are you there?", client_id=None)
    failed = await eventually(lambda: status(app.state.store, reply["id"], "failed"))
    assert "bot was blocked by the user" in (failed.error or "")
    assert len(fake.called("sendMessage")) == 1  # permanent: not retried
    attributes = await contact_attributes(app.state.store)
    assert "blocked the bot" in attributes["telegram_unreachable"]
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{app.url}/metrics")).text
    assert 'switchboard_channel_last_error_timestamp_seconds{channel="telegram"' in metrics
    # The customer unblocks the bot and writes again: reachable again.
    fake.blocked.clear()
    assert (await fake.push(update("start", update_id=500200))).status_code == 200
    assert "telegram_unreachable" not in await contact_attributes(app.state.store)


async def test_bad_request_fails_with_telegrams_own_text(app: LiveServer, fake: FakeTelegram) -> None:
    conversation_id = await conversation(app, fake)
    agent = await make_agent(app.state.store, role="admin")
    fake.fail("sendMessage", 400, "Bad Request: chat not found")
    reply, _ = await app.state.service.reply(conversation_id, by=agent, body="Hi", client_id=None)
    failed = await eventually(lambda: status(app.state.store, reply["id"], "failed"))
    assert failed.error == "Telegram rejected the message: Chat not found"


async def test_long_replies_are_split_and_attachments_sent(app: LiveServer, fake: FakeTelegram) -> None:
    conversation_id = await conversation(app, fake)
    store = app.state.store
    agent = await make_agent(store, role="admin")
    photo = await app.state.blobs.save(b"\xff\xd8\xff photo bytes")
    report = await app.state.blobs.save(b"report body")
    async with store.transaction() as tx:
        rows = [
            Attachment(
                uploaded_by=agent.id,
                filename="shot.jpg",
                content_type="image/jpeg",
                size=photo.size,
                sha256=photo.sha256,
                storage_name=photo.storage_name,
            ),
            Attachment(
                uploaded_by=agent.id,
                filename="report.txt",
                content_type="text/plain",
                size=report.size,
                sha256=report.sha256,
                storage_name=report.storage_name,
            ),
        ]
        tx.add_all(rows)
        await tx.flush()
        ids = [row.id for row in rows]
    body = ("lorem ipsum " * 400).strip()  # 4799 characters
    reply, _ = await app.state.service.reply(conversation_id, by=agent, body=body, client_id=None, attachment_ids=ids)
    await eventually(lambda: status(store, reply["id"], "sent"))
    texts = [c.params["text"] for c in fake.called("sendMessage", ok=True)]
    assert len(texts) == 2 and all(len(t) <= 4096 for t in texts)
    assert " ".join(texts) == body
    (sent_photo,) = fake.called("sendPhoto", ok=True)
    assert sent_photo.params["photo"] == b"\xff\xd8\xff photo bytes"
    (sent_doc,) = fake.called("sendDocument", ok=True)
    assert sent_doc.params["document"] == b"report body" and sent_doc.params["_filename"] == "report.txt"


async def test_agent_typing_shows_the_typing_chat_action(app: LiveServer, fake: FakeTelegram) -> None:
    conversation_id = await conversation(app, fake)
    _, token = await admin(app.state.store)
    async with await open_stream(app, token) as ws:
        await ws.send(json.dumps({"type": "typing", "conversation_id": conversation_id, "active": True}))
        await eventually(lambda: returns(fake.called("sendChatAction", ok=True)))
    (action,) = fake.called("sendChatAction")
    assert action.params == {"chat_id": CAROL, "action": "typing"}


async def test_a_missing_attachment_file_fails_the_reply_with_a_reason(app: LiveServer, fake: FakeTelegram) -> None:
    conversation_id = await conversation(app, fake)
    store = app.state.store
    agent = await make_agent(store, role="admin")
    blob = await app.state.blobs.save(b"gone soon")
    async with store.transaction() as tx:
        row = Attachment(
            uploaded_by=agent.id,
            filename="gone.pdf",
            content_type="application/pdf",
            size=blob.size,
            sha256=blob.sha256,
            storage_name=blob.storage_name,
        )
        tx.add(row)
        await tx.flush()
        attachment_id = row.id
    app.state.blobs.path(blob.storage_name).unlink()
    reply, _ = await app.state.service.reply(
        conversation_id, by=agent, body="", client_id=None, attachment_ids=[attachment_id]
    )
    failed = await eventually(lambda: status(store, reply["id"], "failed"))
    assert (failed.error or "").startswith("attachment could not be read")
    assert fake.called("sendDocument") == []
