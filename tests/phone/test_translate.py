"""The phone channel's pure functions, table-driven over `tests/data/phone/*.json`: numbers, settings,
signatures, call events → messages and live frames, and click-to-call URLs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from channels.base import Identity, IdentityKind, InboundAttachment, InboxInfo
from channels.phone.dial import dial_request
from channels.phone.events import (
    CallEvent,
    EventError,
    call_frame,
    clock_duration,
    inbound_of,
    merged,
    read_event,
    recording_filename,
    spoken_duration,
    summary,
)
from channels.phone.numbers import to_e164
from channels.phone.settings import PhoneSettings, SettingsError, inbox_settings
from channels.phone.signature import signature, signature_problem

DATA = Path(__file__).parent.parent / "data" / "phone"
CAROL = "+4915112345678"


def fixture(name: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def event(name: str, **changes: Any) -> CallEvent:
    return read_event(fixture(name, **changes), "49")


# ── numbers ─────────────────────────────────────────────────────────────────────────────────
NUMBERS: list[tuple[str, str | None, str]] = [
    ("+49 151 1234-5678", None, CAROL),
    ("(+49) 30 123 45 67", None, "+49301234567"),
    ("tel:+49301234567", None, "+49301234567"),
    ("0049 30 1234567", None, "+49301234567"),
    ("4915112345678", None, CAROL),  # bare digits without a default country: international
    ("030 1234567", "49", "+49301234567"),  # national with the trunk prefix 0
    ("30 1234567", "49", "+49301234567"),  # national without it
    ("4915112345678", "49", CAROL),  # already international (starts with 49, 11+ digits)
    ("8 900 123-45-67", "7", "+79001234567"),  # Russia's trunk prefix is 8
    ("79001234567", "7", "+79001234567"),
    ("1 415 555 0100", "1", "+14155550100"),
    ("(415) 555-0100", "1", "+14155550100"),
]


@pytest.mark.parametrize(("raw", "country", "expected"), NUMBERS)
def test_numbers_are_normalised_to_e164(raw: str, country: str | None, expected: str) -> None:
    assert to_e164(raw, country) == expected


@pytest.mark.parametrize(
    ("raw", "country"),
    [("", None), ("anonymous", None), ("201", None), ("201", "49"), ("+0301234567", None), ("+1234567890123456", None)],
)
def test_what_is_not_a_phone_number_is_refused(raw: str, country: str | None) -> None:
    with pytest.raises(ValueError):
        to_e164(raw, country)


# ── settings ────────────────────────────────────────────────────────────────────────────────
SECRET = "pbx-signing-secret-0123"


def inbox(settings: dict[str, Any], secret: str = "inbox-own-secret-0123456789") -> InboxInfo:
    return InboxInfo(7, "Phone", "phone", settings, secret, "pk")


def test_settings_are_read_and_the_secret_hidden() -> None:
    read = inbox_settings(
        inbox(
            {
                "signing_secret": "env:PBX",
                "dial_url": "https://pbx.example/dial?to={number}",
                "default_country_code": "+49",
            }
        ),
        {"PBX": SECRET},
    )
    assert (read.signing_secret, read.dial_url, read.default_country_code) == (
        SECRET,
        "https://pbx.example/dial?to={number}",
        "49",
    )
    assert SECRET not in repr(read)
    assert inbox_settings(inbox({})).signing_secret == "inbox-own-secret-0123456789"  # the inbox's own secret
    assert inbox_settings(inbox({"default_country_code": 1})).default_country_code == "1"


SETTINGS_ERRORS: list[tuple[dict[str, Any], str]] = [
    ({"secret": SECRET}, "inbox 7 settings.secret: unknown key"),
    ({"signing_secret": "short"}, "inbox 7 settings.signing_secret: must be at least 16 characters"),
    ({"signing_secret": "env:MISSING"}, "inbox 7 settings.signing_secret: environment variable MISSING is not set"),
    ({"signing_secret": 42}, "inbox 7 settings.signing_secret: expected a secret or env:NAME"),
    ({"dial_url": "ftp://pbx/{number}"}, "inbox 7 settings.dial_url: expected an http(s) URL"),
    ({"dial_url": "https://pbx/dial?to={phone}"}, "inbox 7 settings.dial_url: unknown placeholder {phone}"),
    ({"dial_url": "https://pbx/dial?to={number.__class__}"}, "unknown placeholder {number.__class__}; allowed:"),
    ({"dial_url": "https://pbx/dial?to={0}"}, "unknown placeholder {0}"),
    ({"dial_url": "https://pbx/dial?to={number!r}"}, "placeholder {number} takes no format spec or conversion"),
    ({"dial_url": "https://pbx/dial?to={number"}, "inbox 7 settings.dial_url: malformed placeholder"),
    ({"dial_url": "https://pbx/dial?ext={agent_extension}"}, "must contain {number} or {number_digits}"),
    ({"default_country_code": "049"}, "inbox 7 settings.default_country_code: expected a country calling code"),
    ({"default_country_code": "DE"}, "inbox 7 settings.default_country_code: expected a country calling code"),
]


@pytest.mark.parametrize(("settings", "message"), SETTINGS_ERRORS)
def test_bad_settings_name_the_key(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        inbox_settings(inbox(settings), {})
    assert str(caught.value).startswith(f"inbox 7 settings.{next(iter(settings))}: ")
    assert message in str(caught.value)


def test_no_secret_at_all_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"^inbox 7 settings\.signing_secret: required"):
        inbox_settings(inbox({}, secret=""))


@pytest.mark.parametrize("key", ["max_recording_bytes", "timeout_seconds", "max_clock_skew_seconds"])
def test_app_settings_must_be_positive(key: str) -> None:
    with pytest.raises(SettingsError, match=f"^phone.{key}: must be positive"):
        PhoneSettings(**{key: 0})


# ── signatures ──────────────────────────────────────────────────────────────────────────────
BODY = b'{"type":"call.ringing"}'
NOW = 1_714_557_600


def test_a_fresh_signed_event_passes() -> None:
    header = signature(SECRET, str(NOW), BODY)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert signature_problem(SECRET, BODY, header, str(NOW), now=NOW + 299, max_skew=300) is None
    assert (
        signature_problem(SECRET, BODY, header.upper().replace("SHA256", "sha256"), str(NOW), now=NOW, max_skew=300)
        is None
    )


SIGNATURE_PROBLEMS: list[tuple[str | None, str | None, float, str]] = [
    (signature(SECRET, str(NOW), BODY), None, NOW, "missing X-Switchboard-Timestamp"),
    (signature(SECRET, str(NOW), BODY), "yesterday", NOW, "expected unix seconds"),
    (signature(SECRET, str(NOW), BODY), str(NOW), NOW + 301, "more than 300 seconds from now"),
    (signature(SECRET, str(NOW), BODY), str(NOW), NOW - 301, "more than 300 seconds from now"),  # from the future
    (None, str(NOW), NOW, "missing X-Switchboard-Signature"),
    (signature("another-secret-0123456", str(NOW), BODY), str(NOW), NOW, "does not match"),
    (signature(SECRET, str(NOW - 1), BODY), str(NOW), NOW, "does not match"),  # the timestamp is signed too
    (signature(SECRET, str(NOW), BODY + b" "), str(NOW), NOW, "does not match"),
]


@pytest.mark.parametrize(("header", "timestamp", "now", "problem"), SIGNATURE_PROBLEMS)
def test_unsigned_tampered_or_stale_events_are_refused(
    header: str | None, timestamp: str | None, now: float, problem: str
) -> None:
    found = signature_problem(SECRET, BODY, header, timestamp, now=now, max_skew=300)
    assert found is not None and problem in found


# ── call events ─────────────────────────────────────────────────────────────────────────────
# fixture → (message text, customer number, callback needed)
ENDED: list[tuple[str, str, str, bool]] = [
    ("ended_answered", "Incoming call, 3 min 12 s, answered by ann@example.com", CAROL, False),
    ("ended_missed", "Missed call", CAROL, True),
    ("ended_busy", "Missed call (line busy)", CAROL, True),
    ("ended_voicemail", "Voicemail (0:42)", CAROL, True),
    ("ended_outbound", "Outgoing call, 1 h 2 min 3 s, by 201", "+49301234567", False),
    ("ended_outbound_no_answer", "Outgoing call, not answered, by bob@example.com", CAROL, False),
]


@pytest.mark.parametrize(("name", "text", "customer", "callback"), ENDED, ids=[case[0] for case in ENDED])
def test_an_ended_call_becomes_one_message(name: str, text: str, customer: str, callback: bool) -> None:
    call = event(name)
    inbound = inbound_of(7, call)
    assert inbound.text == text
    assert inbound.external_id == f"call:{call.call_id}"
    assert inbound.thread_key == customer
    assert inbound.sender == Identity(IdentityKind.PHONE, customer)
    assert inbound.metadata["call"]["callback_needed"] is callback
    assert inbound.metadata["call"]["number"] == customer


def test_the_message_metadata_holds_the_call() -> None:
    inbound = inbound_of(7, event("ended_answered"))
    assert inbound.sent_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert inbound.metadata == {
        "call": {
            "call_id": "1714557600.42",
            "direction": "inbound",
            "from": CAROL,
            "to": "+4930555000",
            "number": CAROL,
            "line": "+4930555000",
            "agent": "ann@example.com",
            "cause": "answered",
            "started_at": "2024-05-01T10:00:00Z",
            "answered_at": "2024-05-01T10:00:08Z",
            "ended_at": "2024-05-01T10:03:20Z",
            "duration": 192,
            "recording_url": None,
            "callback_needed": False,
            "extra": {"queue": "support"},
        }
    }


def test_numbers_times_and_extensions_are_read() -> None:
    missed = event("ended_missed")
    assert (missed.from_, missed.to) == (CAROL, "200")  # our extension kept as the PBX names it
    assert missed.at == datetime(2024, 5, 1, 10, 0, 30, tzinfo=UTC)  # unix seconds
    assert event("ended_busy").at == datetime(2024, 5, 1, 10, 0, 3, tzinfo=UTC)  # an offset, made UTC
    outbound = event("ended_outbound")
    assert (outbound.customer, outbound.line) == ("+49301234567", "201")


SUMMARIES: list[tuple[str, dict[str, Any], str]] = [
    ("ended_answered", {"agent": None}, "Incoming call, 3 min 12 s"),
    ("ended_answered", {"duration": None}, "Incoming call, 3 min 12 s, answered by ann@example.com"),  # from times
    ("ended_answered", {"duration": None, "answered_at": None}, "Incoming call, answered by ann@example.com"),
    ("ended_busy", {"cause": "failed"}, "Missed call (the call failed)"),
    ("ended_voicemail", {"duration": None}, "Voicemail"),
    ("ended_voicemail", {"duration": 3723}, "Voicemail (1:02:03)"),
    ("ended_outbound_no_answer", {"cause": "busy", "agent": None}, "Outgoing call, line busy"),
    ("ended_outbound_no_answer", {"cause": "voicemail"}, "Outgoing call, reached voicemail, by bob@example.com"),
    ("ended_outbound_no_answer", {"cause": "failed"}, "Outgoing call, failed, by bob@example.com"),
]


@pytest.mark.parametrize(("name", "changes", "text"), SUMMARIES)
def test_summaries(name: str, changes: dict[str, Any], text: str) -> None:
    assert summary(event(name, **changes)) == text


@pytest.mark.parametrize(
    ("seconds", "spoken", "clock"),
    [
        (0, "0 s", "0:00"),
        (45, "45 s", "0:45"),
        (180, "3 min", "3:00"),
        (192, "3 min 12 s", "3:12"),
        (3600, "1 h", "1:00:00"),
    ],
)
def test_durations(seconds: int, spoken: str, clock: str) -> None:
    assert (spoken_duration(seconds), clock_duration(seconds)) == (spoken, clock)


# fixture, changes → the field the error names
INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("ringing", {"type": "call.transferred"}, "type"),
    ("ringing", {"type": None}, "type"),
    ("ringing", {"call_id": None}, "call_id"),
    ("ringing", {"call_id": "has spaces"}, "call_id"),
    ("ringing", {"call_id": 42}, "call_id"),
    ("ringing", {"direction": "sideways"}, "direction"),
    ("ringing", {"from": "anonymous"}, "from"),  # the customer's side must be a number
    ("ringing", {"from": None}, "from"),
    ("ringing", {"to": "reception desk"}, "to"),
    ("ringing", {"at": None}, "at"),
    ("ringing", {"at": "2024-05-01T10:00:00"}, "at"),  # no offset
    ("ringing", {"at": "yesterday"}, "at"),
    ("ringing", {"at": True}, "at"),
    ("ringing", {"cause": "busy"}, "cause"),  # only call.ended has one
    ("ringing", {"recording_url": "https://pbx.example/r.mp3"}, "recording_url"),
    ("ringing", {"recordingUrl": "https://pbx.example/r.mp3"}, "recordingUrl"),  # unknown field
    ("ringing", {"agent": 201}, "agent"),
    ("ringing", {"agent": "ann\n@example.com"}, "agent"),
    ("ringing", {"extra": ["queue"]}, "extra"),
    ("ended_answered", {"cause": None}, "cause"),
    ("ended_answered", {"cause": "hung_up"}, "cause"),
    ("ended_answered", {"duration": -1}, "duration"),
    ("ended_answered", {"duration": "192"}, "duration"),
    ("ended_answered", {"started_at": "soon"}, "started_at"),
    ("ended_voicemail", {"recording_url": "file:///etc/passwd"}, "recording_url"),
]


@pytest.mark.parametrize(("name", "changes", "key"), INVALID)
def test_invalid_events_name_the_field(name: str, changes: dict[str, Any], key: str) -> None:
    with pytest.raises(EventError) as caught:
        read_event(fixture(name, **changes), "49")
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{key}: ")


def test_a_body_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(EventError, match="^body: expected a JSON object"):
        read_event([fixture("ringing")])


def test_without_a_default_country_a_national_number_is_refused() -> None:
    with pytest.raises(EventError, match="^to: the customer's number is"):
        read_event(fixture("ended_outbound"))


def test_only_an_ended_call_becomes_a_message() -> None:
    with pytest.raises(ValueError, match=r"only call\.ended"):
        inbound_of(7, event("ringing"))


def test_the_answered_event_fills_in_who_answered() -> None:
    ended = event("ended_answered", agent=None, answered_at=None, duration=None)
    filled = merged(ended, event("answered"))
    assert (filled.agent, filled.answered_at) == ("ann@example.com", datetime(2024, 5, 1, 10, 0, 8, tzinfo=UTC))
    assert summary(filled) == "Incoming call, 3 min 12 s, answered by ann@example.com"
    assert merged(event("ended_answered", agent="bob@example.com"), event("answered")).agent == "bob@example.com"
    assert merged(ended, event("answered", call_id="other")) is ended


@pytest.mark.parametrize(
    ("name", "state"), [("ringing", "ringing"), ("answered", "answered"), ("ended_missed", "ended")]
)
def test_live_frames(name: str, state: str) -> None:
    frame = call_frame(event(name))
    assert frame["type"] == "call" and frame["state"] == state
    assert frame["number"] == CAROL and frame["direction"] == "inbound"
    assert set(frame) == {"type", "state", "at", "call_id", "direction", "number", "line", "agent", "cause"}
    assert call_frame(event("answered"))["agent"] == "ann@example.com"


def test_recordings_are_named_by_call_and_type() -> None:
    call = event("ended_voicemail", call_id="vm/7:a")
    assert recording_filename(call, "audio/mpeg") == "call-vm_7_a.mp3"
    assert recording_filename(call, "audio/wav; rate=8000") == "call-vm_7_a.wav"
    assert recording_filename(call, "application/octet-stream") == "call-vm_7_a.bin"
    attached = inbound_of(7, call, (InboundAttachment("call-vm_7_a.mp3", "audio/mpeg", b"ID3"),), "[note]")
    assert attached.text == "Voicemail (0:42)\n[note]" and len(attached.attachments) == 1


# ── click-to-call ───────────────────────────────────────────────────────────────────────────
DIALS: list[tuple[str | None, str | None, str, str]] = [
    (None, "201", CAROL, f"tel:{CAROL}"),
    (
        "https://pbx.example/dial?from={agent_extension}&to={number}",
        "201",
        CAROL,
        "https://pbx.example/dial?from=201&to=%2B4915112345678",
    ),
    ("https://pbx.example/call/{number_digits}", None, CAROL, "https://pbx.example/call/4915112345678"),
    (
        "https://pbx.example/dial?to={number}&x={{literal}}",
        None,
        CAROL,
        "https://pbx.example/dial?to=%2B4915112345678&x={literal}",
    ),
    (
        "https://pbx.example/dial?from={agent_extension}&to={number}",
        "ann@x",
        CAROL,
        "https://pbx.example/dial?from=ann%40x&to=%2B4915112345678",
    ),
]


@pytest.mark.parametrize(("template", "extension", "number", "url"), DIALS)
def test_dial_requests(template: str | None, extension: str | None, number: str, url: str) -> None:
    assert dial_request(template, extension, number) == url


@pytest.mark.parametrize(
    ("template", "extension", "number", "message"),
    [
        (None, "201", "030 1234567", "number: not an E.164 number"),
        ("https://pbx.example/dial?from={agent_extension}&to={number}", None, CAROL, "agent_extension: required"),
        ("https://pbx.example/dial?from={agent_extension}&to={number}", "201&to=+1900", CAROL, "agent_extension"),
        ("https://pbx.example/dial?to={phone}", "201", CAROL, "dial_url: unknown placeholder"),
    ],
)
def test_dial_requests_refuse_what_cannot_be_dialled(
    template: str | None, extension: str | None, number: str, message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{message}"):
        dial_request(template, extension, number)
