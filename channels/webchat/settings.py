"""Webchat settings: the channel-wide limits (from `[webchat]` in config.toml) and each inbox's widget settings.

Pure data: reading an inbox's `settings` JSON never fails — a missing or malformed value falls back to its
default, so a half-configured inbox still shows a working widget.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

DEFAULT_ATTACHMENT_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
)
COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True, slots=True)
class WebchatSettings:
    """Channel-wide limits; `token_key` signs visitor tokens, upload tickets and file links."""

    token_key: str
    assets: str  # the project's `web/` directory (loader, frame template, frame JS/CSS)
    max_frame_bytes: int = 65_536
    max_message_chars: int = 5_000
    max_attachment_bytes: int = 10_485_760
    attachment_types: tuple[str, ...] = DEFAULT_ATTACHMENT_TYPES
    visitor_messages_per_minute: int = 20
    ip_messages_per_minute: int = 60
    history_limit: int = 200
    hello_timeout_seconds: float = 10.0
    upload_ticket_seconds: int = 86_400


class Prechat(StrEnum):
    """Whether the widget asks for name and email before the first message."""

    OFF = "off"
    OPTIONAL = "optional"
    REQUIRED = "required"


class ReplyTime(StrEnum):
    """What the widget promises when no agent is online."""

    MINUTES = "minutes"
    HOURS = "hours"
    DAY = "day"


@dataclass(frozen=True, slots=True)
class WidgetSettings:
    """One inbox's widget, read from `Inbox.settings`."""

    color: str = "#2563eb"
    greeting: str = ""  # empty: the localised default greeting
    position: str = "right"  # right | left
    prechat: Prechat = Prechat.OFF
    reply_time: ReplyTime = ReplyTime.HOURS
    allowed_origins: tuple[str, ...] = ()  # empty: any site may embed the widget
    require_identity_verification: bool = False
    locale: str = ""  # empty: from the visitor's browser

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> WidgetSettings:
        """Read the widget keys of an inbox's settings, falling back to defaults for bad values."""
        default = cls()
        color = settings.get("color")
        greeting = settings.get("greeting")
        position = settings.get("position")
        locale = settings.get("locale")
        return cls(
            color=color if isinstance(color, str) and COLOR.match(color) else default.color,
            greeting=greeting[:500] if isinstance(greeting, str) else default.greeting,
            position=position if position in ("left", "right") else default.position,
            prechat=_enum(Prechat, settings.get("prechat"), default.prechat),
            reply_time=_enum(ReplyTime, settings.get("reply_time"), default.reply_time),
            allowed_origins=_origins(settings.get("allowed_origins")),
            require_identity_verification=settings.get("require_identity_verification") is True,
            locale=locale if locale in ("en", "ru") else "",
        )


def _enum(kind: Any, value: Any, default: Any) -> Any:
    try:
        return kind(value)
    except ValueError:
        return default


def _origins(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, Sequence):
        return ()
    return tuple(item.strip().rstrip("/").lower() for item in value if isinstance(item, str) and item.strip())


class SettingsError(ValueError):
    """A widget setting an admin saves is unknown or malformed; the message names the key."""


LOCALES = ("", "en", "ru")


def check_settings(settings: Mapping[str, Any]) -> None:
    """The widget settings as an admin saves them: only `WidgetSettings` keys, each of the right type.

    Reading (`WidgetSettings.of`) stays lenient, so settings stored before this check still show a widget."""
    known = set(WidgetSettings.__dataclass_fields__)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise SettingsError(f"settings.{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
    for name, value in settings.items():
        problem = _problem(name, value)
        if problem:
            raise SettingsError(f"settings.{name}: {problem}, got {value!r}"[:300])


def _problem(name: str, value: Any) -> str | None:
    if name == "color":
        return None if isinstance(value, str) and COLOR.match(value) else "expected a colour like #2563eb"
    if name == "greeting":
        return None if isinstance(value, str) and len(value) <= 500 else "expected text of at most 500 characters"
    if name == "position":
        return None if value in ("left", "right") else "expected left or right"
    if name == "prechat":
        return None if value in set(Prechat) else f"expected one of {', '.join(Prechat)}"
    if name == "reply_time":
        return None if value in set(ReplyTime) else f"expected one of {', '.join(ReplyTime)}"
    if name == "allowed_origins":
        listed = isinstance(value, list) and all(isinstance(item, str) for item in value)
        return None if isinstance(value, str) or listed else "expected a list of origins (https://example.com)"
    if name == "require_identity_verification":
        return None if isinstance(value, bool) else "expected true or false"
    if name == "locale":
        return None if value in LOCALES else "expected en, ru or empty (the visitor's browser decides)"
    return None
