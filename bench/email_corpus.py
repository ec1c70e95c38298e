"""A mixed email corpus for the ingest benchmark (issue 17 item 7), generated, not read from fixtures.

`mixed_corpus(count)` gives `count` raw mails in a fixed, seeded mix: new mail; replies in three header styles
(In-Reply-To and References as Gmail writes them, References only, In-Reply-To only as Outlook writes them);
auto-replies; bounces (RFC 3464 reports about mail we did not send, which go to quarantine); Russian text in
UTF-8 with base64, KOI8-R with quoted-printable and windows-1251 as 8bit; HTML with attachments. Pure: no I/O.
"""

from __future__ import annotations

import base64
import quopri
import random
from collections.abc import Iterator
from dataclasses import dataclass

KINDS = (
    "new",
    "reply_gmail",
    "reply_references",
    "reply_outlook",
    "auto_reply",
    "bounce",
    "russian_utf8_base64",
    "russian_koi8r_qp",
    "russian_cp1251_8bit",
    "attachment",
)
RUSSIAN = "Здравствуйте! Мой заказ {n} ещё не пришёл. Подскажите, пожалуйста, когда ждать доставку?"
ENGLISH = "Hello, order {n} has not arrived yet. Could you tell me when to expect it?\n\nThanks,\n{name}"
NAMES = ("Carol", "Dmitry", "Aiko", "Olumide", "Grete", "Ines", "Mateo", "Priya")


@dataclass(frozen=True, slots=True)
class Mail:
    kind: str
    raw: bytes


def mixed_corpus(count: int, seed: int = 17) -> list[Mail]:
    """`count` mails, every kind in turn (replies answer earlier new mail of the corpus)."""
    rng = random.Random(seed)
    return list(_mails(count, rng))


def _mails(count: int, rng: random.Random) -> Iterator[Mail]:
    roots: list[tuple[str, str, str]] = []  # (message id, sender, subject) of new mail, for replies
    for n in range(count):
        kind = KINDS[n % len(KINDS)]
        name = NAMES[n % len(NAMES)]
        sender = f"{name.lower()}{n % 97}@customer{n % 7}.test"
        message_id = f"<c{n}.{rng.getrandbits(40):x}@customer.test>"
        subject = f"Order {1000 + n}"
        if kind.startswith("reply") or kind == "auto_reply":
            if roots:
                root_id, sender, subject = roots[rng.randrange(len(roots))]
            else:
                kind, root_id = "new", ""
        headers = [
            f"From: {name} <{sender}>",
            "To: Support <support@example.test>",
            f"Message-ID: {message_id}",
            f"Date: Sun, 22 Nov 2026 {10 + n % 12:02d}:{n % 60:02d}:00 +0000",
            "MIME-Version: 1.0",
        ]
        if kind == "new":
            roots.append((message_id, sender, subject))
            yield Mail(kind, _plain([*headers, f"Subject: {subject}"], ENGLISH.format(n=n, name=name)))
        elif kind == "reply_gmail":
            extra = [f"Subject: Re: {subject}", f"In-Reply-To: {root_id}", f"References: {root_id}"]
            body = f"One more thing: please ship to the office.\n\nOn Sun, {name} wrote:\n> {subject}\n"
            yield Mail(kind, _plain(headers + extra, body))
        elif kind == "reply_references":
            yield Mail(kind, _plain([*headers, f"Subject: Re: {subject}", f"References: {root_id}"], "Any news?"))
        elif kind == "reply_outlook":
            extra = [f"Subject: RE: {subject}", f"In-Reply-To: {root_id}", "Thread-Topic: order", "Thread-Index: AQHX"]
            body = f"Thanks!\n\n-----Original Message-----\nFrom: Support\nSubject: {subject}\n\nWe are on it."
            yield Mail(kind, _plain(headers + extra, body))
        elif kind == "auto_reply":
            extra = [f"Subject: Automatic reply: {subject}", f"In-Reply-To: {root_id}", "Auto-Submitted: auto-replied"]
            yield Mail(kind, _plain(headers + extra, "I am out of the office until Monday."))
        elif kind == "bounce":
            yield Mail(kind, _bounce(n, message_id))
        elif kind == "russian_utf8_base64":
            body = base64.encodebytes(RUSSIAN.format(n=n).encode("utf-8")).decode("ascii")
            yield Mail(kind, _leaf([*headers, f"Subject: {_word('Заказ', 'utf-8')} {n}"], "utf-8", "base64", body))
        elif kind == "russian_koi8r_qp":
            body = quopri.encodestring(RUSSIAN.format(n=n).encode("koi8-r")).decode("ascii")
            subject_words = f"Subject: {_word('Доставка', 'koi8-r')} {n}"
            yield Mail(kind, _leaf([*headers, subject_words], "koi8-r", "quoted-printable", body))
        elif kind == "russian_cp1251_8bit":
            head = "\r\n".join([*headers, f"Subject: {_word('Вопрос', 'windows-1251')} {n}"])
            content = "Content-Type: text/plain; charset=windows-1251\r\nContent-Transfer-Encoding: 8bit"
            yield Mail(kind, f"{head}\r\n{content}\r\n\r\n".encode() + RUSSIAN.format(n=n).encode("cp1251") + b"\r\n")
        else:
            roots.append((message_id, sender, subject))
            yield Mail(kind, _with_attachment([*headers, f"Subject: {subject} (invoice)"], n, rng))


def _word(text: str, charset: str) -> str:
    return f"=?{charset}?b?{base64.b64encode(text.encode(charset)).decode('ascii')}?="


def _plain(headers: list[str], body: str) -> bytes:
    return _leaf(headers, "utf-8", "8bit", body)


def _leaf(headers: list[str], charset: str, encoding: str, body: str) -> bytes:
    head = "\r\n".join(
        [*headers, f"Content-Type: text/plain; charset={charset}", f"Content-Transfer-Encoding: {encoding}"]
    )
    return f"{head}\r\n\r\n{body.replace(chr(10), chr(13) + chr(10))}\r\n".encode()


def _with_attachment(headers: list[str], n: int, rng: random.Random) -> bytes:
    boundary = f"=_b{n}"
    data = base64.encodebytes(rng.randbytes(2048 + n % 4096)).decode("ascii").replace("\n", "\r\n")
    head = "\r\n".join([*headers, f'Content-Type: multipart/mixed; boundary="{boundary}"'])
    parts = [
        'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n--alt\r\nContent-Type: text/plain; charset=utf-8'
        f"\r\n\r\nThe invoice {n} is attached.\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f'<p>The invoice <b>{n}</b> is attached.</p><img src="https://tracker.test/p.gif">\r\n--alt--',
        f'Content-Type: application/pdf; name="invoice-{n}.pdf"\r\nContent-Disposition: attachment; '
        f'filename="invoice-{n}.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n{data}',
    ]
    body = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--\r\n"
    return f"{head}\r\n\r\n{body}".encode()


def _bounce(n: int, message_id: str) -> bytes:
    original = f"<elsewhere{n}@other-system.test>"  # not ours: the report goes to quarantine
    boundary = f"=_r{n}"
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.customer.test>\r\nTo: support@example.test\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: {message_id}\r\n"
        "Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nAuto-Submitted: auto-replied\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.test\r\n\r\n"
        f"Final-Recipient: rfc822; nobody{n}@customer.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
        f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {original}\r\nSubject: hello\r\n\r\n"
        f"--{boundary}--\r\n"
    ).encode()
