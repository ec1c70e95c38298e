"""parse_email over real-shaped .eml fixtures: each fixture's expected outcome in one table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from channels.email.parse import MailError, cap_headers, normalise_filename, parse_email

DATA = Path(__file__).resolve().parent / "data" / "email"

# name → expected outcome. Keys: sender, name, subject, visible (substring), not_visible, quoted (substring),
# html (substrings), no_html (substrings absent), files (attachment names), auto (substring; None = human),
# report (original id, action), defect (substring of a defect), error (MailError substring), text (substring).
CASES: dict[str, dict[str, Any]] = {
    "plain_ascii": {"sender": "carol@customer.test", "name": "Carol Customer", "subject": "Order 1234 has not arrived", "visible": "order 1234", "auto": None, "files": []},
    "utf8_quoted_printable": {"name": "Jürgen Müller", "subject": "Rückerstattung für Bestellung", "visible": "Rückerstattung für meine Bestellung. Grüße"},
    "latin1_base64": {"subject": "Problème de facture", "visible": "erronée. Merci d'avance, Zoé"},
    "declared_ascii_but_utf8": {"visible": "Ça coûte 20 € — trop cher.", "defect": "used utf-8"},
    "declared_utf8_but_cp1252": {"visible": "20€ – “too much”", "defect": "used cp1252"},
    "unknown_charset": {"visible": "Grüße aus Köln", "defect": "x-made-up-charset"},
    "raw_8bit_headers": {"name": "Søren Ødegård", "subject": "Spørsmål om levering", "visible": "når kommer"},
    "iso2022jp": {"name": "山田", "subject": "お問い合わせ", "visible": "注文について質問です。"},
    "gmail_reply": {"visible": "Thanks, it arrived today!", "not_visible": "shipped it again", "quoted": "wrote:", "html": ['class="gmail_quote"'], "no_html": ["style="]},
    "gmail_wrapped_attribution": {"visible": "Still cannot log in.", "not_visible": "reset your password", "quoted": "Please reset"},
    "outlook_reply": {"name": "Miller, Frank", "visible": "Please send the new contract.", "not_visible": "expires soon", "quoted": "Sent: Sunday", "html": ['id="divRplyFwdMsg"'], "no_html": ["<style", "p{margin"]},
    "outlook_original_message": {"visible": "Paid yesterday.", "not_visible": "invoice is due", "quoted": "-----Original Message-----"},
    "apple_mail_reply": {"visible": "serial is 998877", "not_visible": "send the serial", "html": ['<blockquote type="cite">']},
    "thunderbird_signature": {"visible": "Raising the limit", "not_visible": "CTO", "quoted": "Ivan Petrov"},
    "german_reply": {"visible": "Danke, alles angekommen.", "not_visible": "unterwegs", "quoted": "schrieb"},
    "nested_multipart": {"visible": "See the screenshot and the log.", "files": ["shot.png", "log.pdf"], "html": ['data-attachment-index="0"'], "no_html": ["cid:"]},
    "cid_inline_image": {"files": ["attachment.png"], "html": ['<img src="" data-attachment-index="0">'], "text": "This dialog appears:"},
    "remote_images": {"html": ['data-blocked-src="https://tracker.test/pixel.gif?u=42"', 'data-blocked-src="http://cdn.test/logo.png"'], "no_html": [' src="http', "url(", "style="]},
    "html_only": {"text": "How do I export my data?", "html": ["<h1>Question</h1>", "<b>export</b>"], "no_html": ["<title", "color:red"]},
    "html_xss": {"html": ['href="https://ok.test/"', 'rel="noopener noreferrer nofollow"'], "no_html": ["<script", "onerror", "onclick", "javascript:", "<iframe", "<svg", "<form", "<input", "<style", "<object", "data:image", "target="]},
    "subject_xss": {"subject": "<script>alert('subject')</script> <img src=x onerror=alert(1)>"},
    "display_name_xss": {"sender": "mallory@evil.test", "name": "<img src=x onerror=alert(1)> Support Bcc: x@evil.test"},
    "filename_path_traversal": {"files": ["passwd"]},
    "filename_rtl_override": {"files": ["invoicefdp.exe"]},
    "filename_windows_path": {"files": ["evil.bat"]},
    "filename_rfc2231_combining": {"files": ["résumé.pdf"]},
    "filename_missing": {"files": ["attachment.bin"]},
    "filename_fullwidth": {"files": ["file.txt"]},
    "filename_control_chars": {"files": ["report.txt"]},
    "filename_dotfile": {"files": ["htaccess"]},
    "huge_headers": {"sender": "pat@client.test", "subject": "many headers", "visible": "body survives", "defect": "headers truncated"},
    "huge_single_header": {"sender": "pat@client.test", "subject": "", "visible": "body after a giant subject", "defect": "headers truncated"},
    "broken_no_boundary": {"visible": "no boundary parameter", "defect": "NoBoundaryInMultipartDefect", "files": []},
    "broken_missing_end_boundary": {"visible": "The end boundary never comes.", "defect": "CloseBoundaryNotFoundDefect"},
    "broken_base64": {"sender": "quinn@client.test", "defect": "Base64"},
    "no_message_id": {"visible": "broken script", "message_id_synthesised": True},
    "auto_submitted_ooo": {"auto": "Auto-Submitted: auto-replied"},
    "x_autoreply": {"auto": "X-Autoreply"},
    "x_autorespond": {"auto": "X-Autorespond"},
    "precedence_bulk": {"auto": "Precedence: bulk"},
    "mailing_list": {"auto": "List-Id"},
    "empty_return_path": {"auto": "empty Return-Path"},
    "mailer_daemon_plain": {"auto": "mailer daemon", "report": None},
    "dsn_failed": {"auto": "Auto-Submitted", "report": ("<c7-abcdefghijklmnop.m3.abc@example.test>", "failed"), "reason": "550 5.1.1 <nobody@customer.test>: Recipient address rejected"},
    "dsn_delayed_headers_only": {"auto": "empty Return-Path", "report": ("<c9-abcdefghijklmnop.m4.def@example.test>", "delayed")},
    "read_receipt_mdn": {"auto": "multipart/report", "report": None},
    "forwarded_message": {"visible": "Forwarding the complaint", "files": ["complaint.eml"]},
    "garbage_not_mail": {"error": "no header section"},
    "no_sender": {"error": "no sender"},
    "reply_with_references": {"in_reply_to": ("<agent-ext-1@example.test>",), "references": ("<root-1@customer.test>", "<middle-1@example.test>", "<agent-ext-1@example.test>")},
    "oversized_fields": {"sender": "carol@customer.test", "message_id_synthesised": True, "references": ("<short@x.test>",), "in_reply_to": (), "visible": "oversized fields"},
    "calendar_invite": {"files": ["attachment.ics"], "visible": "Monday"},
    "smime_signed": {"files": ["smime.p7s"], "visible": "Signed content."},
    "display_name_crlf": {"sender": "r@cust.test", "name": "Ann Bcc: x@evil.test", "visible": "My parcel is late."},
    "mbox_from_line": {"sender": "carol@customer.test", "name": "Carol Customer", "subject": "Saved from an mbox file"},
}  # fmt: skip


def test_every_fixture_has_an_expected_outcome() -> None:
    files = {path.stem for path in DATA.glob("*.eml")}
    assert files == set(CASES)
    assert len(files) >= 40


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture(name: str) -> None:
    raw = (DATA / f"{name}.eml").read_bytes()
    expected = CASES[name]
    if "error" in expected:
        with pytest.raises(MailError, match=expected["error"]):
            parse_email(raw)
        return
    mail = parse_email(raw)
    assert mail.message_id.startswith("<") and mail.message_id.endswith(">")
    if expected.get("message_id_synthesised"):
        assert mail.message_id.endswith("@switchboard.invalid>")
    if "sender" in expected:
        assert mail.from_address == expected["sender"]
    if "name" in expected:
        assert mail.from_name == expected["name"]
    if "subject" in expected:
        assert mail.subject == expected["subject"]
    if "visible" in expected:
        assert expected["visible"] in mail.visible_text
    if "not_visible" in expected:
        assert expected["not_visible"] not in mail.visible_text
        assert expected["not_visible"] in mail.text  # the full original is kept
    if "quoted" in expected:
        assert expected["quoted"] in mail.quoted_text
    if "text" in expected:
        assert expected["text"] in mail.text
    for snippet in expected.get("html", []):
        assert mail.html is not None and snippet in mail.html
    for snippet in expected.get("no_html", []):
        assert mail.html is not None and snippet not in mail.html
    if "files" in expected:
        assert [item.filename for item in mail.attachments] == expected["files"]
    if "auto" in expected:
        if expected["auto"] is None:
            assert mail.automatic is None
        else:
            assert mail.automatic is not None and expected["auto"] in mail.automatic
    else:
        assert mail.automatic is None
    if "report" in expected:
        if expected["report"] is None:
            assert mail.report is None
        else:
            assert mail.report is not None
            assert (mail.report.original_message_id, mail.report.action) == expected["report"]
    if "reason" in expected:
        assert mail.report is not None and expected["reason"] in mail.report.reason
    if "defect" in expected:
        assert any(expected["defect"] in defect for defect in mail.defects), mail.defects
    if "in_reply_to" in expected:
        assert mail.in_reply_to == expected["in_reply_to"]
        assert mail.references == expected["references"]
    assert len(mail.subject) <= 998 and len(mail.from_name) <= 200 and len(mail.message_id) <= 512
    assert all(len(address) <= 254 for address in (mail.from_address, *mail.recipients))
    for text in (mail.from_name, mail.subject, *(item.filename for item in mail.attachments)):
        assert not any(ord(ch) < 32 or 0x202A <= ord(ch) <= 0x202E for ch in text)


def test_headers_are_capped_before_parsing_and_stay_fast() -> None:
    hostile = b"From: a@b.test\r\nSubject: " + b"=?UTF-8?Q?a?= " * 200_000 + b"\r\n\r\nbody\r\n"
    capped, cut = cap_headers(hostile, 65_536)
    assert cut and len(capped) < 65_600
    started = time.perf_counter()
    mail = parse_email(hostile)
    assert mail.visible_text == "body"
    assert time.perf_counter() - started < 5  # generous: uncapped, this input takes minutes


def test_oversized_mail_is_refused_with_a_clear_error() -> None:
    with pytest.raises(MailError, match="larger than the 100-byte limit"):
        parse_email(b"From: a@b.test\r\n\r\n" + b"x" * 200, max_bytes=100)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../a.txt", "a.txt"),
        ("", "attachment.bin"),
        ("..", "attachment.bin"),
        ("a\u200bb\u202e.txt", "ab.txt"),
        ("x" * 300 + ".pdf", "x" * 196 + ".pdf"),
    ],
)
def test_normalise_filename(raw: str, expected: str) -> None:
    assert normalise_filename(raw) == expected
