"""Out-of-order updates lose nothing: the message's (chat id, message id) is the dedupe key, the update
offset only a resume point. Forwarded messages say who they came from. Names arrive clean.

Through the real app and the fake Bot API, like tests/telegram/test_channel.py.
"""

from __future__ import annotations

import copy
from typing import Any

from sqlmodel import col, select

from inbox.store.models import Cursor
from tests.servers.app import LiveServer
from tests.servers.telegram import FakeTelegram
from tests.telegram.support import bot_inbox, contact_attributes, eventually, messages, returns, update


def later(name: str, update_id: int, message_id: int, text: str) -> dict[str, Any]:
    data = update(name, update_id=update_id)
    data["message"]["message_id"] = message_id
    data["message"]["text"] = text
    return data


async def cursor(app: LiveServer) -> str:
    async with app.state.store.session() as session:
        found = await session.execute(select(Cursor).where(col(Cursor.key).like("telegram:%:last_update_id")))
        return found.scalar_one().value


async def webhook_inbox(app: LiveServer, fake: FakeTelegram) -> None:
    await bot_inbox(app, "webhook")
    await eventually(lambda: returns(fake.webhook))


async def test_an_older_update_after_a_newer_one_is_stored(app: LiveServer, fake: FakeTelegram) -> None:
    await webhook_inbox(app, fake)
    newer = await fake.push(later("text", 500002, 12, "second"))
    older = await fake.push(later("text", 500001, 11, "first"))
    assert newer.json()["outcome"] == "delivered"
    assert older.status_code == 200 and older.json()["outcome"] == "delivered"
    assert sorted(m.body for m in await messages(app.state.store)) == ["first", "second"]
    assert {m.external_id for m in await messages(app.state.store)} == {"111222333:11", "111222333:12"}
    assert await cursor(app) == "500002"  # the resume point stays at the newest update handled


async def test_a_replay_in_any_order_is_stored_once_and_not_downloaded_again(
    app: LiveServer, fake: FakeTelegram
) -> None:
    await webhook_inbox(app, fake)
    fake.add_file("photo-large", b"\x89PNG large photo", "photos/file_1.jpg")
    assert (await fake.push(update("photo"))).json()["outcome"] == "delivered"
    assert (await fake.push(later("text", 500009, 40, "newer"))).json()["outcome"] == "delivered"
    replay = await fake.push(update("photo"))  # older than the cursor and already stored
    assert replay.status_code == 200 and replay.json()["outcome"] == "duplicate"
    same_message_new_update = update("photo", update_id=500010)  # e.g. a local Bot API server re-numbering
    assert (await fake.push(same_message_new_update)).json()["outcome"] == "duplicate"
    assert len(await messages(app.state.store)) == 2
    assert fake.downloads == ["photos/file_1.jpg"]


async def test_an_edit_arriving_before_its_message_keeps_the_edited_text(app: LiveServer, fake: FakeTelegram) -> None:
    await webhook_inbox(app, fake)
    assert (await fake.push(update("edited"))).json()["outcome"] == "edited"  # the original is still on its way
    late = await fake.push(update("text"))
    assert late.status_code == 200 and late.json()["outcome"] == "duplicate"
    (stored,) = await messages(app.state.store)
    assert stored.body == "Hi, my order #124 has not arrived"


async def test_an_older_membership_change_does_not_undo_a_newer_one(app: LiveServer, fake: FakeTelegram) -> None:
    await webhook_inbox(app, fake)
    assert (await fake.push(update("text"))).status_code == 200
    blocked = update("blocked", update_id=500020)
    restarted = copy.deepcopy(blocked)
    restarted["update_id"] = 500021
    restarted["my_chat_member"]["old_chat_member"] = blocked["my_chat_member"]["new_chat_member"]
    restarted["my_chat_member"]["new_chat_member"] = {
        "user": blocked["my_chat_member"]["new_chat_member"]["user"],
        "status": "member",
    }
    assert (await fake.push(restarted)).json()["outcome"] == "reachability"
    assert (await fake.push(blocked)).json()["outcome"] == "stale"
    assert "telegram_unreachable" not in await contact_attributes(app.state.store)


FORWARDS: list[tuple[dict[str, Any], str, dict[str, Any]]] = [
    (
        {"type": "user", "date": 1763700000, "sender_user": {"id": 42, "is_bot": False, "first_name": "Ann", "last_name": "Lee", "username": "annlee"}},
        "Ann Lee",
        {"type": "user", "user_id": 42, "username": "annlee"},
    ),
    ({"type": "hidden_user", "date": 1763700000, "sender_user_name": "Bob Hidden"}, "Bob Hidden", {"type": "hidden_user"}),
    (
        {"type": "channel", "date": 1763700000, "chat": {"id": -1001, "type": "channel", "title": "Shop News", "username": "shopnews"}, "message_id": 77, "author_signature": "Dana"},
        "Shop News (Dana)",
        {"type": "channel", "chat_id": -1001, "message_id": 77, "username": "shopnews"},
    ),
    (
        {"type": "chat", "date": 1763700000, "sender_chat": {"id": -2002, "type": "supergroup", "title": "Buyers"}},
        "Buyers",
        {"type": "chat", "chat_id": -2002},
    ),
    (
        {"type": "hidden_user", "date": 1763700000, "sender_user_name": "Eve\r\n\u202eevE"},
        "Eve \u202eevE\u202c",
        {"type": "hidden_user"},
    ),
]  # fmt: skip


async def test_a_forwarded_message_says_who_it_came_from(app: LiveServer, fake: FakeTelegram) -> None:
    await webhook_inbox(app, fake)
    for index, (origin, _, _) in enumerate(FORWARDS):
        data = later("text", 500100 + index, 100 + index, "Look what they sent me")
        data["message"]["forward_origin"] = origin
        assert (await fake.push(data)).json()["outcome"] == "delivered"
    stored = await messages(app.state.store)
    assert len(stored) == len(FORWARDS)
    for message, (_, name, facts) in zip(stored, FORWARDS, strict=True):
        assert message.body == f"Forwarded from {name}\nLook what they sent me"
        kept = message.meta["telegram"]["forwarded_from"]
        assert kept["name"] == name and kept["date"].startswith("2025-11-21")
        assert facts.items() <= kept.items()


async def test_telegram_names_arrive_without_control_characters(app: LiveServer, fake: FakeTelegram) -> None:
    await webhook_inbox(app, fake)
    data = update("text")
    data["message"]["from"]["first_name"] = "Carol\r\nBcc:"
    data["message"]["from"]["last_name"] = "\u202egpj.exe\x00"
    assert (await fake.push(data)).status_code == 200
    (stored,) = await messages(app.state.store)
    assert stored.sender_name == "Carol Bcc: \u202egpj.exe\u202c"
