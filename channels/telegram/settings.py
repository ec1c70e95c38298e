"""Telegram settings: app-wide (`TelegramSettings`, from the `[telegram]` config section) and per inbox
(`InboxSettings`, from the inbox's `settings` JSON). Pure: reads only the mapping and the environment given.

Per-inbox keys: `bot_token` ("env:NAME" or the literal token), `mode` ("webhook" | "polling", default
"polling"), `groups` (true: group chats become conversations; default false).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from channels.base import InboxInfo

WEBHOOK_PATH = "/channels/telegram/{inbox_id}"
INBOX_KEYS = {"bot_token", "mode", "groups"}


class Mode(StrEnum):
    WEBHOOK = "webhook"
    POLLING = "polling"


@dataclass(frozen=True, slots=True)
class TelegramSettings:
    """Process-wide settings; the URLs point at the real Bot API unless a test or a local Bot API server says otherwise."""

    api_base_url: str = "https://api.telegram.org/bot"
    file_base_url: str = "https://api.telegram.org/file/bot"
    public_base_url: str = "http://127.0.0.1:8000"  # where Telegram reaches this server (webhook mode)
    poll_timeout_seconds: int = 30
    max_file_bytes: int = 20_971_520


class SettingsError(ValueError):
    """An inbox's Telegram settings are missing or malformed; the message names the key."""


@dataclass(frozen=True, slots=True)
class InboxSettings:
    token: str
    mode: Mode
    groups: bool
    webhook_secret: str

    @property
    def bot_id(self) -> str:
        """The numeric id before the colon of a bot token: cursors are kept per bot, not per token."""
        return self.token.split(":", 1)[0]


def check_settings(raw: Mapping[str, Any], prefix: str = "settings.") -> None:
    """The shape of an inbox's settings, as an admin saves them: known keys, `bot_token` present, right types.

    An `env:NAME` token is not resolved here (the variable is the server's, not the admin's client's)."""
    unknown = sorted(set(raw) - INBOX_KEYS)
    if unknown:
        raise SettingsError(f"{prefix}{unknown[0]}: unknown key (known: {', '.join(sorted(INBOX_KEYS))})")
    token = raw.get("bot_token")
    if not isinstance(token, str) or not token.strip():
        raise SettingsError(f"{prefix}bot_token: required (the bot token, or env:NAME)")
    if not token.startswith("env:") and ":" not in token:
        raise SettingsError(f"{prefix}bot_token: not a bot token (expected '<bot id>:<secret>')")
    mode = raw.get("mode", Mode.POLLING)
    if mode not in set(Mode):
        raise SettingsError(f"{prefix}mode: must be webhook or polling, got {mode!r}")
    groups = raw.get("groups", False)
    if not isinstance(groups, bool):
        raise SettingsError(f"{prefix}groups: expected true or false, got {groups!r}")


def inbox_settings(inbox: InboxInfo, environ: Mapping[str, str] | None = None) -> InboxSettings:
    """Validate one inbox's settings; the webhook secret is derived from the inbox secret (stable, never stored)."""
    env = os.environ if environ is None else environ
    raw: Mapping[str, Any] = inbox.settings
    prefix = f"inbox {inbox.id} settings."
    check_settings(raw, prefix)
    token = raw["bot_token"]
    if token.startswith("env:"):
        name = token.removeprefix("env:")
        if name not in env:
            raise SettingsError(f"{prefix}bot_token: environment variable {name} is not set")
        token = env[name]
    if ":" not in token:
        raise SettingsError(f"{prefix}bot_token: not a bot token (expected '<bot id>:<secret>')")
    mode = raw.get("mode", Mode.POLLING)
    groups = raw.get("groups", False)
    secret = hmac.new(inbox.secret.encode(), b"telegram-webhook", hashlib.sha256).hexdigest()
    return InboxSettings(token=token, mode=Mode(mode), groups=groups, webhook_secret=secret)


def webhook_url(settings: TelegramSettings, inbox_id: int) -> str:
    return settings.public_base_url.rstrip("/") + WEBHOOK_PATH.format(inbox_id=inbox_id)
