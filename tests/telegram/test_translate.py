"""Telegram's pure parts, table-driven: updates → Inbound/Edit, Markdown → entities, splitting, settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from telegram import MessageEntity, Update

from channels.base import Edit, IdentityKind, Inbound, InboxInfo
from channels.telegram.markdown import split, to_entities, utf16_len
from channels.telegram.settings import Mode, SettingsError, inbox_settings
from channels.telegram.updates import files_in, inbound_from_update, reachability

DATA = Path(__file__).parent.parent / "data" / "telegram"
CAROL = "111222333"


def load(name: str) -> Update:
    return Update.de_json(json.loads((DATA / f"{name}.json").read_text()), None)


# name, expected text, files as (filename, content type), metadata checks
CASES: list[tuple[str, str, list[tuple[str, str]], dict[str, Any]]] = [
    ("text", "Hi, my order #123 has not arrived", [], {}),
    ("start", "/start campaign-42", [], {"start_payload": "campaign-42"}),
    ("photo", "This is what arrived", [("photo_111222333_13.jpg", "image/jpeg")], {"kind": "photo"}),
    ("document", "[Document: invoice.pdf]", [("invoice.pdf", "application/pdf")], {"kind": "document"}),
    ("voice", "[Voice message, 0:07]", [("voice_111222333_15.ogg", "audio/ogg")], {"kind": "voice"}),
    ("video", "unboxing", [("unboxing.mp4", "video/mp4")], {"kind": "video"}),
    ("sticker", "[Sticker 👍]", [("sticker_111222333_17.webp", "image/webp")], {"kind": "sticker"}),
    (
        "location",
        "[Location] 52.520008, 13.404954\nhttps://www.openstreetmap.org/?mlat=52.520008&mlon=13.404954#map=16/52.520008/13.404954",
        [],
        {"kind": "location", "latitude": 52.520008},
    ),
    ("contact", "[Contact] Dan Driver: +4930123456", [], {"kind": "contact", "user_id": 444555666}),
]


@pytest.mark.parametrize(("name", "text", "files", "meta"), CASES, ids=[case[0] for case in CASES])
def test_private_messages_become_inbound(
    name: str, text: str, files: list[tuple[str, str]], meta: dict[str, Any]
) -> None:
    update = load(name)
    result = inbound_from_update(7, update)
    assert isinstance(result, Inbound)
    assert result.inbox_id == 7 and result.thread_key == CAROL
    assert result.external_id == f"{CAROL}:{update.message.message_id}"  # type: ignore[union-attr]
    assert result.sender.kind == IdentityKind.TELEGRAM and result.sender.value == CAROL
    assert result.sender.name == "Carol Customer"
    assert result.text == text
    assert [(f.filename, f.content_type) for f in files_in(update.message)] == files  # type: ignore[arg-type]
    telegram = result.metadata["telegram"]
    assert telegram["username"] == "carolc"
    for key, value in meta.items():
        assert (result.metadata if key == "start_payload" else telegram)[key] == value


def test_photo_takes_the_largest_size() -> None:
    (ref,) = files_in(load("photo").message)  # type: ignore[arg-type]
    assert ref.file_id == "photo-large"


def test_edit_targets_the_original_message() -> None:
    result = inbound_from_update(7, load("edited"))
    assert isinstance(result, Edit)
    assert result.inbound.external_id == f"{CAROL}:11"
    assert result.inbound.text == "Hi, my order #124 has not arrived"
    assert result.edited_at is not None


def test_groups_only_when_enabled_with_the_senders_name() -> None:
    update = load("group")
    assert inbound_from_update(7, update, groups=False) is None
    result = inbound_from_update(7, update, groups=True)
    assert isinstance(result, Inbound)
    assert result.thread_key == "-1001234567890"
    assert result.sender.value == "777888999" and result.sender.name == "Erin"
    assert result.subject == "Acme buyers"
    assert result.metadata["telegram"]["chat_title"] == "Acme buyers"


def test_blocking_the_bot_is_a_reachability_change_not_a_message() -> None:
    update = load("blocked")
    assert inbound_from_update(7, update) is None
    change = reachability(update)
    assert change is not None
    identity, reachable = change
    assert identity.value == CAROL and not reachable
    assert reachability(load("text")) is None


@pytest.mark.parametrize("name", ["channel_post", "callback_query"])
def test_other_update_kinds_are_ignored(name: str) -> None:
    assert inbound_from_update(7, load(name), groups=True) is None


def test_every_fixture_is_covered() -> None:
    covered = {case[0] for case in CASES} | {"edited", "group", "channel_post", "callback_query", "blocked"}
    assert {path.stem for path in DATA.glob("*.json")} == covered


def _entities(markdown: str) -> tuple[str, list[tuple[str, str, str | None]]]:
    text, entities = to_entities(markdown)
    encoded = text.encode("utf-16-le")
    spans = [
        (e.type, encoded[e.offset * 2 : (e.offset + e.length) * 2].decode("utf-16-le"), e.url or e.language)
        for e in entities
    ]
    return text, spans


@pytest.mark.parametrize(
    ("markdown", "text", "spans"),
    [
        ("plain *text* here", "plain text here", [("italic", "text", None)]),
        ("**bold** and __also__", "bold and also", [("bold", "bold", None), ("bold", "also", None)]),
        (
            "see [the docs](https://example.test/a_b)",
            "see the docs",
            [("text_link", "the docs", "https://example.test/a_b")],
        ),
        ("run `rm -rf *` now", "run rm -rf * now", [("code", "rm -rf *", None)]),
        ("```python\nprint(1)\n```", "print(1)", [("pre", "print(1)", "python")]),
        ("~~old~~ new", "old new", [("strikethrough", "old", None)]),
        ("# Title\nbody", "Title\nbody", [("bold", "Title", None)]),
        ("snake_case_name and 2*3*4", "snake_case_name and 2*3*4", []),
        ("price \\*not italic\\*", "price *not italic*", []),
        ("emoji 😀 **after**", "emoji 😀 after", [("bold", "after", None)]),
        ("unclosed **bold and [link](javascript:x)", "unclosed **bold and [link](javascript:x)", []),
    ],
)
def test_markdown_to_entities(markdown: str, text: str, spans: list[tuple[str, str, str | None]]) -> None:
    assert _entities(markdown) == (text, spans)


def test_split_keeps_every_character_and_clips_entities() -> None:
    paragraph = "word " * 300  # 1500 characters
    text, entities = to_entities(f"**{paragraph.strip()}**\n\n" + "😀" * 3000)
    parts = split(text, entities)
    assert len(parts) >= 2
    assert all(utf16_len(part) <= 4096 for part, _ in parts)
    assert "".join(part for part, _ in parts).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(
        " ", ""
    )
    _, first_entities = parts[0]
    assert first_entities[0].type == MessageEntity.BOLD and first_entities[0].offset == 0
    for part, part_entities in parts:
        for entity in part_entities:
            assert entity.offset + entity.length <= utf16_len(part)


def test_split_short_text_is_one_part() -> None:
    assert split("hello", []) == [("hello", [])]


def _inbox(**settings: Any) -> InboxInfo:
    return InboxInfo(3, "Bot", "telegram", settings, "inbox-secret", "pk")


def test_settings_resolve_env_token_and_derive_a_stable_secret() -> None:
    settings = inbox_settings(_inbox(bot_token="env:TG_TOKEN", mode="webhook"), {"TG_TOKEN": "42:abc"})
    assert settings.token == "42:abc" and settings.bot_id == "42" and settings.mode == Mode.WEBHOOK
    assert settings.webhook_secret == inbox_settings(_inbox(bot_token="42:abc"), {}).webhook_secret
    assert not settings.groups


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "inbox 3 settings.bot_token: required"),
        ({"bot_token": "env:NOPE"}, "environment variable NOPE is not set"),
        ({"bot_token": "nocolon"}, "not a bot token"),
        ({"bot_token": "1:a", "mode": "push"}, "settings.mode: must be webhook or polling"),
        ({"bot_token": "1:a", "groups": "yes"}, "settings.groups: expected true or false"),
        ({"bot_token": "1:a", "extra": 1}, "settings.extra: unknown key"),
    ],
)
def test_settings_errors_name_the_key(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        inbox_settings(_inbox(**settings), {})
