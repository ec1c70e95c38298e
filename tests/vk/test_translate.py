"""VK's pure parts, table-driven over `tests/data/vk/*.json`: events → actions, the secret check, settings,
reply parts and `random_id`, error mapping."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from channels.base import DeliveryError, Edit, IdentityKind, InboxInfo, Outbound, OutboundAttachment
from channels.vk.events import (
    Confirm,
    Echo,
    Edited,
    EventError,
    Ignored,
    Reachability,
    Received,
    Refused,
    action_of,
    check_event,
    event_key,
)
from channels.vk.outbound import (
    MAX_ATTACHMENTS,
    TEXT_LIMIT,
    attachment_string,
    failure,
    parts,
    random_id,
    send_params,
    split,
    upload_kind,
)
from channels.vk.settings import InboxSettings, SettingsError, VkSettings, inbox_settings

DATA = Path(__file__).parent.parent / "data" / "vk"
GROUP = 229000001
CAROL = "555000111"
SETTINGS = InboxSettings(GROUP, "vk1.a.token", "c0nf1rm", "s3cretKey42")
F = "https://files.vk.test"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    return data


# name, text, files as (url, filename, content type), attachment kinds
MESSAGES: list[tuple[str, str, list[tuple[str, str, str]], list[str]]] = [
    ("text", "Hi, my order #123 has not arrived", [], []),
    ("photo", "This is what arrived", [(f"{F}/photo_w.jpg", "photo_555000111_12_1.jpg", "image/jpeg")], ["photo"]),
    ("photo_only", "[Photo]", [(f"{F}/photo_w.jpg", "photo_555000111_13_1.jpg", "image/jpeg")], ["photo"]),
    ("doc", "[Document: invoice.pdf]", [(f"{F}/doc/invoice.pdf", "invoice.pdf", "application/pdf")], ["doc"]),
    (
        "voice",
        "[Voice message, 0:07]",
        [(f"{F}/voice.ogg", "voice_555000111_15_1.ogg", "audio/ogg")],
        ["audio_message"],
    ),
    ("sticker", "[Sticker]", [(f"{F}/sticker_512.png", "sticker_555000111_16_1.png", "image/png")], ["sticker"]),
    (
        "video_link",
        "See these\n[Video: unboxing]\n[Link] https://shop.example/orders/123",
        [],
        ["video", "link"],
    ),
    ("reply_fwd", "Same as before:\n[Forwarded] Order #123 paid", [], []),
    (
        "geo",
        "[Location] 59.93863, 30.31413\nhttps://www.openstreetmap.org/?mlat=59.93863&mlon=30.31413#map=16/59.93863/30.31413",
        [],
        ["geo"],
    ),
]


@pytest.mark.parametrize(("name", "text", "files", "kinds"), MESSAGES, ids=[case[0] for case in MESSAGES])
def test_private_messages_become_inbound(
    name: str, text: str, files: list[tuple[str, str, str]], kinds: list[str]
) -> None:
    event = load(name)
    action = action_of(7, SETTINGS, event)
    assert isinstance(action, Received)
    inbound = action.inbound
    cmid = event["object"]["message"]["conversation_message_id"]
    assert inbound.inbox_id == 7 and inbound.thread_key == CAROL
    assert inbound.external_id == f"{CAROL}:{cmid}"
    assert inbound.sender.kind == IdentityKind.VK and inbound.sender.value == CAROL
    assert inbound.text == text
    assert [(f.url, f.filename, f.content_type) for f in action.files] == files
    assert inbound.sent_at == datetime.fromtimestamp(event["object"]["message"]["date"], UTC)
    vk = inbound.metadata["vk"]
    assert vk["peer_id"] == int(CAROL) and vk["conversation_message_id"] == cmid
    assert vk.get("attachments", []) == kinds


def test_reply_and_forwarded_messages_are_kept_in_metadata() -> None:
    action = action_of(7, SETTINGS, load("reply_fwd"))
    assert isinstance(action, Received)
    vk = action.inbound.metadata["vk"]
    assert vk["reply_to"] == f"{CAROL}:5"
    assert vk["forwarded"] == [{"from_id": int(CAROL), "date": 1717990000, "text": "Order #123 paid"}]


def test_doc_size_is_known_before_download() -> None:
    action = action_of(7, SETTINGS, load("doc"))
    assert isinstance(action, Received) and action.files[0].size == 16


def test_group_chats_only_when_enabled() -> None:
    event = load("chat")
    assert isinstance(action_of(7, SETTINGS, event), Ignored)
    with_groups = InboxSettings(GROUP, "t", "c", "s3cretKey42", groups=True)
    action = action_of(7, with_groups, event)
    assert isinstance(action, Received)
    assert action.inbound.thread_key == "2000000007" and action.inbound.sender.value == CAROL
    assert action.inbound.metadata["vk"]["chat_id"] == 7


def test_edit_targets_the_original_message() -> None:
    action = action_of(7, SETTINGS, load("edit"))
    assert isinstance(action, Edited) and isinstance(action.edit, Edit)
    assert action.edit.inbound.external_id == f"{CAROL}:11"  # same as the "text" fixture's message
    assert action.edit.inbound.text == "Hi, my order #124 has not arrived"
    assert action.edit.edited_at == datetime.fromtimestamp(1718000500, UTC)


# name → the action's type, and for the simple ones the value it carries
OTHERS: list[tuple[str, type, Any]] = [
    ("confirmation", Confirm, Confirm("c0nf1rm")),
    ("reply", Echo, Echo(f"{CAROL}:out:1931")),
    ("allow", Reachability, True),
    ("deny", Reachability, False),
    ("edit_own", Ignored, None),
    ("from_community", Ignored, None),
    ("empty", Ignored, None),
    ("group_join", Ignored, None),
    ("typing", Ignored, None),
]


@pytest.mark.parametrize(("name", "kind", "value"), OTHERS, ids=[case[0] for case in OTHERS])
def test_other_events(name: str, kind: type, value: Any) -> None:
    action = action_of(7, SETTINGS, load(name))
    assert type(action) is kind
    if isinstance(action, Reachability):
        assert action.reachable is value and action.identity.kind == IdentityKind.VK
        assert action.identity.value == CAROL
    elif value is not None:
        assert action == value


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"object": None}, "object: expected a JSON object"),
        ({"object": {"message": {"peer_id": 1, "from_id": 1}}}, "message.conversation_message_id"),
        ({"object": {"message": {"peer_id": "1", "from_id": 1, "conversation_message_id": 1}}}, "message.peer_id"),
    ],
)
def test_unreadable_message_names_the_field(change: dict[str, Any], error: str) -> None:
    with pytest.raises(EventError, match=error.replace(".", r"\.")):
        action_of(7, SETTINGS, {**load("text"), **change})


@pytest.mark.parametrize(
    ("change", "accepted"),
    [
        ({}, True),
        ({"secret": "s3cretKey43"}, False),
        ({"secret": "s3cretKey4"}, False),
        ({"secret": None}, False),
        ({"secret": 42}, False),
        ({"group_id": GROUP + 1}, False),
        ({"group_id": str(GROUP)}, False),
    ],
)
def test_secret_and_group_are_checked(change: dict[str, Any], accepted: bool) -> None:
    event = {k: v for k, v in {**load("text"), **change}.items() if v is not None}
    if accepted:
        check_event(SETTINGS, event)
    else:
        with pytest.raises(Refused):
            check_event(SETTINGS, event)


def test_confirmation_without_a_secret_is_answered_but_a_wrong_one_is_not() -> None:
    check_event(SETTINGS, load("confirmation"))
    with pytest.raises(Refused):
        check_event(SETTINGS, {**load("confirmation"), "secret": "wrong"})
    with pytest.raises(Refused):
        check_event(SETTINGS, {**load("confirmation"), "group_id": 1})


def test_event_key_is_vk_event_id() -> None:
    assert event_key(load("text")) == load("text")["event_id"]
    assert event_key(load("confirmation")) is None


# ── settings ──
def inbox(**settings: Any) -> InboxInfo:
    return InboxInfo(3, "VK", "vk", settings, "inbox-secret", "pk")


GOOD = {"group_id": GROUP, "access_token": "env:VK_TOKEN", "confirmation_code": "c0nf1rm", "secret_key": "s3cretKey42"}


def test_settings_read_the_token_from_the_environment() -> None:
    settings = inbox_settings(inbox(**GOOD), {"VK_TOKEN": "vk1.a.secret"})
    assert settings == InboxSettings(GROUP, "vk1.a.secret", "c0nf1rm", "s3cretKey42", False)
    assert "vk1.a.secret" not in repr(settings) and "s3cretKey42" not in repr(settings)
    assert inbox_settings(inbox(**{**GOOD, "group_id": str(GROUP)}), {"VK_TOKEN": "x"}).group_id == GROUP


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"group_id": None}, "group_id: required"),
        ({"group_id": -5}, "group_id: required"),
        ({"group_id": True}, "group_id: required"),
        ({"access_token": ""}, "access_token: required"),
        ({"access_token": "env:MISSING"}, "access_token: environment variable MISSING is not set"),
        ({"confirmation_code": " "}, "confirmation_code: required"),
        ({"secret_key": None}, "secret_key: required"),
        ({"secret_key": "has space"}, "secret_key: expected 1 to 50 Latin letters and digits"),
        ({"groups": "yes"}, "groups: expected true or false"),
        ({"bot_token": "x"}, "bot_token: unknown key"),
    ],
)
def test_settings_errors_name_the_key(change: dict[str, Any], error: str) -> None:
    raw = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(SettingsError, match=f"^inbox 3 settings\\.{error}"):
        inbox_settings(inbox(**raw), {"VK_TOKEN": "vk1.a.secret"})


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"api_base_url": "api.vk.com/method"}, "vk.api_base_url"),
        ({"api_version": "5"}, "vk.api_version"),
        ({"timeout_seconds": 0}, "vk.timeout_seconds"),
        ({"max_file_bytes": 0}, "vk.max_file_bytes"),
    ],
)
def test_process_settings_are_validated(change: dict[str, Any], error: str) -> None:
    with pytest.raises(SettingsError, match=error):
        VkSettings(**change)


# ── replies ──
def outbound(text: str, files: int = 0, message_id: int = 42) -> Outbound:
    attachments = [OutboundAttachment(f"f{i}.png", "image/png", 10, f"/nonexistent/{i}") for i in range(files)]
    return Outbound(
        inbox=inbox(**GOOD),
        message_id=message_id,
        conversation_id=9,
        delivery_id="d-1",
        thread_key=CAROL,
        recipient=None,
        text=text,
        agent_name="Ann",
        attachments=attachments,
    )


def test_random_id_is_stable_31_bit_and_distinct_per_part_and_message() -> None:
    ids = {random_id(3, message, part) for message in range(1, 200) for part in range(3)}
    assert len(ids) == 597
    assert all(0 < value < 2**31 for value in ids)
    assert random_id(3, 42, 0) == random_id(3, 42, 0) != random_id(4, 42, 0)
    assert random_id(3, 42, 0) == 114900867  # stable across processes and releases: never change the recipe


@pytest.mark.parametrize(
    ("text", "files", "expected"),
    [
        ("Hello", 0, [("Hello", 0)]),
        ("  ", 2, [("", 2)]),
        ("a" * (TEXT_LIMIT + 1), 1, [("a" * TEXT_LIMIT, 1), ("a", 0)]),
        ("Hi", MAX_ATTACHMENTS + 3, [("Hi", MAX_ATTACHMENTS), ("", 3)]),
    ],
)
def test_reply_parts(text: str, files: int, expected: list[tuple[str, int]]) -> None:
    got = parts(outbound(text, files))
    assert [(p.text, len(p.attachments)) for p in got] == expected
    assert [p.index for p in got] == list(range(len(expected)))


def test_empty_reply_is_refused() -> None:
    with pytest.raises(DeliveryError, match="neither text nor attachments"):
        parts(outbound("   "))


def test_split_prefers_line_breaks_and_spaces() -> None:
    text = "first line here\n" + "word " * 10
    assert split(text, 20) == ["first line here", "word word word word", "word word word word", "word word"]
    assert all(len(piece) <= 20 for piece in split("x" * 45, 20))


def test_send_params() -> None:
    (part,) = parts(outbound("Hello"))
    params = send_params(int(CAROL), part, 99, ["photo-1_2_key", "doc-1_3"])
    assert params == {
        "peer_id": CAROL,
        "random_id": "99",
        "message": "Hello",
        "attachment": "photo-1_2_key,doc-1_3",
    }


def test_attachment_strings_and_upload_kinds() -> None:
    assert attachment_string("photo", {"owner_id": -GROUP, "id": 7, "access_key": "k"}) == f"photo-{GROUP}_7_k"
    assert attachment_string("doc", {"owner_id": 5, "id": 7}) == "doc5_7"
    with pytest.raises(DeliveryError):
        attachment_string("doc", {"id": 7})
    assert upload_kind(OutboundAttachment("a.png", "image/png", 10, "")) == "photo"
    assert upload_kind(OutboundAttachment("a.webp", "image/webp", 10, "")) == "doc"
    assert upload_kind(OutboundAttachment("a.jpg", "image/jpeg", 60 * 1024 * 1024, "")) == "doc"


# code → retry_after (None: permanent), unreachable, a word of the reason
ERRORS: list[tuple[int, float | None, bool, str]] = [
    (6, 1.0, False, "retry"),
    (9, 60.0, False, "retry"),
    (10, 5.0, False, "retry"),
    (29, 300.0, False, "retry"),
    (901, None, True, "not allowed messages"),
    (902, None, True, "privacy"),
    (900, None, True, "blacklist"),
    (7, None, False, "permission"),
    (15, None, False, "denied access"),
    (5, None, False, "access token"),
    (12345, None, False, "VK refused"),
]


@pytest.mark.parametrize(("code", "retry", "unreachable", "word"), ERRORS, ids=[str(case[0]) for case in ERRORS])
def test_error_mapping(code: int, retry: float | None, unreachable: bool, word: str) -> None:
    mapped = failure(code, "error text from VK")
    assert mapped.error.retry_after == retry and mapped.unreachable is unreachable
    assert word in mapped.error.reason and f"VK error {code}: error text from VK" in mapped.error.reason
