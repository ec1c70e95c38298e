"""Mail that used to fail for a permanent reason with a temporary answer: parsed now, never 451 forever."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.email.parse import parse_email, strip_mbox_line

DATA = Path(__file__).resolve().parent / "data" / "email"


def test_a_display_name_that_decodes_to_crlf_is_parsed_without_the_line_break() -> None:
    mail = parse_email((DATA / "display_name_crlf.eml").read_bytes())
    assert (mail.from_address, mail.from_name) == ("r@cust.test", "Ann Bcc: x@evil.test")
    assert mail.to == ("support@example.test",)
    assert mail.visible_text.strip() == "My parcel is late."


@pytest.mark.parametrize(
    ("header", "address", "name"),
    [
        ("=?utf-8?b?QW5uDQpCY2M6IHhAZXZpbC50ZXN0?= <r@cust.test>", "r@cust.test", "Ann Bcc: x@evil.test"),
        ("=?utf-8?q?Ann=0D=0ACc=3A_y=40evil=2Etest?= <r@cust.test>", "r@cust.test", "Ann Cc: y@evil.test"),
        ("=?utf-8?b?QW5uAExlZQ==?= <r@cust.test>", "r@cust.test", "AnnLee"),  # NUL
        ("=?utf-8?b?QW5uwoVMZWU=?= <r@cust.test>", "r@cust.test", "AnnLee"),  # NEL (C1)
    ],
)
def test_control_characters_in_encoded_display_names_are_dropped(header: str, address: str, name: str) -> None:
    raw = f"From: {header}\r\nTo: s@example.test\r\nSubject: x\r\n\r\nbody\r\n".encode()
    mail = parse_email(raw)
    assert (mail.from_address, mail.from_name) == (address, name)


def test_a_leading_mbox_from_line_is_not_a_reason_to_quarantine() -> None:
    mail = parse_email((DATA / "mbox_from_line.eml").read_bytes())
    assert (mail.from_address, mail.from_name) == ("carol@customer.test", "Carol Customer")
    assert mail.message_id == "<mbox-1@customer.test>"
    assert mail.subject == "Saved from an mbox file"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (b"From a@b.c Mon Nov 24 10:00:00 2025\r\nFrom: a@b.c\r\n\r\nx", b"From: a@b.c\r\n\r\nx"),
        (b"From a@b.c Mon Nov 24 10:00:00 2025\nFrom: a@b.c\n\nx", b"From: a@b.c\n\nx"),
        (b"From: a@b.c\r\n\r\nx", b"From: a@b.c\r\n\r\nx"),  # a header field, not an envelope line
        (b"\r\nFrom MAILER-DAEMON Mon Nov 24\r\nFrom: a@b.c\r\n\r\nx", b"From: a@b.c\r\n\r\nx"),
    ],
)
def test_strip_mbox_line(given: bytes, expected: bytes) -> None:
    assert strip_mbox_line(given) == expected
