"""The Telegram channel end to end: the real app under uvicorn, the fake Bot API on loopback, the agent stream.

Both receive modes (webhook and long polling) run through the real app on SQLite and PostgreSQL; the
edge cases of the issue each have a test: a replayed update_id (also across a mode switch), a wrong
secret, a 429 storm, a blocked bot, a 400, edits, typing, long messages and attachments.
"""

from __future__ import annotations

import copy
from pathlib import Path

import httpx
from sqlmodel import col, select

from inbox.config import ChannelsConfig, TelegramConfig
from inbox.store.models import Attachment, Cursor, Inbox
from tests.servers.app import LiveServer, live_server, make_config
from tests.servers.telegram import FakeTelegram
from tests.telegram.support import (
    CAROL,
    Stream,
    admin,
    bot_inbox,
    contact_attributes,
    conversation,
    count,
    created,
    eventually,
    messages,
    open_stream,
    returns,
    update,
)


async def test_polling_end_to_end_through_the_agent_stream(app: LiveServer, fake: FakeTelegram) -> None:
    store = app.state.store
    agent, token = await admin(store)
    fake.add_file("photo-large", b"\x89PNG large photo", "photos/file_1.jpg")
    inbox = await bot_inbox(app, "polling")
    async with await open_stream(app, token) as ws:
        stream = Stream(ws)
        for name in ("text", "start", "photo"):  # in update_id order, as Telegram hands them out
            await fake.enqueue(update(name))
        first = await stream.until(created("Hi, my order #123 has not arrived"))
        await stream.until(created("/start campaign-42"))
        photo = await stream.until(created("This is what arrived"))
        assert [a["filename"] for a in photo["data"]["attachments"]] == ["photo_111222333_13.jpg"]
        assert first["data"]["conversation"]["inbox_id"] == inbox.id
        conversation_id = first["data"]["conversation_id"]
        assert photo["data"]["conversation_id"] == conversation_id  # one conversation per private chat
        reply, _ = await app.state.service.reply(
            conversation_id, by=agent, body="Sorry! **Checking** now", client_id=None
        )
        sent = await stream.until(lambda f: f.get("type") == "message.updated" and f["data"]["id"] == reply["id"])
        assert sent["data"]["status"] == "sent"
    (call,) = fake.called("sendMessage", ok=True)
    assert call.params["chat_id"] == CAROL and call.params["text"] == "Sorry! Checking now"
    assert call.params["entities"] == [{"type": "bold", "offset": 7, "length": 8}]
    assert fake.downloads == ["photos/file_1.jpg"]
    attributes = await contact_attributes(store)
    assert attributes == {"telegram_username": "carolc", "telegram_start_payload": "campaign-42"}
    async with store.session() as session:
        cursor = (await session.execute(select(Cursor).where(col(Cursor.key).like("telegram:%")))).scalar_one()
    assert cursor.value == "500003"
    # Telegram is told the offset after the last update (which confirms them all).
    await eventually(lambda: returns(any(c.params.get("offset") == 500004 for c in fake.called("getUpdates"))))


async def test_webhook_end_to_end_and_replayed_update_stored_once(app: LiveServer, fake: FakeTelegram) -> None:
    store = app.state.store
    agent, token = await admin(store)
    inbox = await bot_inbox(app, "webhook")
    await eventually(lambda: returns(fake.webhook))
    assert fake.webhook is not None
    assert fake.webhook["url"] == f"{app.url}/channels/telegram/{inbox.id}"
    assert len(fake.webhook["secret_token"]) >= 32 and fake.webhook["allowed_updates"] == [
        "message",
        "edited_message",
        "my_chat_member",
    ]
    async with await open_stream(app, token) as ws:
        stream = Stream(ws)
        response = await fake.push(update("text"))
        assert response.status_code == 200 and response.json()["outcome"] == "delivered"
        # Answered only after it was stored: the message is in the database already.
        assert [m.body for m in await messages(store)] == ["Hi, my order #123 has not arrived"]
        frame = await stream.until(created("Hi, my order #123 has not arrived"))
        replay = await fake.push(update("text"))
        assert replay.status_code == 200 and replay.json()["outcome"] == "duplicate"
        reply, _ = await app.state.service.reply(
            frame["data"]["conversation_id"], by=agent, body="On it", client_id=None
        )
        await stream.until(lambda f: f.get("type") == "message.updated" and f["data"]["id"] == reply["id"])
    assert len(await messages(store)) == 2
    assert [c.params["text"] for c in fake.called("sendMessage", ok=True)] == ["On it"]


async def test_webhook_with_missing_or_wrong_secret_is_refused(app: LiveServer, fake: FakeTelegram) -> None:
    inbox = await bot_inbox(app, "webhook")
    await eventually(lambda: returns(fake.webhook))
    wrong = await fake.push(update("text"), secret="not-the-secret")
    assert wrong.status_code == 401 and "Secret-Token" in wrong.json()["error"]["detail"]
    async with httpx.AsyncClient() as http:
        missing = await http.post(f"{app.url}/channels/telegram/{inbox.id}", json=update("text"))
        assert missing.status_code == 401
        unknown = await http.post(f"{app.url}/channels/telegram/999999", json=update("text"))
        assert unknown.status_code == 404
        assert fake.webhook is not None
        malformed = await http.post(
            fake.webhook["url"],
            content=b"{not json",
            headers={"X-Telegram-Bot-Api-Secret-Token": fake.webhook["secret_token"]},
        )
        assert malformed.status_code == 400 and "malformed JSON" in malformed.json()["error"]["detail"]
        # From Telegram but unreadable: logged and skipped with 200, so Telegram does not stall the queue on it.
        unreadable = await fake.push({"update_id": 700001, "message": {"message_id": 5, "text": "x"}})
        assert unreadable.status_code == 200 and unreadable.json()["outcome"] == "skipped"
    assert await messages(app.state.store) == []


async def test_replay_across_a_switch_from_webhook_to_polling_is_processed_once(
    app: LiveServer, fake: FakeTelegram
) -> None:
    store = app.state.store
    fake.add_file("doc-1", b"%PDF-1.4 invoice", "documents/file_2.pdf")
    inbox = await bot_inbox(app, "webhook")
    await eventually(lambda: returns(fake.webhook))
    assert (await fake.push(update("document"))).status_code == 200
    # The inbox switches to polling; Telegram still holds the same update (never confirmed by offset).
    async with store.transaction() as tx:
        row = await tx.get(Inbox, inbox.id)
        assert row is not None
        row.settings = {**row.settings, "mode": "polling"}
    app.state.runners.wake()
    await fake.enqueue(update("document"))
    await fake.enqueue(update("text", update_id=500100))
    await eventually(lambda: count(store, 2))
    await eventually(lambda: returns(any(c.params.get("offset") == 500101 for c in fake.called("getUpdates"))))
    stored = await messages(store)
    assert [m.body for m in stored] == ["[Document: invoice.pdf]", "Hi, my order #123 has not arrived"]
    assert fake.downloads == ["documents/file_2.pdf"]  # each file fetched once
    assert len(fake.called("getFile")) == 1
    async with store.session() as session:
        (attachment,) = list((await session.execute(select(Attachment))).scalars())
    assert attachment.filename == "invoice.pdf" and attachment.size == len(b"%PDF-1.4 invoice")


async def test_edited_message_updates_the_stored_message(app: LiveServer, fake: FakeTelegram) -> None:
    await conversation(app, fake)
    response = await fake.push(update("edited"))
    assert response.status_code == 200 and response.json()["outcome"] == "edited"
    (stored,) = await messages(app.state.store)
    assert stored.body == "Hi, my order #124 has not arrived"
    assert stored.meta["edited_at"].startswith("2025-11-22")


async def test_group_chat_is_one_conversation_with_sender_names(app: LiveServer, fake: FakeTelegram) -> None:
    await bot_inbox(app, "webhook", groups=True)
    await eventually(lambda: returns(fake.webhook))
    first = update("group")
    second = copy.deepcopy(first)
    second["update_id"] += 1
    second["message"]["message_id"] += 1
    second["message"]["from"] = {"id": 321, "is_bot": False, "first_name": "Frank", "last_name": "Friend"}
    second["message"]["text"] = "Yes, since noon"
    assert (await fake.push(first)).status_code == 200
    assert (await fake.push(second)).status_code == 200
    a, b = await messages(app.state.store)
    assert a.conversation_id == b.conversation_id
    assert (a.sender_name, b.sender_name) == ("Erin", "Frank Friend")


async def test_polling_skips_an_unreadable_update_and_keeps_going(app: LiveServer, fake: FakeTelegram) -> None:
    await bot_inbox(app, "polling")
    await fake.enqueue(update("text", update_id=600001))
    await eventually(lambda: count(app.state.store, 1))
    # Not a Message at all (no chat, no date): python-telegram-bot cannot read it.
    await fake.enqueue({"update_id": 600002, "message": {"message_id": 99, "text": "broken"}})
    await fake.enqueue(update("start", update_id=600003))
    await eventually(lambda: count(app.state.store, 2))
    assert [m.body for m in await messages(app.state.store)] == [
        "Hi, my order #123 has not arrived",
        "/start campaign-42",
    ]
    await eventually(lambda: returns(any(c.params.get("offset") == 600004 for c in fake.called("getUpdates"))))


async def test_webhook_answers_503_until_the_update_is_stored_then_stores_it_once(
    app: LiveServer, fake: FakeTelegram
) -> None:
    await bot_inbox(app, "webhook")
    await eventually(lambda: returns(fake.webhook))
    fake.add_file("voice-1", b"OggS voice", "voice/file_3.oga")
    fake.fail("getFile", 502, "Bad Gateway")
    failed = await fake.push(update("voice"))
    assert failed.status_code == 503  # Telegram keeps the update and sends it again
    assert await messages(app.state.store) == []
    again = await fake.push(update("voice"))
    assert again.status_code == 200 and again.json()["outcome"] == "delivered"
    (stored,) = await messages(app.state.store)
    assert stored.body == "[Voice message, 0:07]"
    assert fake.downloads == ["voice/file_3.oga"]


async def test_a_file_telegram_refuses_is_noted_and_the_message_kept(app: LiveServer, fake: FakeTelegram) -> None:
    await bot_inbox(app, "webhook")
    await eventually(lambda: returns(fake.webhook))
    fake.fail("getFile", 400, "Bad Request: file is too big")
    assert (await fake.push(update("video"))).status_code == 200
    (stored,) = await messages(app.state.store)
    assert stored.body == "unboxing\n[unboxing.mp4 could not be downloaded: File is too big]"


async def test_polling_receiver_restarts_after_failures(app: LiveServer, fake: FakeTelegram) -> None:
    fake.fail("getUpdates", 502, "Bad Gateway", times=2)
    await fake.enqueue(update("text"))
    await bot_inbox(app, "polling")
    await eventually(lambda: count(app.state.store, 1))
    assert [c.status for c in fake.called("getUpdates")][:3] == [502, 502, 200]


async def test_updates_are_not_processed_again_after_a_restart(db_url: str, tmp_path: Path, fake: FakeTelegram) -> None:
    config = make_config(
        db_url,
        tmp_path,
        telegram=TelegramConfig(
            api_base_url=fake.api_base_url, file_base_url=fake.file_base_url, poll_timeout_seconds=1
        ),
        channels=ChannelsConfig(refresh_seconds=0.1, restart_backoff_max_seconds=0.5),
    )
    fake.add_file("photo-large", b"photo", "photos/file_9.jpg")
    async with live_server(config) as first:
        await bot_inbox(first, "polling")
        await fake.enqueue(update("photo"))
        await eventually(lambda: count(first.state.store, 1))
    # Telegram never heard the offset confirming 500003 (the process stopped first): it hands it out again.
    fake.updates[:] = [update("photo"), update("edited", update_id=500004)]
    async with live_server(config) as second:
        second.state.runners.wake()
        await eventually(lambda: returns(any(c.params.get("offset") == 500005 for c in fake.called("getUpdates"))))
        stored = await messages(second.state.store)
    assert [m.body for m in stored] == ["This is what arrived", "Hi, my order #124 has not arrived"]
    assert fake.downloads == ["photos/file_9.jpg"]


async def test_blocking_the_bot_marks_the_contact_unreachable_until_they_return(
    app: LiveServer, fake: FakeTelegram
) -> None:
    await conversation(app, fake)
    blocked = await fake.push(update("blocked"))
    assert blocked.status_code == 200 and blocked.json()["outcome"] == "reachability"
    assert (await contact_attributes(app.state.store))["telegram_unreachable"] == "the customer blocked the bot"
    restarted = update("blocked", update_id=500015)
    restarted["my_chat_member"]["old_chat_member"] = restarted["my_chat_member"]["new_chat_member"]
    restarted["my_chat_member"]["new_chat_member"] = {
        "user": restarted["my_chat_member"]["old_chat_member"]["user"],
        "status": "member",
    }
    assert (await fake.push(restarted)).status_code == 200
    assert "telegram_unreachable" not in await contact_attributes(app.state.store)
    assert len(await messages(app.state.store)) == 1  # membership changes are not messages
