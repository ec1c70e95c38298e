"""Threading and composing, pure: tokens, candidate order, participant rule, reply headers."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage

import pytest

from channels.email.compose import OutgoingFile, Reply, compose_reply, render_markdown, reply_subject
from channels.email.parse import parse_email
from channels.email.thread import (
    Candidate,
    candidates,
    conversation_token,
    decide,
    outbound_message_id,
    reply_address,
    verify_token,
)

SECRET = "inbox-secret"


def mail(headers: str, body: str = "hello") -> bytes:
    return (headers.strip() + "\r\n\r\n" + body + "\r\n").encode()


def test_token_round_trip_and_forgery() -> None:
    token = conversation_token(42, SECRET)
    assert verify_token(token, SECRET) == 42
    assert verify_token(token, "other-secret") is None
    assert verify_token(token.replace("c42-", "c43-"), SECRET) is None
    assert verify_token("c42-aaaaaaaaaaaaaaaa", SECRET) is None
    assert verify_token("garbage", SECRET) is None


def test_outbound_message_id_is_stable_across_retries() -> None:
    first = outbound_message_id(7, 3, "5f0c-11aa-22bb", SECRET, "example.test")
    assert first == outbound_message_id(7, 3, "5f0c-11aa-22bb", SECRET, "example.test")
    assert first.startswith(f"<{conversation_token(7, SECRET)}.m3.") and first.endswith("@example.test>")


def test_candidates_in_priority_order() -> None:
    ours = outbound_message_id(5, 1, "d1", SECRET, "example.test")
    forged = "<c9-aaaaaaaaaaaaaaaa.m1.x@example.test>"
    raw = mail(
        f"""From: c@customer.test
To: support+{conversation_token(6, SECRET)}@example.test
Subject: Re: help [#8]
Message-ID: <new@customer.test>
In-Reply-To: <theirs@customer.test>
References: <root@customer.test> {ours} {forged}"""
    )
    found = candidates(parse_email(raw), SECRET)
    assert found == [
        Candidate("threaded by In-Reply-To", message_id="<theirs@customer.test>"),
        Candidate("threaded by References", message_id=forged),  # newest first; a forged token is only an id
        Candidate("threaded by References", conversation_id=5),
        Candidate("threaded by References", message_id="<root@customer.test>"),
        Candidate("threaded by reply+ address", conversation_id=6),
        Candidate("threaded by subject tag [#8]", conversation_id=8),
    ]


def test_decide_requires_a_participant() -> None:
    refs = Candidate("threaded by References", conversation_id=5)
    tag = Candidate("threaded by subject tag [#9]", conversation_id=9)
    assert decide("c@x.test", [(refs, 5, frozenset({"c@x.test"}))]).reason == "threaded by References"
    # Zammad#5064: another customer's mail must not join this conversation, even with a matching tag.
    refused = decide("mallory@evil.test", [(tag, 9, frozenset({"c@x.test"}))])
    assert refused.conversation_id is None
    assert refused.reason == "new conversation: mallory@evil.test is not a participant of conversation 9"
    # The first usable candidate wins; an unknown one is skipped.
    assert decide("c@x.test", [(refs, None, frozenset()), (tag, 9, frozenset({"c@x.test"}))]).conversation_id == 9
    assert decide("c@x.test", []).reason == "new conversation"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Order 12", "Re: Order 12 [#4]"),
        ("Re: RE: Aw: Order 12", "Re: Order 12 [#4]"),
        ("Re: Order 12 [#4]", "Re: Order 12 [#4]"),
        ("", "Re: [#4]"),
    ],
)
def test_reply_subject(subject: str, expected: str) -> None:
    assert reply_subject(subject, 4) == expected


def test_markdown_is_rendered_and_sanitised() -> None:
    html = render_markdown("**bold** <script>alert(1)</script> [x](javascript:alert(1)) [ok](https://ok.test)")
    assert "<strong>bold</strong>" in html
    assert "<script>" not in html and 'href="javascript' not in html
    assert 'href="https://ok.test"' in html


def test_compose_reply_headers_parts_and_attachments() -> None:
    composed = compose_reply(
        Reply(
            from_name="Ann\r\nBcc: evil@x.test",
            from_address="support@example.test",
            to=["carol@customer.test"],
            cc=["dave@customer.test"],
            message_id="<c1-x.m2.y@example.test>",
            markdown="Hello **Carol**",
            subject="Re: Order",
            conversation_number=1,
            reply_to="support+c1-x@example.test",
            in_reply_to="<q@customer.test>",
            references=["<root@customer.test>", "<q@customer.test>"],
            signature="Ann, Support",
            attachments=[OutgoingFile("invoice.pdf", "application/pdf", b"%PDF-1.4")],
            automatic=True,
        )
    )
    parsed = email.message_from_bytes(composed.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["From"].addresses[0].display_name == "Ann Bcc: evil@x.test"
    assert "Bcc" not in parsed
    assert parsed["In-Reply-To"] == "<q@customer.test>"
    assert parsed["References"] == "<root@customer.test> <q@customer.test>"
    assert parsed["Reply-To"] == "support+c1-x@example.test"
    assert parsed["Cc"] == "dave@customer.test"
    assert parsed["Subject"] == "Re: Order [#1]"
    assert parsed["Auto-Submitted"] == "auto-replied"
    body = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert body is not None and html is not None
    assert "Hello **Carol**" in body.get_content() and "-- \nAnn, Support" in body.get_content()
    assert "<strong>Carol</strong>" in html.get_content()
    files = [part.get_filename() for part in parsed.iter_attachments()]
    assert files == ["invoice.pdf"]


def test_human_reply_has_no_auto_submitted() -> None:
    composed = compose_reply(Reply("Ann", "s@example.test", ["c@x.test"], "<a@example.test>", "hi", "s", 1))
    assert "Auto-Submitted" not in composed
    assert "In-Reply-To" not in composed


def test_reply_address() -> None:
    assert reply_address("help@example.test", 3, SECRET) == f"help+{conversation_token(3, SECRET)}@example.test"
