"""Graph API errors → `DeliveryError`, and readable reasons for WhatsApp's error codes. Pure: no I/O.

Graph answers errors as `{"error": {"message", "type", "code", "error_data": {"details"}, "fbtrace_id"}}`;
delivery receipts carry the same codes in `statuses[].errors[]` as `{"code", "title", "message",
"error_data": {"details"}}`. Meta recommends deciding on `code` (titles will go away), so this module does.

    transient (retry_after set)                    permanent (retry_after None)
    ├─ HTTP 429, or a throttling code:             ├─ 131047 outside the 24-hour window
    │  4 app calls · 80007 WABA · 130429 throughput│  (send an approved template instead)
    │  131048 spam limit · 131056 pair rate        ├─ 131026 undeliverable · 190/0 token · 10/2xx permission
    └─ HTTP 5xx, 1/2 API, 131000, 131016            └─ any other 4xx: Graph's own message
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from channels.base import DeliveryError

# Seconds to wait before the next try when Graph gives no Retry-After. 131056 is the pair rate (about one
# message every 6 s to the same customer); 131048 is a quality-based limit that lifts slowly.
THROTTLED: dict[int, tuple[float, str]] = {
    4: (60.0, "the app reached its Graph API call limit"),
    80007: (60.0, "the WhatsApp Business Account reached its rate limit"),
    130429: (5.0, "the phone number reached its message throughput limit"),
    131048: (600.0, "spam rate limit: too many earlier messages were blocked or reported"),
    131056: (6.0, "pair rate limit: too many messages to this customer in a short time"),
}
TRANSIENT: dict[int, str] = {
    1: "unknown API error",
    2: "the API is temporarily unavailable",
    131000: "something went wrong at WhatsApp",
    131016: "the WhatsApp service is temporarily unavailable",
}
TRANSIENT_SECONDS = 5.0
WINDOW_CLOSED = 131047
UNDELIVERABLE = 131026
PERMANENT: dict[int, str] = {
    0: "WhatsApp could not authenticate the access token: update the inbox's access_token",
    10: "the access token lacks a permission (whatsapp_business_messaging): update the inbox's access_token",
    100: "WhatsApp rejected a parameter of the message",
    190: "the access token has expired or was revoked: update the inbox's access_token",
    WINDOW_CLOSED: (
        "outside WhatsApp's 24-hour customer-service window (the customer has not written in the last 24 hours): "
        "only an approved template can be sent now"
    ),
    131008: "a required parameter is missing",
    131009: "a parameter value is not valid",
    UNDELIVERABLE: (
        "WhatsApp could not deliver the message (the number may not use WhatsApp, may have blocked the business "
        "or may not have accepted WhatsApp's current terms)"
    ),
    131051: "WhatsApp does not support this message type",
    131052: "the customer's media could not be downloaded",
    131053: "the media could not be uploaded (check its size and type)",
    132000: "the template's parameters do not match its placeholders",
    132001: "the template does not exist in that language, or is not approved yet",
}


def describe(code: int | None, title: str = "", details: str = "") -> str:
    """A sentence for agents: our reading of the code, then WhatsApp's own details, then the code."""
    known = None if code is None else (PERMANENT.get(code) or TRANSIENT.get(code) or _throttled(code))
    base = known or title or "WhatsApp refused the message"
    extra = details if details and details not in base else ""
    text = f"{base}: {extra}" if extra else base
    return f"{text} (WhatsApp error {code})" if code is not None else text


def _throttled(code: int) -> str | None:
    found = THROTTLED.get(code)
    return found[1] if found else None


def error_fields(error: Any) -> tuple[int | None, str, str]:
    """(code, title or message, details) of one Graph/receipt error object, tolerating missing parts."""
    if not isinstance(error, Mapping):
        return None, "", ""
    code = error.get("code")
    try:
        number = int(code) if code is not None else None  # some relays send the code as a string
    except (TypeError, ValueError):
        number = None
    title = error.get("title") or error.get("message") or ""
    data = error.get("error_data")
    details = data.get("details", "") if isinstance(data, Mapping) else ""
    return number, str(title), str(details or "")


def graph_error(status: int, body: Any, retry_after_header: str | None = None) -> DeliveryError:
    """The `DeliveryError` for one failed Graph call (HTTP `status`, parsed JSON `body` or None)."""
    error = body.get("error") if isinstance(body, Mapping) else None
    code, title, details = error_fields(error)
    header = _seconds(retry_after_header)
    if code in THROTTLED or status == 429:
        default = THROTTLED[code][0] if code is not None and code in THROTTLED else TRANSIENT_SECONDS
        wait = header if header is not None else default
        reason = describe(code, title, details) if code is not None else f"WhatsApp rate limit (HTTP {status})"
        return DeliveryError(f"{reason}; retry in {wait:g} s", retry_after=wait)
    if code in TRANSIENT or status >= 500:
        wait = header if header is not None else TRANSIENT_SECONDS
        reason = describe(code, title, details) if code is not None else f"WhatsApp answered HTTP {status}"
        return DeliveryError(f"{reason}; retry in {wait:g} s", retry_after=wait)
    if code is None:
        return DeliveryError(f"WhatsApp refused the message (HTTP {status})")
    return DeliveryError(describe(code, title, details))


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare from Graph; the code's default applies
    return seconds if seconds >= 0 else None
