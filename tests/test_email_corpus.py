"""The ingest benchmark's generated corpus (bench/email_corpus.py) is the mix issue 17 item 7 asks for."""

from __future__ import annotations

from collections import Counter

from bench.email_corpus import KINDS, mixed_corpus
from channels.email.parse import parse_email


def test_the_generated_corpus_is_mixed_and_every_mail_parses() -> None:
    corpus = mixed_corpus(200)
    assert len(corpus) == 200 and Counter(mail.kind for mail in corpus).keys() == set(KINDS)
    assert len({parse_email(mail.raw).message_id for mail in corpus}) == 200
    for mail in corpus:
        parsed = parse_email(mail.raw)
        if mail.kind.startswith("russian"):
            assert "Здравствуйте" in parsed.text and parsed.subject.split()[0] in ("Заказ", "Доставка", "Вопрос")
            assert not parsed.defects, (mail.kind, parsed.defects)
        if mail.kind == "bounce":
            assert parsed.report is not None and parsed.report.failed
        if mail.kind == "auto_reply":
            assert parsed.automatic
        if mail.kind.startswith("reply"):
            assert parsed.in_reply_to or parsed.references
        if mail.kind == "attachment":
            assert [item.content_type for item in parsed.attachments] == ["application/pdf"] and parsed.html
    assert mixed_corpus(50) == mixed_corpus(50)  # seeded: every run measures the same mail
