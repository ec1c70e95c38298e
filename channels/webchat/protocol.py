"""The widget protocol as pure functions: signed tokens, identity hashes, the Origin rule, client-frame
validation, the visitor's view of a message, and a rate limiter with an injected clock.

Nothing here does I/O; `channels.webchat.channel` is the one class that does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from channels.base import Identity, IdentityKind, OutboundAttachment, ThreadMessage

MAX_CLIENT_ID = 64
MAX_IDENTITY_ID = 256
MAX_NAME = 200
MAX_EMAIL = 320


# ── signed tokens ───────────────────────────────────────────────────────────────────────────
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: str, payload: Mapping[str, Any]) -> str:
    """`<base64url JSON>.<base64url HMAC-SHA256>`: readable by anyone, forgeable by no one without `key`."""
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(key.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def unsign(key: str, token: Any, kind: str) -> dict[str, Any] | None:
    """The payload of a token of `kind` signed with `key`, or None for anything forged, altered or malformed."""
    if not isinstance(token, str) or token.count(".") != 1 or len(token) > 2048:
        return None
    body, mac = token.split(".")
    expected = _b64(hmac.new(key.encode(), body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(mac.encode(), expected.encode()):
        return None
    try:
        payload = json.loads(_unb64(body))
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("k") != kind:
        return None
    return payload


def new_visitor_id() -> str:
    return secrets.token_urlsafe(16)


def visitor_token(key: str, inbox_id: int, visitor_id: str) -> str:
    """The token the widget keeps: it names the visitor and the inbox it was issued for."""
    return sign(key, {"k": "visitor", "i": inbox_id, "v": visitor_id})


def visitor_of(key: str, inbox_id: int, token: Any) -> str | None:
    """The visitor id of a genuine token issued for this inbox, else None."""
    payload = unsign(key, token, "visitor")
    if payload is None or payload.get("i") != inbox_id or not isinstance(payload.get("v"), str):
        return None
    visitor: str = payload["v"]
    return visitor


# ── identity verification ───────────────────────────────────────────────────────────────────
def identity_hash(secret: str, user_id: str) -> str:
    """What the customer's server computes: hex HMAC-SHA256 of the user id keyed with the inbox secret."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def identity_ok(secret: str, user_id: str, given: Any) -> bool:
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(identity_hash(secret, user_id).encode(), given.strip().lower().encode())


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who is on the socket: the thread they read and write, and the identity their messages carry."""

    thread_key: str
    sender: Identity
    verified: bool


def visitor_for(inbox_id: int, visitor_id: str, claimed: ClaimedIdentity | None, secret: str) -> Visitor:
    """A verified identity gets the user's own thread; anyone else gets the thread of their visitor token.

    An unverified claim never reaches the user's thread, so it can never read a verified contact's history;
    its name and email are kept only as what the visitor told us.
    """
    if claimed is not None and identity_ok(secret, claimed.id, claimed.hash):
        sender = Identity(
            IdentityKind.WEBCHAT,
            f"{inbox_id}:user:{claimed.id}",
            name=claimed.name,
            email=claimed.email,
            verified=True,
        )
        return Visitor(f"user:{claimed.id}", sender, True)
    name = claimed.name if claimed else ""
    email = claimed.email if claimed else None
    sender = Identity(IdentityKind.WEBCHAT, f"{inbox_id}:visitor:{visitor_id}", name=name, email=email)
    return Visitor(f"visitor:{visitor_id}", sender, False)


def thread_key_of(inbox_id: int, sender_value: str) -> str:
    """The thread of a widget sender's identity value (`visitor_for` builds the one from the other)."""
    prefix = f"{inbox_id}:"
    return sender_value[len(prefix) :] if sender_value.startswith(prefix) else sender_value


def webchat_sender_of(data: Mapping[str, Any]) -> str | None:
    """The widget identity value a stored message's event names as its sender (`meta.identity`), if any."""
    meta = data.get("meta")
    identity = meta.get("identity") if isinstance(meta, Mapping) else None
    if not isinstance(identity, Mapping) or identity.get("kind") != str(IdentityKind.WEBCHAT):
        return None
    value = identity.get("value")
    return value if isinstance(value, str) else None


def upload_ticket(key: str, inbox_id: int, visitor: Visitor, expires: float) -> str:
    """Lets the widget upload files over HTTP as this visitor until `expires` (a Unix time)."""
    sender = visitor.sender
    return sign(
        key,
        {
            "k": "upload",
            "i": inbox_id,
            "t": visitor.thread_key,
            "s": sender.value,
            "n": sender.name,
            "m": sender.email,
            "v": visitor.verified,
            "e": int(expires),
        },
    )


def visitor_of_ticket(ticket: Mapping[str, Any]) -> Visitor:
    """The visitor an upload ticket (already verified with `unsign`) was issued to."""
    verified = ticket.get("v") is True
    sender = Identity(
        IdentityKind.WEBCHAT,
        str(ticket["s"]),
        name=str(ticket.get("n") or ""),
        email=ticket.get("m") if isinstance(ticket.get("m"), str) else None,
        verified=verified,
    )
    return Visitor(str(ticket["t"]), sender, verified)


# ── Origin ──────────────────────────────────────────────────────────────────────────────────
def origin_allowed(origin: str | None, allowed: tuple[str, ...], own: str) -> bool:
    """The widget's own frame (same origin as the server) is always allowed; others per the inbox list."""
    if not allowed:
        return True
    if origin is None:
        return False
    origin = origin.rstrip("/").lower()
    return origin == own.lower() or origin in allowed


# ── client frames ───────────────────────────────────────────────────────────────────────────
class FrameError(ValueError):
    """A client frame the server refuses; `code` goes into the error frame."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ClaimedIdentity:
    id: str
    name: str = ""
    email: str | None = None
    hash: str | None = None


@dataclass(frozen=True, slots=True)
class Hello:
    visitor_token: str | None
    after: int | None
    identity: ClaimedIdentity | None


@dataclass(frozen=True, slots=True)
class Send:
    client_id: str
    body: str


@dataclass(frozen=True, slots=True)
class Typing:
    active: bool


@dataclass(frozen=True, slots=True)
class Seen:
    message_id: int


@dataclass(frozen=True, slots=True)
class ContactInfo:
    name: str
    email: str | None


@dataclass(frozen=True, slots=True)
class Ping:
    pass


Frame = Hello | Send | Typing | Seen | ContactInfo | Ping


def parse_frame(text: str, *, max_chars: int) -> Frame:
    """Validate one client frame; raise `FrameError` naming the field for anything else."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise FrameError("malformed", f"frame: malformed JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise FrameError("malformed", "frame: expected a JSON object")
    kind = data.get("type")
    if kind == "hello":
        after = data.get("after")
        if after is not None and (isinstance(after, bool) or not isinstance(after, int) or after < 0):
            raise FrameError("invalid", "after: expected a message id or null")
        token = data.get("visitor_token")
        if token is not None and not isinstance(token, str):
            raise FrameError("invalid", "visitor_token: expected a string or null")
        return Hello(token, after, _identity(data.get("identity")))
    if kind == "message":
        client_id = data.get("client_id")
        if not isinstance(client_id, str) or not 0 < len(client_id) <= MAX_CLIENT_ID:
            raise FrameError("invalid", f"client_id: expected a string of 1 to {MAX_CLIENT_ID} characters")
        body = data.get("body")
        if not isinstance(body, str) or not body.strip():
            raise FrameError("invalid", "body: a message needs text")
        if len(body) > max_chars:
            raise FrameError("too_long", f"body: longer than {max_chars} characters")
        return Send(client_id, body)
    if kind == "typing":
        return Typing(data.get("active", True) is not False)
    if kind == "seen":
        message_id = data.get("message_id")
        if isinstance(message_id, bool) or not isinstance(message_id, int):
            raise FrameError("invalid", "message_id: expected a message id")
        return Seen(message_id)
    if kind == "contact":
        name = _text(data, "name", MAX_NAME) or ""
        return ContactInfo(name, _email(data.get("email")))
    if kind == "ping":
        return Ping()
    raise FrameError("unknown_type", f"type: unknown frame type {kind!r}")


def _identity(value: Any) -> ClaimedIdentity | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FrameError("invalid", "identity: expected an object with id, name, email, hash")
    user_id = value.get("id")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    if not isinstance(user_id, str) or not 0 < len(user_id) <= MAX_IDENTITY_ID:
        raise FrameError("invalid", f"identity.id: expected a string of 1 to {MAX_IDENTITY_ID} characters")
    given = value.get("hash")
    if given is not None and not isinstance(given, str):
        raise FrameError("invalid", "identity.hash: expected a hex string")
    return ClaimedIdentity(user_id, _text(value, "name", MAX_NAME) or "", _email(value.get("email")), given)


def _text(data: Mapping[str, Any], key: str, limit: int) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise FrameError("invalid", f"{key}: expected a string")
    value = " ".join(value.split())
    if len(value) > limit:
        raise FrameError("invalid", f"{key}: longer than {limit} characters")
    return value


def _email(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise FrameError("invalid", "email: expected a string")
    email: str = value.strip()
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain or len(email) > MAX_EMAIL or any(c.isspace() for c in email):
        raise FrameError("invalid", "email: not an email address")
    return email


# ── what the visitor sees ───────────────────────────────────────────────────────────────────
def external_id(sender_value: str, client_id: str) -> str:
    """The stored message's channel id: the same client_id from the same visitor stores once."""
    return f"webchat:{sender_value}:{client_id}"


def client_id_of(sender_value: str, stored_external_id: str | None) -> str | None:
    prefix = f"webchat:{sender_value}:"
    if stored_external_id and stored_external_id.startswith(prefix):
        return stored_external_id.removeprefix(prefix)
    return None


def message_view(
    message: ThreadMessage, sender_value: str, file_url: Callable[[int, int], str], *, now: datetime | None = None
) -> dict[str, Any]:
    """A message as the widget shows it: no notes, no internal fields, files behind signed links."""
    return {
        "id": message.id,
        "client_id": client_id_of(sender_value, message.external_id),
        "author": "visitor" if message.kind == "incoming" else "agent",
        "sender_name": message.sender_name if message.kind != "incoming" else "",
        "body": message.text,
        "created_at": (now or message.created_at).isoformat(),
        "attachments": [
            {
                "filename": item.filename,
                "content_type": item.content_type,
                "size": item.size,
                "url": file_url(message.id, index),
            }
            for index, item in enumerate(message.attachments)
        ],
    }


def thread_message_of(data: Mapping[str, Any]) -> ThreadMessage:
    """A stored message as the core's events carry it (`message.updated` data), for pushing to a visitor."""
    try:
        created = datetime.fromisoformat(str(data.get("created_at")))
    except ValueError:
        created = datetime.now(UTC)
    found = data.get("sender")
    sender: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    return ThreadMessage(
        id=int(data["id"]),
        conversation_id=int(data["conversation_id"]),
        kind=str(data.get("kind")),
        text=str(data.get("body") or ""),
        sender_name=str(sender.get("name") or ""),
        external_id=None,
        created_at=created,
        attachments=[
            OutboundAttachment(str(item.get("filename")), str(item.get("content_type")), int(item.get("size", 0)), "")
            for item in data.get("attachments") or []
            if isinstance(item, Mapping)
        ],
    )


def seen_up_to(messages: list[dict[str, Any]]) -> int | None:
    """The newest visitor message an agent has answered after: agents saw everything before their reply."""
    seen = None
    last_visitor = None
    for message in messages:
        if message["author"] == "visitor":
            last_visitor = message["id"]
        elif last_visitor is not None:
            seen = last_visitor
    return seen


# ── rate limits ─────────────────────────────────────────────────────────────────────────────
class RateLimiter:
    """A token bucket per key: `rate` actions per `per` seconds, bursts up to `rate`."""

    def __init__(self, rate: int, per: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.per = per
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> float | None:
        """Spend one token; None when allowed, else the seconds until the next token. A rate of 0 is no limit."""
        if self.rate <= 0:
            return None
        now = self.clock()
        if len(self._buckets) > 10_000:
            self._forget_full(now)
        tokens, stamp = self._buckets.get(key, (float(self.rate), now))
        tokens = min(float(self.rate), tokens + (now - stamp) * self.rate / self.per)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) * self.per / self.rate
        self._buckets[key] = (tokens - 1.0, now)
        return None

    def give_back(self, key: str) -> None:
        """Return the token of an action that did not happen after all (the server refused it as overloaded)."""
        if key in self._buckets:
            tokens, stamp = self._buckets[key]
            self._buckets[key] = (min(float(self.rate), tokens + 1.0), stamp)

    def _forget_full(self, now: float) -> None:
        for key, (tokens, stamp) in list(self._buckets.items()):
            if tokens + (now - stamp) * self.rate / self.per >= self.rate:
                del self._buckets[key]
