"""WhatsApp's pure parts, table-driven over the fixture notifications: handshake, signature, messages and
receipts, request bodies, Graph error mapping, the 24-hour window and settings."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from channels.base import DeliveryError, DeliveryStatus, IdentityKind, InboxInfo, Outbound
from channels.whatsapp.errors import graph_error
from channels.whatsapp.outbound import (
    approved_templates,
    media_kind,
    recipient,
    split_text,
    template_request,
    text_requests,
    window_open,
)
from channels.whatsapp.settings import SettingsError, WhatsAppSettings, inbox_settings
from channels.whatsapp.webhook import (
    PayloadError,
    StatusUpdate,
    latest_statuses,
    read_notification,
    signature_valid,
    verify_handshake,
)
from tests.servers.whatsapp import PHONE_NUMBER_ID, sign
from tests.whatsapp.conftest import APP_SECRET, CAROL, INBOX, notification

# ── handshake and signature ──
HANDSHAKES: list[tuple[dict[str, str], str | None]] = [
    ({"hub.mode": "subscribe", "hub.verify_token": "verify-me-please", "hub.challenge": "1158201444"}, "1158201444"),
    ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1158201444"}, None),
    ({"hub.mode": "unsubscribe", "hub.verify_token": "verify-me-please", "hub.challenge": "1"}, None),
    ({"hub.mode": "subscribe", "hub.verify_token": "verify-me-please"}, None),
    ({}, None),
]


@pytest.mark.parametrize(("params", "expected"), HANDSHAKES)
def test_verify_handshake(params: dict[str, str], expected: str | None) -> None:
    assert verify_handshake(params, "verify-me-please") == expected


BODY = b'{"object":"whatsapp_business_account","entry":[]}'
SIGNATURES: list[tuple[str | None, bool]] = [
    (sign(BODY, APP_SECRET), True),
    (sign(BODY, APP_SECRET).upper().replace("SHA256=", "sha256="), True),  # hex case does not matter
    (sign(BODY + b" ", APP_SECRET), False),  # a different body
    (sign(BODY, "another-secret"), False),
    (sign(BODY, APP_SECRET).removeprefix("sha256="), False),  # the algorithm prefix is part of the value
    ("", False),
    (None, False),
]


@pytest.mark.parametrize(("header", "valid"), SIGNATURES)
def test_signature_is_an_hmac_of_the_raw_body(header: str | None, valid: bool) -> None:
    assert signature_valid(BODY, header, APP_SECRET) is valid


# ── messages ──
# fixture, text, attachment (filename, content type) or None, facts in metadata["whatsapp"]
LOCATION_TEXT = (
    "[Location] 52.520008, 13.404954\nAlexanderplatz, 10178 Berlin\n"
    "https://www.openstreetmap.org/?mlat=52.520008&mlon=13.404954#map=16/52.520008/13.404954"
)
MESSAGES: list[tuple[str, str, tuple[str, str] | None, dict[str, Any]]] = [
    ("text", "Hi, my order #123 has not arrived", None, {"type": "text"}),
    ("image", "This is what arrived", ("image_CABIYFjNFQjA0002.jpg", "image/jpeg"), {"kind": "image"}),
    ("voice", "[Voice message]", ("voice_CABIYFjNFQjA0003.ogg", "audio/ogg; codecs=opus"), {"kind": "voice"}),
    ("audio", "[Audio]", ("audio_CABIYFjNFQjA0004.mp3", "audio/mpeg"), {"kind": "audio"}),
    ("video", "unboxing", ("video_CABIYFjNFQjA0005.mp4", "video/mp4"), {"kind": "video"}),
    ("document", "[Document: invoice.pdf]", ("invoice.pdf", "application/pdf"), {"kind": "document"}),
    ("sticker", "[Sticker]", ("sticker_CABIYFjNFQjA0007.webp", "image/webp"), {"kind": "sticker"}),
    ("location", LOCATION_TEXT, None, {"kind": "location", "latitude": 52.520008, "name": "Alexanderplatz"}),
    ("contacts", "[Contact] Dan Driver: +49 30 123456, dan@example.test", None, {"kind": "contacts"}),
    (
        "reaction",
        "[Reaction 👍]",
        None,
        {"reaction": {"message_id": "wamid.HBgNNDkxNTExMjM0NTY3OBUCABEYEkFHRU5UUkVQTFkwMDAx", "emoji": "👍"}},
    ),
    ("reply", "Yes, that one", None, {"reply_to": "wamid.HBgNNDkxNTExMjM0NTY3OBUCABEYEkFHRU5UUkVQTFkwMDAx"}),
    ("button", "Track my order", None, {"button_payload": "track-123"}),
    (
        "unsupported",
        "[Unsupported WhatsApp message: WhatsApp does not support this message type: "
        "Message type is currently not supported. (WhatsApp error 131051)]",
        None,
        {"unsupported": True},
    ),
]


@pytest.mark.parametrize(("name", "text", "attachment", "facts"), MESSAGES, ids=[m[0] for m in MESSAGES])
def test_messages_become_inbound(
    name: str, text: str, attachment: tuple[str, str] | None, facts: dict[str, Any]
) -> None:
    result = read_notification(7, notification(name), PHONE_NUMBER_ID)
    assert result.statuses == [] and result.skipped == []
    (received,) = result.messages
    inbound = received.inbound
    assert inbound.inbox_id == 7 and inbound.thread_key == CAROL
    assert (
        inbound.external_id.startswith("wamid.") and inbound.metadata["whatsapp"]["message_id"] == inbound.external_id
    )
    assert inbound.sender.kind == IdentityKind.PHONE and inbound.sender.value == CAROL
    assert inbound.sender.name == "Carol Customer"
    assert inbound.sent_at is not None and inbound.sent_at.tzinfo is not None
    assert inbound.text == text
    assert [(m.filename, m.content_type) for m in received.media] == ([attachment] if attachment else [])
    meta = inbound.metadata["whatsapp"]
    assert meta["wa_id"] == "4915112345678" and meta["phone_number_id"] == PHONE_NUMBER_ID
    for key, value in facts.items():
        assert meta[key] == value


def test_media_refs_carry_the_media_id_to_download() -> None:
    (received,) = read_notification(7, notification("document"), PHONE_NUMBER_ID).messages
    (ref,) = received.media
    assert ref.media_id == "1003383421387260" and ref.sha256 == "ZG9jaGFzaA=="


def test_a_batch_keeps_every_message_in_order() -> None:
    result = read_notification(7, notification("batch"), PHONE_NUMBER_ID)
    assert [r.inbound.text for r in result.messages] == ["first", "second"]


def test_other_numbers_and_fields_are_skipped_with_a_reason() -> None:
    other = read_notification(7, notification("text"), "999999999")
    assert other.messages == [] and "not this inbox's" in other.skipped[0]
    template = read_notification(7, notification("template_status"), PHONE_NUMBER_ID)
    assert template.messages == [] and "message_template_status_update" in template.skipped[0]


def test_an_unreadable_message_is_skipped_not_fatal() -> None:
    payload = notification("batch")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["from"] = "not-a-number"
    result = read_notification(7, payload, PHONE_NUMBER_ID)
    assert [r.inbound.text for r in result.messages] == ["second"]
    assert "unreadable" in result.skipped[0]


@pytest.mark.parametrize("payload", [[], {"object": "page", "entry": []}, {"object": "whatsapp_business_account"}])
def test_what_is_not_a_notification_is_refused(payload: Any) -> None:
    with pytest.raises(PayloadError):
        read_notification(7, payload, PHONE_NUMBER_ID)


# ── receipts ──
def test_statuses_become_receipts_with_readable_errors() -> None:
    result = read_notification(7, notification("statuses"), PHONE_NUMBER_ID)
    assert [(s.external_id, s.status) for s in result.statuses] == [
        ("wamid.OUT1", DeliveryStatus.READ),
        ("wamid.OUT1", DeliveryStatus.DELIVERED),
        ("wamid.OUT1", DeliveryStatus.SENT),
        ("wamid.OUT2", DeliveryStatus.FAILED),
    ]
    failed = result.statuses[3]
    assert failed.recipient == CAROL and failed.at == datetime.fromtimestamp(1763800110, tz=UTC)
    assert failed.error is not None and "24-hour" in failed.error and "131047" in failed.error
    assert result.statuses[0].error is None


def _receipt(status: DeliveryStatus, wamid: str = "wamid.A") -> StatusUpdate:
    return StatusUpdate(wamid, status, CAROL)


S, D, R, F = DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ, DeliveryStatus.FAILED
ORDERS: list[tuple[list[DeliveryStatus], DeliveryStatus]] = [
    ([S, D, R], R),
    ([R, D, S], R),  # out of order: the furthest wins
    ([D, S], D),
    ([S, F], F),
    ([F, S], F),  # a late "sent" does not undo a failure
    ([F, D], D),  # it arrived after all
    ([R, F], R),  # a failure after "read" is not believed
]


@pytest.mark.parametrize(("order", "expected"), ORDERS)
def test_latest_statuses_keeps_the_furthest_receipt(order: list[DeliveryStatus], expected: DeliveryStatus) -> None:
    kept = latest_statuses([_receipt(s) for s in order] + [_receipt(S, "wamid.B")])
    assert [(k.external_id, k.status) for k in kept] == [("wamid.A", expected), ("wamid.B", S)]


# ── requests ──
def _outbound(text: str = "On it", **changes: Any) -> Outbound:
    message = Outbound(
        inbox=INBOX,
        message_id=1,
        conversation_id=2,
        delivery_id="d-1",
        thread_key=CAROL,
        recipient=None,
        text=text,
        agent_name="Ann",
    )
    return dataclasses.replace(message, **changes)


def test_text_request_shape() -> None:
    (body,) = text_requests("4915112345678", "On it", reply_to="wamid.X")
    assert body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "4915112345678",
        "type": "text",
        "text": {"preview_url": False, "body": "On it"},
        "context": {"message_id": "wamid.X"},
    }


def test_long_text_is_split_at_4096_on_a_word_boundary() -> None:
    text = ("word " * 2000).strip()
    parts = split_text(text)
    assert len(parts) == 3 and all(len(p) <= 4096 for p in parts)
    assert " ".join(parts) == text
    assert len(text_requests("4915112345678", text)) == 3


def test_template_request_shapes() -> None:
    body = template_request(
        "4915112345678", {"name": "order_update", "language": "de", "parameters": ["Carol", "#123"]}
    )
    assert body["type"] == "template"
    assert body["template"] == {
        "name": "order_update",
        "language": {"code": "de"},
        "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Carol"}, {"type": "text", "text": "#123"}]}
        ],
    }
    bare = template_request("4915112345678", {"name": "hello_world"})
    assert bare["template"] == {"name": "hello_world", "language": {"code": "en_US"}}


def test_recipient_comes_from_the_thread_key() -> None:
    assert recipient(_outbound()) == "4915112345678"
    with pytest.raises(DeliveryError, match="no WhatsApp number"):
        recipient(_outbound(thread_key="visitor-abc"))


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("image/png", "image"),
        ("video/mp4", "video"),
        ("audio/ogg", "audio"),
        ("application/pdf", "document"),
        ("image/gif", "document"),
    ],
)
def test_media_kind(content_type: str, kind: str) -> None:
    assert media_kind(content_type) == kind


def test_only_approved_templates_are_listed() -> None:
    page = {
        "data": [
            {
                "name": "order_update",
                "language": "en_US",
                "status": "APPROVED",
                "category": "UTILITY",
                "components": [{"type": "BODY", "text": "Hi {{1}}, order {{2}} shipped"}],
            },
            {"name": "promo", "language": "en_US", "status": "REJECTED", "category": "MARKETING", "components": []},
        ]
    }
    (template,) = approved_templates([page])
    assert (template.name, template.language, template.parameter_count) == ("order_update", "en_US", 2)


# ── errors ──
# HTTP status, Graph error code, Retry-After header → retry_after (None: permanent), words in the reason
ERRORS: list[tuple[int, int | None, str | None, float | None, str]] = [
    (429, None, None, 5.0, "rate limit"),
    (429, 4, None, 60.0, "call limit"),
    (400, 80007, None, 60.0, "Business Account"),
    (400, 130429, None, 5.0, "throughput"),
    (400, 131048, None, 600.0, "spam"),
    (400, 131056, None, 6.0, "pair rate"),
    (400, 130429, "17", 17.0, "throughput"),  # Graph's Retry-After wins
    (500, 131000, None, 5.0, "went wrong"),
    (503, None, None, 5.0, "HTTP 503"),
    (400, 131047, None, None, "24-hour"),
    (400, 131026, None, None, "could not deliver"),
    (401, 190, None, None, "access token"),
    (400, 100, None, None, "parameter"),
    (404, None, None, None, "HTTP 404"),
]


@pytest.mark.parametrize(("status", "code", "header", "retry_after", "words"), ERRORS)
def test_graph_errors_map_to_delivery_errors(
    status: int, code: int | None, header: str | None, retry_after: float | None, words: str
) -> None:
    body = None if code is None else {"error": {"message": f"(#{code}) title", "type": "OAuthException", "code": code}}
    error = graph_error(status, body, header)
    assert error.retry_after == retry_after
    assert words in error.reason
    if code is not None:
        assert str(code) in error.reason


# ── the window ──
NOW = datetime(2025, 11, 22, 12, 0, tzinfo=UTC)
WINDOWS: list[tuple[datetime | None, bool]] = [
    (NOW - timedelta(hours=1), True),
    (NOW - timedelta(hours=23, minutes=59), True),
    (NOW - timedelta(hours=24), False),
    (NOW - timedelta(days=3), False),
    (None, False),
    ((NOW - timedelta(hours=2)).replace(tzinfo=None), True),  # naive = UTC
]


@pytest.mark.parametrize(("last", "open_"), WINDOWS)
def test_the_24_hour_window(last: datetime | None, open_: bool) -> None:
    assert window_open(last, NOW) is open_


# ── settings ──
def test_settings_read_env_secrets_and_hide_them() -> None:
    inbox = dataclasses.replace(
        INBOX, settings={**INBOX.settings, "app_secret": "env:WA_SECRET", "waba_id": 102290129340398}
    )
    settings = inbox_settings(inbox, {"WA_SECRET": "from-env"})
    assert settings.app_secret == "from-env" and settings.waba_id == "102290129340398"
    assert "from-env" not in repr(settings) and settings.access_token not in repr(settings)


SETTINGS_ERRORS: list[tuple[dict[str, Any], str]] = [
    ({"phone_number_id": None}, "settings.phone_number_id: required"),
    ({"phone_number_id": "abc"}, "settings.phone_number_id: expected the numeric Graph id"),
    ({"access_token": ""}, "settings.access_token: required"),
    ({"app_secret": "env:MISSING"}, "settings.app_secret: environment variable MISSING is not set"),
    ({"verify_token": 5}, "settings.verify_token: required"),
    ({"waba_id": "x1"}, "settings.waba_id: expected the numeric Graph id"),
    ({"bot_token": "1:2"}, "settings.bot_token: unknown key"),
]


@pytest.mark.parametrize(("change", "message"), SETTINGS_ERRORS)
def test_settings_errors_name_the_key(change: dict[str, Any], message: str) -> None:
    raw = {k: v for k, v in {**INBOX.settings, **change}.items() if v is not None}
    with pytest.raises(SettingsError, match=f"^inbox 7 {message}"):
        inbox_settings(InboxInfo(7, "W", "whatsapp", raw, "s", "k"), {})


def test_app_settings_validate() -> None:
    with pytest.raises(SettingsError, match="whatsapp.api_base_url"):
        WhatsAppSettings(api_base_url="graph.facebook.com")
    assert WhatsAppSettings().api_base_url == "https://graph.facebook.com/v21.0"
