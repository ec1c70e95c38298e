"""Phone (CTI) settings: app-wide (`PhoneSettings`, from a `[phone]` config section) and per inbox
(`InboxSettings`, from the inbox's `settings` JSON). Pure: reads only the mapping and the environment given.

Per-inbox keys (one inbox per PBX or telephony account):
- `signing_secret`: the secret the PBX signs its call events with (HMAC-SHA256, see `events.signature`), as
  "env:NAME" or literal, at least 16 characters; when absent, the inbox's own secret (`InboxInfo.secret`) is used;
- `dial_url`: optional click-to-call URL template, an http(s) URL with the placeholders `{number}` (E.164, with
  "+"), `{number_digits}` (E.164 without "+") and `{agent_extension}`; without it click-to-call is a `tel:` link;
- `default_country_code`: optional country calling code ("49", "+1") for numbers the PBX reports in national
  format ("030 1234567" → "+49301234567"); without it only international numbers are accepted.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from channels.base import InboxInfo

EVENTS_PATH = "/channels/phone/{inbox_id}"
INBOX_KEYS = {"signing_secret", "dial_url", "default_country_code"}
DIAL_PLACEHOLDERS = frozenset({"number", "number_digits", "agent_extension"})
MIN_SECRET_LENGTH = 16
COUNTRY_CODE = re.compile(r"[1-9]\d{0,2}")


class SettingsError(ValueError):
    """Phone settings are missing or malformed; the message names the key."""


@dataclass(frozen=True, slots=True)
class PhoneSettings:
    """Process-wide settings of the phone channel."""

    max_recording_bytes: int = 26_214_400  # a recording larger than this is linked, not stored
    timeout_seconds: float = 30.0  # recording downloads and dial requests
    max_clock_skew_seconds: int = 300  # an event signed further from now than this is refused (replay)

    def __post_init__(self) -> None:
        if self.max_recording_bytes <= 0:
            raise SettingsError(f"phone.max_recording_bytes: must be positive, got {self.max_recording_bytes!r}")
        if self.timeout_seconds <= 0:
            raise SettingsError(f"phone.timeout_seconds: must be positive, got {self.timeout_seconds!r}")
        if self.max_clock_skew_seconds <= 0:
            raise SettingsError(f"phone.max_clock_skew_seconds: must be positive, got {self.max_clock_skew_seconds!r}")


@dataclass(frozen=True, slots=True)
class InboxSettings:
    """One inbox's PBX: how its events are signed, how to ask it to dial, how its numbers are written."""

    signing_secret: str
    dial_url: str | None = None
    default_country_code: str | None = None  # digits only, e.g. "49"

    def __repr__(self) -> str:  # the secret never reaches a log line
        return f"InboxSettings(dial_url={self.dial_url!r}, default_country_code={self.default_country_code!r})"


def inbox_settings(inbox: InboxInfo, environ: Mapping[str, str] | None = None) -> InboxSettings:
    """Validate one inbox's settings; every error names the key."""
    env = os.environ if environ is None else environ
    raw: Mapping[str, Any] = inbox.settings
    prefix = f"inbox {inbox.id} settings."
    unknown = sorted(set(raw) - INBOX_KEYS)
    if unknown:
        raise SettingsError(f"{prefix}{unknown[0]}: unknown key")
    secret = _secret(raw.get("signing_secret"), inbox.secret, prefix, env)
    dial_url = raw.get("dial_url")
    if dial_url is not None:
        if not isinstance(dial_url, str):
            raise SettingsError(f"{prefix}dial_url: expected a URL template, got {dial_url!r}")
        problem = dial_template_problem(dial_url)
        if problem:
            raise SettingsError(f"{prefix}dial_url: {problem}")
    code = raw.get("default_country_code")
    if code is not None:
        if isinstance(code, int) and not isinstance(code, bool):
            code = str(code)
        if not isinstance(code, str) or not COUNTRY_CODE.fullmatch(code.strip().removeprefix("+")):
            raise SettingsError(f"{prefix}default_country_code: expected a country calling code like 49, got {code!r}")
        code = code.strip().removeprefix("+")
    return InboxSettings(secret, dial_url or None, code)


def dial_template_problem(template: str) -> str | None:
    """Why `template` is not a usable click-to-call URL template, or None when it is."""
    if not template.startswith(("https://", "http://")):
        return "expected an http(s) URL"
    if len(template) > 2000:
        return "longer than 2000 characters"
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:  # a lone "{" or "}"
        return f"malformed placeholder ({exc}); write a literal brace as {{{{ or }}}}"
    used: set[str] = set()
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in DIAL_PLACEHOLDERS:  # also refuses "{number.__class__}" and "{0}"
            allowed = ", ".join("{" + p + "}" for p in sorted(DIAL_PLACEHOLDERS))
            return f"unknown placeholder {{{name}}}; allowed: {allowed}"
        if spec or conversion:
            return f"placeholder {{{name}}} takes no format spec or conversion"
        used.add(name)
    if not used & {"number", "number_digits"}:
        return "must contain {number} or {number_digits}"
    return None


def placeholders(template: str) -> set[str]:
    """The placeholder names a (valid) template uses."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def _secret(value: Any, fallback: str, prefix: str, env: Mapping[str, str]) -> str:
    key = f"{prefix}signing_secret"
    if value is None:
        if len(fallback) < MIN_SECRET_LENGTH:
            raise SettingsError(f"{key}: required (the inbox's own secret is shorter than {MIN_SECRET_LENGTH})")
        return fallback
    if not isinstance(value, str) or not value:
        raise SettingsError(f"{key}: expected a secret or env:NAME, got {type(value).__name__}")
    secret: str = value
    if secret.startswith("env:"):
        name = secret.removeprefix("env:")
        if not env.get(name):
            raise SettingsError(f"{key}: environment variable {name} is not set")
        secret = env[name]
    if len(secret) < MIN_SECRET_LENGTH:
        raise SettingsError(f"{key}: must be at least {MIN_SECRET_LENGTH} characters")
    return secret
