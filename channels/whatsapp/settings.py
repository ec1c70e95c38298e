"""WhatsApp settings: app-wide (`WhatsAppSettings`, from a `[whatsapp]` config section) and per inbox
(`InboxSettings`, from the inbox's `settings` JSON). Pure: reads only the mapping and the environment given;
never does I/O and never logs a secret.

Per-inbox keys (secrets may be "env:NAME"): `phone_number_id` (the business number's Graph id),
`access_token` (a system-user token with whatsapp_business_messaging), `app_secret` (signs the webhooks:
X-Hub-Signature-256), `verify_token` (the string typed into the Meta dashboard for the GET handshake) and,
optionally, `waba_id` (the WhatsApp Business Account, needed only to list message templates).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from channels.base import InboxInfo

WEBHOOK_PATH = "/channels/whatsapp/{inbox_id}"
REQUIRED_KEYS = ("phone_number_id", "access_token", "app_secret", "verify_token")
SECRET_KEYS = {"access_token", "app_secret", "verify_token"}
INBOX_KEYS = {*REQUIRED_KEYS, "waba_id"}


@dataclass(frozen=True, slots=True)
class WhatsAppSettings:
    """Process-wide settings; `api_base_url` points at Meta's Graph API unless a test says otherwise."""

    api_base_url: str = "https://graph.facebook.com/v21.0"
    timeout_seconds: float = 30.0
    max_media_bytes: int = 104_857_600  # documents may be up to 100 MB on WhatsApp

    def __post_init__(self) -> None:
        if not self.api_base_url.startswith(("https://", "http://")):
            raise SettingsError(f"whatsapp.api_base_url: expected an http(s) URL, got {self.api_base_url!r}")
        if self.timeout_seconds <= 0:
            raise SettingsError(f"whatsapp.timeout_seconds: must be positive, got {self.timeout_seconds!r}")
        if self.max_media_bytes <= 0:
            raise SettingsError(f"whatsapp.max_media_bytes: must be positive, got {self.max_media_bytes!r}")


class SettingsError(ValueError):
    """WhatsApp settings are missing or malformed; the message names the key."""


@dataclass(frozen=True, slots=True)
class InboxSettings:
    """One inbox's business number and the secrets that go with it (repr hides the secrets)."""

    phone_number_id: str
    access_token: str
    app_secret: str
    verify_token: str
    waba_id: str | None = None

    def __repr__(self) -> str:
        return f"InboxSettings(phone_number_id={self.phone_number_id!r}, waba_id={self.waba_id!r})"


def inbox_settings(inbox: InboxInfo, environ: Mapping[str, str] | None = None) -> InboxSettings:
    """Validate one inbox's settings; every error names the key (`inbox 7 settings.app_secret: …`)."""
    env = os.environ if environ is None else environ
    raw: Mapping[str, Any] = inbox.settings
    prefix = f"inbox {inbox.id} settings."
    unknown = sorted(set(raw) - INBOX_KEYS)
    if unknown:
        raise SettingsError(f"{prefix}{unknown[0]}: unknown key")
    values: dict[str, str] = {}
    for key in REQUIRED_KEYS:
        values[key] = _string(raw.get(key), f"{prefix}{key}", env, secret=key in SECRET_KEYS)
    for key in ("phone_number_id",):
        if not values[key].isdigit():
            raise SettingsError(f"{prefix}{key}: expected the numeric Graph id, got {values[key]!r}")
    waba_id: str | None = None
    if raw.get("waba_id") is not None:
        waba_id = _string(raw["waba_id"], f"{prefix}waba_id", env, secret=False)
        if not waba_id.isdigit():
            raise SettingsError(f"{prefix}waba_id: expected the numeric Graph id, got {waba_id!r}")
    return InboxSettings(waba_id=waba_id, **values)


def _string(value: Any, key: str, env: Mapping[str, str], *, secret: bool) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and not secret:
        value = str(value)  # ids typed as numbers in JSON
    if not isinstance(value, str) or not value.strip():
        hint = " (or env:NAME)" if secret else ""
        raise SettingsError(f"{key}: required, a non-empty string{hint}")
    if value.startswith("env:"):
        name = value.removeprefix("env:")
        if name not in env or not env[name]:
            raise SettingsError(f"{key}: environment variable {name} is not set")
        value = env[name]
    return str(value).strip()


def webhook_path(inbox_id: int) -> str:
    return WEBHOOK_PATH.format(inbox_id=inbox_id)
