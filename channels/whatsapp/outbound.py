"""Building an agent's reply for the Graph API (`POST /{phone_number_id}/messages` bodies), the 24-hour
customer-service window, and templates as listed by `GET /{waba_id}/message_templates`. Pure: no I/O.

A reply becomes its text parts (WhatsApp takes at most 4096 characters per text message), then one media
message per attachment (uploaded first; `media_request` takes the uploaded id). An outbound whose
`metadata["whatsapp_template"]` is set is sent as that approved template instead of free text: outside
the window nothing else may be sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from channels.base import DeliveryError, Outbound

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
WINDOW = timedelta(hours=24)
TEMPLATE_KEY = "whatsapp_template"
IMAGE_TYPES = {"image/jpeg", "image/png"}
VIDEO_TYPES = {"video/mp4", "video/3gpp"}
AUDIO_TYPES = {"audio/aac", "audio/mp4", "audio/mpeg", "audio/amr", "audio/ogg"}


@dataclass(frozen=True, slots=True)
class Template:
    """An approved message template: what an agent may send outside the 24-hour window."""

    name: str
    language: str
    category: str
    body: str  # the BODY component's text with its {{1}}/{{name}} placeholders
    parameter_count: int


# ── the window ──────────────────────────────────────────────────────────────────────────────────
def window_open(last_incoming: datetime | None, now: datetime) -> bool:
    """Whether free-form messages may be sent: the customer wrote less than 24 hours before `now`.

    Naive datetimes are read as UTC. No incoming message at all means the window was never opened.
    """
    if last_incoming is None:
        return False
    return _aware(now) - _aware(last_incoming) < WINDOW


def window_closes_at(last_incoming: datetime) -> datetime:
    return _aware(last_incoming) + WINDOW


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# ── requests ────────────────────────────────────────────────────────────────────────────────────
def recipient(message: Outbound) -> str:
    """The wa_id to send to (digits only) from the conversation's thread key ("+4915112345678")."""
    digits = message.thread_key.removeprefix("+")
    if not (digits.isascii() and digits.isdigit() and 6 <= len(digits) <= 15):
        raise DeliveryError(
            f"conversation {message.conversation_id} has no WhatsApp number (thread {message.thread_key!r})"
        )
    return digits


def _base(to: str, kind: str) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": kind}


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Parts of at most `limit` characters, cut at a line break or space in the second half when there is one."""
    text = text.strip()
    parts: list[str] = []
    while len(text) > limit:
        cut = max(text.rfind("\n", limit // 2, limit), text.rfind(" ", limit // 2, limit))
        cut = cut if cut > 0 else limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        parts.append(text)
    return parts


def text_requests(to: str, text: str, *, reply_to: str | None = None) -> list[dict[str, Any]]:
    """One text message per part; the first quotes `reply_to` (a wamid) when given."""
    requests: list[dict[str, Any]] = []
    for part in split_text(text):
        request = _base(to, "text")
        request["text"] = {"preview_url": False, "body": part}
        if reply_to and not requests:
            request["context"] = {"message_id": reply_to}
        requests.append(request)
    return requests


def media_kind(content_type: str) -> str:
    """How WhatsApp takes a file of this type: image, video, audio or (anything else) document."""
    bare = content_type.split(";", 1)[0].strip().lower()
    if bare in IMAGE_TYPES:
        return "image"
    if bare in VIDEO_TYPES:
        return "video"
    if bare in AUDIO_TYPES:
        return "audio"
    return "document"


def media_request(to: str, kind: str, media_id: str, filename: str) -> dict[str, Any]:
    request = _base(to, kind)
    request[kind] = {"id": media_id, "filename": filename} if kind == "document" else {"id": media_id}
    return request


def template_of(message: Outbound) -> Mapping[str, Any] | None:
    """The template an outbound asks for: `{"name", "language"?, "parameters"? | "components"?}`."""
    found = message.metadata.get(TEMPLATE_KEY)
    if found is None:
        return None
    if not isinstance(found, Mapping) or not isinstance(found.get("name"), str) or not found["name"]:
        raise DeliveryError(f"metadata.{TEMPLATE_KEY}: expected an object with a template name")
    return found


def template_request(to: str, template: Mapping[str, Any]) -> dict[str, Any]:
    """A template message: body `parameters` (strings, in order) or raw Graph `components`."""
    language = template.get("language") or "en_US"
    body: dict[str, Any] = {"name": template["name"], "language": {"code": str(language)}}
    components = template.get("components")
    parameters = template.get("parameters")
    if components is not None:
        if not isinstance(components, list):
            raise DeliveryError(f"metadata.{TEMPLATE_KEY}.components: expected a list")
        body["components"] = components
    elif parameters:
        if not isinstance(parameters, list) or not all(isinstance(p, str) for p in parameters):
            raise DeliveryError(f"metadata.{TEMPLATE_KEY}.parameters: expected a list of strings")
        body["components"] = [{"type": "body", "parameters": [{"type": "text", "text": p} for p in parameters]}]
    request = _base(to, "template")
    request["template"] = body
    return request


def sent_id(answer: Any) -> str:
    """The wamid of a successful send: `{"messages": [{"id": "wamid..."}]}`."""
    messages = answer.get("messages") if isinstance(answer, Mapping) else None
    if isinstance(messages, list) and messages and isinstance(messages[0], Mapping):
        wamid = messages[0].get("id")
        if isinstance(wamid, str) and wamid:
            return wamid
    raise DeliveryError("WhatsApp accepted the message but answered without a message id", retry_after=None)


# ── templates ───────────────────────────────────────────────────────────────────────────────────
def approved_templates(pages: Sequence[Any]) -> list[Template]:
    """The APPROVED templates of `message_templates` answers (`{"data": [...], "paging": {...}}`)."""
    found: list[Template] = []
    for page in pages:
        items = page.get("data") if isinstance(page, Mapping) else None
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, Mapping) or item.get("status") != "APPROVED" or not item.get("name"):
                continue
            body = next(
                (c for c in item.get("components") or [] if isinstance(c, Mapping) and c.get("type") == "BODY"), {}
            )
            text = str(body.get("text", ""))
            found.append(
                Template(
                    name=str(item["name"]),
                    language=str(item.get("language", "")),
                    category=str(item.get("category", "")),
                    body=text,
                    parameter_count=text.count("{{"),
                )
            )
    return sorted(found, key=lambda t: (t.name, t.language))


def next_page(page: Any) -> str | None:
    paging = page.get("paging") if isinstance(page, Mapping) else None
    url = paging.get("next") if isinstance(paging, Mapping) else None
    return url if isinstance(url, str) and url else None
