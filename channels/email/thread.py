"""Threading: which conversation an inbound mail belongs to, and why. Pure functions.

Our outbound Message-IDs carry a signed conversation token (`<c42-<sig>.m7.<delivery>@domain>`), so a
reply to one of ours finds its conversation even without any index. Candidates are tried in order:
In-Reply-To, References newest first, a `reply+<token>@` recipient, a `[#<number>]` subject tag. A match
counts only when the sender is a participant of that conversation; otherwise a new conversation opens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from channels.email.parse import ParsedMail

TOKEN = re.compile(r"c(\d{1,18})-([a-z2-7]{16})")
OUR_ID = re.compile(r"^<" + TOKEN.pattern + r"\.")
REPLY_PLUS = re.compile(r"^[^@+]+\+(" + TOKEN.pattern + r")@", re.I)
SUBJECT_TAG = re.compile(r"\[#(\d{1,18})\]")


def conversation_token(conversation_id: int, secret: str) -> str:
    """`c<id>-<signature>`: names a conversation and cannot be forged without the inbox secret."""
    digest = hmac.new(secret.encode(), f"conversation:{conversation_id}".encode(), hashlib.sha256).digest()
    return f"c{conversation_id}-{base64.b32encode(digest[:10]).decode().lower()}"


def verify_token(token: str, secret: str) -> int | None:
    """The conversation id in a genuine token, else None."""
    match = TOKEN.fullmatch(token.lower())
    if match is None:
        return None
    conversation_id = int(match.group(1))
    return conversation_id if hmac.compare_digest(conversation_token(conversation_id, secret), token.lower()) else None


def outbound_message_id(conversation_id: int, message_id: int, delivery_id: str, secret: str, domain: str) -> str:
    """Our Message-ID for one reply; the same across retries of that reply."""
    tail = re.sub(r"[^a-z0-9]", "", delivery_id.lower())[:12] or "0"
    return f"<{conversation_token(conversation_id, secret)}.m{message_id}.{tail}@{domain}>"


def reply_address(address: str, conversation_id: int, secret: str) -> str:
    """`local+<token>@domain` for the Reply-To of a reply, when `reply_plus` is on."""
    local, _, domain = address.partition("@")
    return f"{local}+{conversation_token(conversation_id, secret)}@{domain}"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One way this mail might belong to a conversation: a known conversation id or a Message-ID to look up."""

    reason: str
    conversation_id: int | None = None
    message_id: str | None = None


def candidates(mail: ParsedMail, secret: str, *, extra_recipients: Iterable[str] = ()) -> list[Candidate]:
    """Every threading clue in priority order (duplicates kept: the first usable one wins)."""
    found: list[Candidate] = []
    for reason, ids in (("In-Reply-To", mail.in_reply_to), ("References", tuple(reversed(mail.references)))):
        for value in ids:
            match = OUR_ID.match(value.lower())
            if match is not None:
                verified = verify_token(f"c{match.group(1)}-{match.group(2)}", secret)
                if verified is not None:
                    found.append(Candidate(f"threaded by {reason}", conversation_id=verified))
                    continue
            found.append(Candidate(f"threaded by {reason}", message_id=value))
    for address in (*mail.recipients, *extra_recipients):
        plus = REPLY_PLUS.match(address)
        if plus is not None:
            verified = verify_token(plus.group(1), secret)
            if verified is not None:
                found.append(Candidate("threaded by reply+ address", conversation_id=verified))
    for tag in SUBJECT_TAG.findall(mail.subject):
        found.append(Candidate(f"threaded by subject tag [#{tag}]", conversation_id=int(tag)))
    return found


@dataclass(frozen=True, slots=True)
class Decision:
    """Where the mail goes: an existing conversation (with the reason) or a new one (with the reason)."""

    conversation_id: int | None
    reason: str


def decide(sender: str, tried: Sequence[tuple[Candidate, int | None, frozenset[str]]]) -> Decision:
    """Pick the first candidate whose conversation exists and has `sender` as a participant."""
    refused: int | None = None
    for candidate, conversation_id, participants in tried:
        if conversation_id is None:
            continue
        if sender.lower() in participants:
            return Decision(conversation_id, candidate.reason)
        refused = refused or conversation_id
    if refused is not None:
        return Decision(None, f"new conversation: {sender} is not a participant of conversation {refused}")
    return Decision(None, "new conversation")
