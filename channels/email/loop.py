"""Loop and bounce safety: is a mail machine-generated, and is it a delivery report for one of ours?

Machine mail (auto-replies, bulk and list mail, bounces) never triggers an automatic reply. A delivery
status notification (RFC 3464) that names one of our Message-IDs marks that message failed. Pure functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

BOUNCE_SENDERS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mail delivery subsystem)@", re.I)
MESSAGE_ID = re.compile(r"<[^<>\s]{1,900}>")


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What a DSN says: which of our messages failed and why."""

    original_message_id: str | None
    action: str  # failed | delayed | delivered | relayed | expanded | unknown
    status: str  # e.g. "5.1.1"
    reason: str  # a sentence to show the agent

    @property
    def failed(self) -> bool:
        return self.action == "failed"


def _get(message: Message, name: str) -> str:
    try:
        value = message.get(name)
    except Exception:
        return ""
    return "" if value is None else str(value).strip()


def automatic_reason(message: Message, from_address: str) -> str | None:
    """Why this mail is machine-generated (a short label), or None for mail a person wrote."""
    auto = _get(message, "auto-submitted").lower()
    if auto and auto.split(";")[0].strip() != "no":
        return f"Auto-Submitted: {auto.split(';')[0].strip()}"
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder"):
        if name in message:
            return f"{name.title()} header"
    if _get(message, "x-auto-response-suppress").lower() in ("all", "oof", "autoreply"):
        return "X-Auto-Response-Suppress header"
    precedence = _get(message, "precedence").lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    if "list-id" in message or "list-unsubscribe" in message:
        return "mailing list (List-Id)"
    if "return-path" in message and _get(message, "return-path").strip("<> ") == "":
        return "empty Return-Path (bounce)"
    if BOUNCE_SENDERS.match(from_address):
        return "sent by a mailer daemon"
    if message.get_content_type() == "multipart/report":
        return "delivery or read report (multipart/report)"
    return None


def delivery_report(message: Message) -> DeliveryReport | None:
    """Read an RFC 3464 delivery status notification; None for any other mail."""
    if message.get_content_type() != "multipart/report":
        return None
    if (message.get_param("report-type") or "").lower() != "delivery-status":  # type: ignore[union-attr]
        return None
    action, status, diagnostic, original = "unknown", "", "", None
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            blocks = part.get_payload()
            for block in blocks if isinstance(blocks, list) else ():
                if not isinstance(block, Message) or "action" not in block:
                    continue
                action = _get(block, "action").lower() or action
                status = _get(block, "status") or status
                diagnostic = " ".join(_get(block, "diagnostic-code").split()) or diagnostic
                if action == "failed":
                    break
        elif ctype in ("message/rfc822", "message/global") and original is None:
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                original = _first_id(_get(inner[0], "message-id"))
        elif ctype in ("text/rfc822-headers", "message/rfc822-headers") and original is None:
            payload = part.get_payload(decode=True)
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(part.get_payload())
            found = re.search(r"^Message-ID:\s*(<[^<>\s]+>)", text, re.I | re.M)
            original = found.group(1) if found else None
    reason = f"delivery {action}"
    if status:
        reason += f" ({status})"
    if diagnostic:
        reason += f": {diagnostic[:500]}"
    return DeliveryReport(original, action, status, reason)


def _first_id(value: str) -> str | None:
    found = MESSAGE_ID.search(value)
    return found.group(0) if found else None
