"""The webchat channel's pure parts, table-driven: tokens, identity hashes, Origin, frames, limits, uploads."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from channels.base import OutboundAttachment, ThreadMessage
from channels.webchat import protocol
from channels.webchat.files import FileRefused, check_upload, clean_filename
from channels.webchat.frame import embed_json
from channels.webchat.protocol import ClaimedIdentity, FrameError, parse_frame
from channels.webchat.settings import Prechat, ReplyTime, WebchatSettings, WidgetSettings

SETTINGS = WebchatSettings(token_key="k", assets="web", max_attachment_bytes=100)


def test_visitor_token_round_trips_and_rejects_forgeries() -> None:
    token = protocol.visitor_token("key", 7, "visitor-1")
    assert protocol.visitor_of("key", 7, token) == "visitor-1"
    assert protocol.visitor_of("other-key", 7, token) is None
    assert protocol.visitor_of("key", 8, token) is None  # issued for another inbox
    body, mac = token.split(".")
    forged_body = protocol.sign("attacker", {"k": "visitor", "i": 7, "v": "victim"}).split(".")[0]
    for bad in (f"{forged_body}.{mac}", f"{body}.{mac[:-2]}", "", None, 42, "a.b.c", "x" * 3000):
        assert protocol.visitor_of("key", 7, bad) is None
    # A token of another kind (an upload ticket, a file link) is not a visitor token.
    assert protocol.visitor_of("key", 7, protocol.sign("key", {"k": "file", "i": 7, "v": "x"})) is None


def test_identity_hash_is_hex_hmac_sha256_of_the_id_with_the_inbox_secret() -> None:
    expected = hmac.new(b"inbox-secret", b"user-42", hashlib.sha256).hexdigest()
    assert protocol.identity_hash("inbox-secret", "user-42") == expected
    assert protocol.identity_ok("inbox-secret", "user-42", expected.upper())
    assert not protocol.identity_ok("inbox-secret", "user-43", expected)
    assert not protocol.identity_ok("inbox-secret", "user-42", None)


def test_visitor_for_isolates_unverified_claims() -> None:
    good = protocol.identity_hash("s", "u1")
    verified = protocol.visitor_for(3, "v1", ClaimedIdentity("u1", "Ann", "ann@example.test", good), "s")
    claimed = protocol.visitor_for(3, "v1", ClaimedIdentity("u1", "Ann", None, "bad"), "s")
    anonymous = protocol.visitor_for(3, "v1", None, "s")
    assert (verified.thread_key, verified.sender.value, verified.verified) == ("user:u1", "3:user:u1", True)
    assert (claimed.thread_key, claimed.sender.value, claimed.verified) == ("visitor:v1", "3:visitor:v1", False)
    assert claimed.sender.name == "Ann"
    assert anonymous.thread_key == "visitor:v1"


@pytest.mark.parametrize(
    ("origin", "allowed", "ok"),
    [
        ("https://evil.example", (), True),
        (None, (), True),
        ("https://shop.example", ("https://shop.example",), True),
        ("https://SHOP.example/", ("https://shop.example",), True),
        ("https://evil.example", ("https://shop.example",), False),
        ("https://shop.example.evil.example", ("https://shop.example",), False),
        (None, ("https://shop.example",), False),
        ("http://127.0.0.1:8000", ("https://shop.example",), True),  # the widget's own frame
    ],
)
def test_origin_allowed(origin: str | None, allowed: tuple[str, ...], ok: bool) -> None:
    assert protocol.origin_allowed(origin, allowed, "http://127.0.0.1:8000") is ok


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"type":"hello","visitor_token":null,"after":5,"identity":null}', protocol.Hello(None, 5, None)),
        (
            '{"type":"hello","visitor_token":"t","after":null,"identity":{"id":42,"hash":"ab"}}',
            protocol.Hello("t", None, ClaimedIdentity("42", "", None, "ab")),
        ),
        ('{"type":"message","client_id":"c","body":"hi"}', protocol.Send("c", "hi")),
        ('{"type":"typing"}', protocol.Typing(True)),
        ('{"type":"typing","active":false}', protocol.Typing(False)),
        ('{"type":"seen","message_id":3}', protocol.Seen(3)),
        ('{"type":"contact","name":"  Ann   Lee ","email":"a@b.co"}', protocol.ContactInfo("Ann Lee", "a@b.co")),
        ('{"type":"ping"}', protocol.Ping()),
    ],
)
def test_parse_frame_accepts(text: str, expected: protocol.Frame) -> None:
    assert parse_frame(text, max_chars=10) == expected


@pytest.mark.parametrize(
    ("text", "code", "field"),
    [
        ("nope", "malformed", "frame"),
        ("[1]", "malformed", "frame"),
        ('{"type":"dance"}', "unknown_type", "type"),
        ('{"type":"hello","after":-1}', "invalid", "after"),
        ('{"type":"hello","after":true}', "invalid", "after"),
        ('{"type":"hello","visitor_token":5}', "invalid", "visitor_token"),
        ('{"type":"hello","identity":{"id":""}}', "invalid", "identity.id"),
        ('{"type":"hello","identity":"me"}', "invalid", "identity"),
        ('{"type":"message","body":"hi"}', "invalid", "client_id"),
        ('{"type":"message","client_id":"c","body":"   "}', "invalid", "body"),
        ('{"type":"message","client_id":"c","body":"01234567890"}', "too_long", "body"),
        ('{"type":"seen","message_id":"3"}', "invalid", "message_id"),
        ('{"type":"contact","email":"not an email"}', "invalid", "email"),
        ('{"type":"contact","email":"a@b"}', "invalid", "email"),
    ],
)
def test_parse_frame_refuses_with_the_field_named(text: str, code: str, field: str) -> None:
    with pytest.raises(FrameError) as caught:
        parse_frame(text, max_chars=10)
    assert caught.value.code == code and caught.value.detail.startswith(field)


def test_message_view_hides_internals_and_signs_file_links() -> None:
    message = ThreadMessage(
        id=9,
        conversation_id=1,
        kind="incoming",
        text="hi",
        sender_name="Carol",
        external_id="webchat:3:visitor:v:client-1",
        created_at=datetime(2026, 1, 2, tzinfo=UTC),
        attachments=[OutboundAttachment("a.png", "image/png", 3, "/secret/path")],
    )
    view = protocol.message_view(message, "3:visitor:v", lambda m, i: f"/f/{m}/{i}")
    assert view == {
        "id": 9,
        "client_id": "client-1",
        "author": "visitor",
        "sender_name": "",
        "body": "hi",
        "created_at": "2026-01-02T00:00:00+00:00",
        "attachments": [{"filename": "a.png", "content_type": "image/png", "size": 3, "url": "/f/9/0"}],
    }
    assert protocol.message_view(message, "3:visitor:other", lambda m, i: "")["client_id"] is None


def test_seen_up_to_is_the_last_visitor_message_an_agent_answered() -> None:
    def m(id_: int, author: str) -> dict[str, object]:
        return {"id": id_, "author": author}

    assert protocol.seen_up_to([m(1, "visitor"), m(2, "visitor")]) is None
    assert protocol.seen_up_to([m(1, "visitor"), m(2, "agent"), m(3, "visitor")]) == 1
    assert protocol.seen_up_to([m(1, "visitor"), m(2, "visitor"), m(3, "agent")]) == 2


def test_rate_limiter_refills_over_time() -> None:
    now = [0.0]
    limiter = protocol.RateLimiter(2, 60.0, lambda: now[0])
    assert limiter.take("a") is None and limiter.take("a") is None
    wait = limiter.take("a")
    assert wait is not None and 29 < wait <= 30
    assert limiter.take("b") is None  # keys are independent
    now[0] = 30.0
    assert limiter.take("a") is None
    assert limiter.take("a") is not None
    unlimited = protocol.RateLimiter(0, 60.0, lambda: now[0])
    assert all(unlimited.take("a") is None for _ in range(1000))


def test_widget_settings_fall_back_to_defaults_for_bad_values() -> None:
    good = WidgetSettings.of(
        {
            "color": "#AABBCC",
            "position": "left",
            "prechat": "required",
            "reply_time": "day",
            "allowed_origins": "https://a.example, https://B.example/",
            "require_identity_verification": True,
            "locale": "ru",
        }
    )
    assert good == WidgetSettings(
        "#AABBCC", "", "left", Prechat.REQUIRED, ReplyTime.DAY, ("https://a.example", "https://b.example"), True, "ru"
    )
    bad = WidgetSettings.of(
        {"color": "red;}", "position": "top", "prechat": "maybe", "allowed_origins": 5, "locale": "xx"}
    )
    assert bad == WidgetSettings()
    assert WidgetSettings.of({"require_identity_verification": "yes"}).require_identity_verification is False


@pytest.mark.parametrize(
    ("name", "kind", "data", "status"),
    [
        ("a.png", "image/png", b"\x89PNG\r\n\x1a\nxx", None),
        ("a.jpg", "image/jpeg; charset=x", b"\xff\xd8\xff\xe0", None),
        ("a.txt", "text/plain", "привет".encode(), None),
        ("a.pdf", "application/pdf", b"%PDF-1.7", None),
        ("a.png", "image/png", b"GIF89a", 415),
        ("a.svg", "image/svg+xml", b"<svg/>", 415),
        ("a.txt", "text/plain", b"\xff\xfe", 415),
        ("a.png", "image/png", b"", 422),
        ("a.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"x" * 100, 413),
    ],
)
def test_check_upload(name: str, kind: str, data: bytes, status: int | None) -> None:
    if status is None:
        assert check_upload(name, kind, data, SETTINGS).content_type == kind.split(";")[0]
    else:
        with pytest.raises(FileRefused) as caught:
            check_upload(name, kind, data, SETTINGS)
        assert caught.value.status == status


def test_clean_filename() -> None:
    assert clean_filename("C:\\Users\\x\\report.pdf") == "report.pdf"
    assert clean_filename("../../etc/passwd") == "passwd"
    assert clean_filename("a\x00b\nc.txt") == "abc.txt"
    assert clean_filename("...") == "file"


def test_embed_json_cannot_close_the_script_element() -> None:
    text = embed_json({"greeting": "</script><script>alert(1)</script>&"})
    assert "<" not in text and ">" not in text and "&" not in text
