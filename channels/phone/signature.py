"""Signed call events: HMAC-SHA256 with the inbox's signing secret. Pure; the caller passes the clock.

The PBX sends two headers with every POST:
- `X-Switchboard-Timestamp`: unix seconds when it signed the event;
- `X-Switchboard-Signature`: `sha256=` and the lowercase hex HMAC-SHA256 of `<timestamp>.<raw body>`.

The timestamp is inside the MAC (as Stripe and Slack do it), because a timestamp that is not signed proves
nothing: anyone who saw one signed event could resend it with a fresh timestamp. An event signed more than
`max_skew` seconds from now (either way) is refused, so a captured event cannot be replayed later; within the
window a replay is harmless, because every event is idempotent.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "x-switchboard-signature"
TIMESTAMP_HEADER = "x-switchboard-timestamp"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Switchboard-Signature` value for `body` signed at `timestamp` (unix seconds, as sent)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signature_problem(
    secret: str, body: bytes, header: str | None, timestamp: str | None, *, now: float, max_skew: int
) -> str | None:
    """Why this request is not a fresh event signed with `secret`, or None when it is."""
    if not timestamp:
        return "missing X-Switchboard-Timestamp header"
    if not timestamp.isdigit() or len(timestamp) > 12:
        return "X-Switchboard-Timestamp: expected unix seconds"
    if abs(now - int(timestamp)) > max_skew:
        return f"X-Switchboard-Timestamp: more than {max_skew} seconds from now (a replay, or a clock off)"
    if not header:
        return "missing X-Switchboard-Signature header"
    if not hmac.compare_digest(header.strip().lower().encode(), signature(secret, timestamp, body).encode()):
        return "X-Switchboard-Signature does not match the body"
    return None
