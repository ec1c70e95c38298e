"""VK settings: app-wide (`VkSettings`, from a `[vk]` config section) and per inbox (`InboxSettings`, from the
inbox's `settings` JSON). Pure: reads only the mapping and the environment given; never talks to VK.

Per-inbox keys (one inbox per VK community):
- `group_id`: the community's numeric id (positive integer), compared with every event's `group_id`;
- `access_token`: the community access token with the "messages" (and, for files, "photos"/"docs") rights,
  as "env:NAME" or the literal token;
- `confirmation_code`: the string VK expects in answer to the `confirmation` event (Callback API settings);
- `secret_key`: the Callback API "secret key", as "env:NAME" or literal; every event's `secret` must equal it;
- `groups`: true to take messages from group chats the community was added to (default false: private only).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from channels.base import InboxInfo

CALLBACK_PATH = "/channels/vk/{inbox_id}"
INBOX_KEYS = {"group_id", "access_token", "confirmation_code", "secret_key", "groups"}
API_VERSION = "5.199"
SECRET_KEY = re.compile(r"[A-Za-z0-9]{1,50}")  # what VK's settings page accepts as a secret key


class SettingsError(ValueError):
    """VK settings are missing or malformed; the message names the key."""


@dataclass(frozen=True, slots=True)
class VkSettings:
    """Process-wide settings; the URL points at VK's API unless a test (or a proxy) says otherwise."""

    api_base_url: str = "https://api.vk.com/method"
    api_version: str = API_VERSION
    timeout_seconds: float = 30.0
    max_file_bytes: int = 52_428_800  # inbound attachments larger than this are noted, not stored

    def __post_init__(self) -> None:
        if not self.api_base_url.startswith(("http://", "https://")):
            raise SettingsError(f"vk.api_base_url: expected an http(s) URL, got {self.api_base_url!r}")
        if not re.fullmatch(r"5\.\d+", self.api_version):
            raise SettingsError(f"vk.api_version: expected a version like '5.199', got {self.api_version!r}")
        if self.timeout_seconds <= 0:
            raise SettingsError(f"vk.timeout_seconds: must be positive, got {self.timeout_seconds!r}")
        if self.max_file_bytes <= 0:
            raise SettingsError(f"vk.max_file_bytes: must be positive, got {self.max_file_bytes!r}")


@dataclass(frozen=True, slots=True)
class InboxSettings:
    """One inbox's VK community: who it is, how to call the API for it, and how to check its events."""

    group_id: int
    access_token: str
    confirmation_code: str
    secret_key: str
    groups: bool = False

    def __repr__(self) -> str:  # the token and the secret never reach a log line
        return f"InboxSettings(group_id={self.group_id}, groups={self.groups})"


def inbox_settings(inbox: InboxInfo, environ: Mapping[str, str] | None = None) -> InboxSettings:
    """Validate one inbox's settings; every error names the key."""
    env = os.environ if environ is None else environ
    raw: Mapping[str, Any] = inbox.settings
    prefix = f"inbox {inbox.id} settings."
    unknown = sorted(set(raw) - INBOX_KEYS)
    if unknown:
        raise SettingsError(f"{prefix}{unknown[0]}: unknown key")
    group_id = raw.get("group_id")
    if isinstance(group_id, str) and group_id.isdigit():
        group_id = int(group_id)
    if not isinstance(group_id, int) or isinstance(group_id, bool) or group_id <= 0:
        raise SettingsError(f"{prefix}group_id: required (the community's numeric id, a positive integer)")
    token = _secret(raw, "access_token", prefix, env, "the community access token")
    code = raw.get("confirmation_code")
    if not isinstance(code, str) or not code.strip():
        raise SettingsError(f"{prefix}confirmation_code: required (the string VK's Callback API settings show)")
    secret = _secret(raw, "secret_key", prefix, env, "the Callback API secret key")
    if not SECRET_KEY.fullmatch(secret):
        raise SettingsError(f"{prefix}secret_key: expected 1 to 50 Latin letters and digits")
    groups = raw.get("groups", False)
    if not isinstance(groups, bool):
        raise SettingsError(f"{prefix}groups: expected true or false, got {groups!r}")
    return InboxSettings(group_id, token, code.strip(), secret, groups)


def _secret(raw: Mapping[str, Any], key: str, prefix: str, env: Mapping[str, str], what: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise SettingsError(f"{prefix}{key}: required ({what}, or env:NAME)")
    if value.startswith("env:"):
        name = value.removeprefix("env:")
        if name not in env or not env[name]:
            raise SettingsError(f"{prefix}{key}: environment variable {name} is not set")
        value = env[name]
    return value
