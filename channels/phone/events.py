"""Call events: the webhook's JSON → a validated `CallEvent` → what the core gets (an `Inbound` or a live frame).

Pure: no I/O, no clock. The wire format (one JSON object per POST, our own, so that any PBX can speak it):

    {"type": "call.ringing" | "call.answered" | "call.ended",
     "call_id": "1700000000.42",            # the PBX's id of the call; the same on all of its events
     "direction": "inbound" | "outbound",
     "from": "+49 30 1234567", "to": "201", # caller and callee; the customer's side must be a phone number
     "at": "2024-05-01T10:00:00Z",          # when this happened: ISO 8601 with an offset, or unix seconds
     "agent": "ann@example.com",            # optional: who answered (inbound) or dialled (outbound), email or extension
     "cause": "answered" | "no_answer" | "busy" | "failed" | "voicemail",   # call.ended only, required there
     "started_at": …, "answered_at": …,     # optional, like "at"
     "duration": 192,                       # optional, seconds: talk time, or the voicemail's length
     "recording_url": "https://…",          # optional, call.ended only
     "extra": {…}}                          # optional, anything the PBX wants kept; stored in the metadata

Any other key is an error, so a misspelt field is noticed at once rather than silently lost. A call becomes one
message, made from its `call.ended` event (`inbound_of`); `call.ringing` and `call.answered` are live frames
(`call_frame`) that nothing stores.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from channels.base import Identity, IdentityKind, Inbound, InboundAttachment
from channels.phone.numbers import to_e164

KEYS = frozenset(
    {"type", "call_id", "direction", "from", "to", "at", "agent", "cause"}
    | {"started_at", "answered_at", "duration", "recording_url", "extra"}
)
CALL_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
LINE = re.compile(r"[0-9*#+]{1,32}")  # our side of the call may be an extension, a queue or a short number
MAX_DURATION = 7 * 24 * 3600

E = TypeVar("E", bound=StrEnum)


class EventType(StrEnum):
    RINGING = "call.ringing"
    ANSWERED = "call.answered"
    ENDED = "call.ended"


class Direction(StrEnum):
    INBOUND = "inbound"  # the customer called us
    OUTBOUND = "outbound"  # we called the customer


class Cause(StrEnum):
    """How a call ended."""

    ANSWERED = "answered"  # talked, then hung up normally
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    VOICEMAIL = "voicemail"  # inbound: the caller left a voicemail; outbound: we reached theirs


class EventError(ValueError):
    """A call event the channel cannot take (HTTP 422); the message names the field."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CallEvent:
    """One validated call event; numbers in E.164 (our side kept as given when it is an extension)."""

    type: EventType
    call_id: str
    direction: Direction
    from_: str
    to: str
    at: datetime
    agent: str | None = None
    cause: Cause | None = None  # set exactly on call.ended
    started_at: datetime | None = None
    answered_at: datetime | None = None
    duration: int | None = None
    recording_url: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def customer(self) -> str:
        """The customer's number: the caller of an inbound call, the callee of an outbound one."""
        return self.from_ if self.direction is Direction.INBOUND else self.to

    @property
    def line(self) -> str:
        """Our side: the number or extension the customer called, or called from."""
        return self.to if self.direction is Direction.INBOUND else self.from_

    @property
    def external_id(self) -> str:
        return f"call:{self.call_id}"


# ── reading ─────────────────────────────────────────────────────────────────────────────────
def read_event(data: Any, default_country_code: str | None = None) -> CallEvent:
    """Validate one decoded webhook body; raises `EventError` naming the first bad field."""
    if not isinstance(data, dict):
        raise EventError("body", f"expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise EventError(unknown[0], "unknown field (put your own fields under extra)")
    kind = _choice(data, "type", EventType)
    call_id = data.get("call_id")
    if not isinstance(call_id, str) or not CALL_ID.fullmatch(call_id):
        raise EventError("call_id", "required: 1 to 128 letters, digits or ._:@/+=-")
    direction = _choice(data, "direction", Direction)
    customer_key = "from" if direction is Direction.INBOUND else "to"
    numbers = {key: _number(data, key, default_country_code, key == customer_key) for key in ("from", "to")}
    ended = kind is EventType.ENDED
    cause = _choice(data, "cause", Cause) if ended else None
    if not ended and data.get("cause") is not None:
        raise EventError("cause", "only call.ended has a cause")
    recording = data.get("recording_url")
    if recording is not None:
        if not ended:
            raise EventError("recording_url", "only call.ended has a recording")
        if not isinstance(recording, str) or not re.fullmatch(r"https?://[^\s]{1,2000}", recording):
            raise EventError("recording_url", "expected an http(s) URL")
    extra = data.get("extra", {})
    if not isinstance(extra, dict):
        raise EventError("extra", f"expected an object, got {type(extra).__name__}")
    return CallEvent(
        type=kind,
        call_id=call_id,
        direction=direction,
        from_=numbers["from"],
        to=numbers["to"],
        at=_required_time(data, "at"),
        agent=_agent(data),
        cause=cause,
        started_at=_time(data, "started_at"),
        answered_at=_time(data, "answered_at"),
        duration=_duration(data),
        recording_url=recording,
        extra=extra,
    )


def _choice(data: Mapping[str, Any], key: str, enum: type[E]) -> E:
    value = data.get(key)
    if isinstance(value, str) and value in enum._value2member_map_:
        return enum(value)
    allowed = ", ".join(member.value for member in enum)
    shown = "missing" if value is None else f"{value!r}"[:60]
    raise EventError(key, f"expected one of {allowed}; got {shown}")


def _number(data: Mapping[str, Any], key: str, country: str | None, customer: bool) -> str:
    raw = data.get(key)
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str) or not raw.strip():
        raise EventError(key, "required: a phone number")
    try:
        return to_e164(raw, country)
    except ValueError as exc:
        compact = re.sub(r"[\s.\-()/]", "", raw)
        if not customer and LINE.fullmatch(compact):
            return compact  # our extension or queue: kept as the PBX names it
        raise EventError(key, f"the customer's number is {exc}" if customer else str(exc)) from None


def _agent(data: Mapping[str, Any]) -> str | None:
    agent = data.get("agent")
    if agent is None or agent == "":
        return None
    if not isinstance(agent, str) or len(agent) > 254 or not agent.strip() or not agent.isprintable():
        raise EventError("agent", "expected an email address or an extension (printable, at most 254 characters)")
    return agent.strip()


def _duration(data: Mapping[str, Any]) -> int | None:
    value = data.get("duration")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_DURATION:
        raise EventError("duration", f"expected seconds from 0 to {MAX_DURATION}, got {value!r}"[:120])
    return round(value)


def _required_time(data: Mapping[str, Any], key: str) -> datetime:
    value = _time(data, key)
    if value is None:
        raise EventError(key, "required: ISO 8601 with an offset, or unix seconds")
    return value


def _time(data: Mapping[str, Any], key: str) -> datetime | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not 0 < value < 32_503_680_000:  # before the year 3000
            raise EventError(key, f"unix seconds out of range: {value!r}")
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str):
        raise EventError(key, f"expected ISO 8601 or unix seconds, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise EventError(key, f"not an ISO 8601 time: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        raise EventError(key, f"needs a UTC offset (like Z or +02:00): {value[:40]!r}")
    return parsed.astimezone(UTC)


# ── translating ─────────────────────────────────────────────────────────────────────────────
def merged(ended: CallEvent, answered: CallEvent | None) -> CallEvent:
    """The ended event with what an earlier `call.answered` of the same call knew and it does not (agent, time)."""
    if answered is None or answered.call_id != ended.call_id:
        return ended
    return replace(
        ended,
        agent=ended.agent or answered.agent,
        answered_at=ended.answered_at or answered.at,
    )


def talk_seconds(event: CallEvent) -> int | None:
    """Seconds talked (or the voicemail's length): `duration` when given, else from answered_at to the end."""
    if event.duration is not None:
        return event.duration
    if event.answered_at is not None and event.cause in (Cause.ANSWERED, Cause.VOICEMAIL):
        return max(0, round((event.at - event.answered_at).total_seconds()))
    return None


def callback_needed(event: CallEvent) -> bool:
    """Whether someone should call the customer back: they called and reached nobody."""
    return event.direction is Direction.INBOUND and event.cause is not None and event.cause is not Cause.ANSWERED


def summary(event: CallEvent) -> str:
    """The message text of an ended call: "Incoming call, 3 min 12 s, answered by ann@x", "Missed call", …"""
    seconds = talk_seconds(event)
    if event.direction is Direction.INBOUND:
        if event.cause is Cause.ANSWERED:
            parts = ["Incoming call"]
            if seconds is not None:
                parts.append(spoken_duration(seconds))
            if event.agent:
                parts.append(f"answered by {event.agent}")
            return ", ".join(parts)
        if event.cause is Cause.VOICEMAIL:
            return "Voicemail" if seconds is None else f"Voicemail ({clock_duration(seconds)})"
        reason = {Cause.BUSY: " (line busy)", Cause.FAILED: " (the call failed)"}.get(
            event.cause or Cause.NO_ANSWER, ""
        )
        return f"Missed call{reason}"
    outcome = {
        Cause.NO_ANSWER: "not answered",
        Cause.BUSY: "line busy",
        Cause.FAILED: "failed",
        Cause.VOICEMAIL: "reached voicemail",
    }
    parts = ["Outgoing call"]
    if event.cause is Cause.ANSWERED:
        if seconds is not None:
            parts.append(spoken_duration(seconds))
    elif event.cause is not None:
        parts.append(outcome[event.cause])
    if event.agent:
        parts.append(f"by {event.agent}")
    return ", ".join(parts)


def spoken_duration(seconds: int) -> str:
    """192 → "3 min 12 s"; 45 → "45 s"; 3720 → "1 h 2 min"."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else "", f"{secs} s" if secs else ""]
    return " ".join(part for part in parts if part) or "0 s"


def clock_duration(seconds: int) -> str:
    """42 → "0:42"; 3723 → "1:02:03"."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def identity_of(event: CallEvent) -> Identity:
    """The customer as the phone knows them (caller id is not proof of who they are: never verified)."""
    return Identity(IdentityKind.PHONE, event.customer)


def call_details(event: CallEvent) -> dict[str, Any]:
    """The call as JSON, for the message's metadata and the live frames."""
    return {
        "call_id": event.call_id,
        "direction": event.direction.value,
        "from": event.from_,
        "to": event.to,
        "number": event.customer,
        "line": event.line,
        "agent": event.agent,
        "cause": event.cause.value if event.cause else None,
        "started_at": _iso(event.started_at),
        "answered_at": _iso(event.answered_at),
        "ended_at": _iso(event.at) if event.type is EventType.ENDED else None,
        "duration": talk_seconds(event),
        "recording_url": event.recording_url,
        "callback_needed": callback_needed(event),
        "extra": dict(event.extra),
    }


def inbound_of(
    inbox_id: int, event: CallEvent, attachments: tuple[InboundAttachment, ...] = (), note: str | None = None
) -> Inbound:
    """The message of an ended call, in the customer's thread (their number); `note` adds a line to the text."""
    if event.type is not EventType.ENDED:
        raise ValueError(f"only call.ended becomes a message, not {event.type}")
    text = summary(event) if note is None else f"{summary(event)}\n{note}"
    return Inbound(
        inbox_id=inbox_id,
        external_id=event.external_id,
        thread_key=event.customer,
        sender=identity_of(event),
        text=text,
        attachments=attachments,
        sent_at=event.started_at or event.answered_at or event.at,
        metadata={"call": call_details(event)},
    )


def call_frame(event: CallEvent) -> dict[str, Any]:
    """The ephemeral frame that shows a call live to the agents: `{"type": "call", "state": "ringing", …}`."""
    state = {EventType.RINGING: "ringing", EventType.ANSWERED: "answered", EventType.ENDED: "ended"}[event.type]
    details = call_details(event)
    return {
        "type": "call",
        "state": state,
        "at": _iso(event.at),
        **{key: details[key] for key in ("call_id", "direction", "number", "line", "agent", "cause")},
    }


def recording_filename(event: CallEvent, content_type: str) -> str:
    """`call-<id>.<ext>` with an extension from the content type (the id made safe for a file name)."""
    ext = {
        "audio/mpeg": "mp3",
        "audio/mp3": "mp3",
        "audio/wav": "wav",
        "audio/x-wav": "wav",
        "audio/wave": "wav",
        "audio/ogg": "ogg",
        "audio/opus": "opus",
        "audio/mp4": "m4a",
        "audio/webm": "webm",
    }.get(content_type.split(";")[0].strip().lower(), "bin")
    return f"call-{re.sub(r'[^A-Za-z0-9._-]', '_', event.call_id)[:100]}.{ext}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None
