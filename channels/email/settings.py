"""Email channel settings: the process-wide `EmailSettings` and the per-inbox `MailboxSettings`.

Mailbox credentials live in each email inbox's settings (a multi-inbox product has one mailbox per inbox);
secrets there may be written as `"env:NAME"`. Every error names the settings key. Pure: reads the
environment for `env:` secrets and nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Security(StrEnum):
    """How a connection to a mail server is protected."""

    TLS = "tls"  # implicit TLS (IMAPS 993, SMTPS 465)
    STARTTLS = "starttls"  # upgrade a plain connection (SMTP submission 587)
    PLAIN = "plain"  # no TLS: loopback and tests only


class SettingsError(ValueError):
    """A mailbox setting is missing or malformed; the message names the key."""


@dataclass(frozen=True, slots=True)
class EmailSettings:
    """Process-wide email settings (the `[email]` config section)."""

    smtp_listen_enabled: bool = False
    smtp_listen_host: str = "127.0.0.1"
    smtp_listen_port: int = 2525
    max_message_bytes: int = 26_214_400
    max_header_bytes: int = 65_536
    poll_interval_seconds: float = 60.0
    idle_renew_seconds: float = 1500.0
    reconnect_max_seconds: float = 300.0
    connect_timeout_seconds: float = 30.0
    fetch_batch: int = 50


@dataclass(frozen=True, slots=True)
class MailboxSettings:
    """One inbox's mailbox: its address, IMAP source and SMTP relay."""

    address: str
    display_name: str = ""
    aliases: tuple[str, ...] = ()
    reply_to: str = ""
    reply_plus: bool = False
    signature: str = ""
    imap_host: str = ""
    imap_port: int = 993
    imap_security: Security = Security.TLS
    imap_username: str = ""
    imap_password: str = field(default="", repr=False)
    imap_folder: str = "INBOX"
    imap_idle: bool = True
    poll_interval_seconds: float | None = None
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_security: Security = Security.STARTTLS
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]

    @property
    def addresses(self) -> frozenset[str]:
        """Every address mail for this inbox may be sent to (lower-case)."""
        return frozenset(a.lower() for a in (self.address, *self.aliases))

    @classmethod
    def from_inbox(cls, settings: Mapping[str, Any], *, environ: Mapping[str, str] | None = None) -> MailboxSettings:
        """Read an inbox's settings mapping; unknown keys and bad values raise `SettingsError`."""
        env = os.environ if environ is None else environ
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(settings) - known)
        if unknown:
            raise SettingsError(f"settings.{unknown[0]}: unknown email setting")
        address = settings.get("address")
        if not isinstance(address, str) or "@" not in address:
            raise SettingsError("settings.address: the inbox's email address is required")
        values: dict[str, Any] = {}
        for name, value in settings.items():
            values[name] = _coerce(name, value, cls.__dataclass_fields__[name].type, env)
        mailbox = cls(**values)
        if mailbox.imap_security == Security.STARTTLS:
            # aioimaplib cannot upgrade a connection; refusing beats silently sending the password in clear.
            raise SettingsError("settings.imap_security: starttls is not supported for IMAP; use tls (port 993)")
        return mailbox

    @property
    def imap_enabled(self) -> bool:
        return bool(self.imap_host)

    @property
    def smtp_enabled(self) -> bool:
        return bool(self.smtp_host)


class _AnyVariable(Mapping[str, str]):
    """An environment in which every `env:NAME` resolves (to ""): checking the shape of settings an admin saves
    must not depend on the variables of the process that checks them (the CLI's are not the server's)."""

    def __getitem__(self, name: str) -> str:
        return ""

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def check_settings(settings: Mapping[str, Any]) -> None:
    """The shape of an inbox's mailbox settings (unknown keys, `address` present, types); `SettingsError` names
    the key. `env:NAME` secrets are not resolved: the running server reports an unset variable."""
    MailboxSettings.from_inbox(settings, environ=_AnyVariable())


def resolve_secret(value: str, key: str, environ: Mapping[str, str]) -> str:
    """`"env:NAME"` → the variable's value; other strings pass through."""
    if not value.startswith("env:"):
        return value
    name = value.removeprefix("env:")
    if name not in environ:
        raise SettingsError(f"{key}: environment variable {name} is not set")
    return environ[name]


def _coerce(name: str, value: Any, hint: Any, env: Mapping[str, str]) -> Any:
    key = f"settings.{name}"
    text = str(hint)
    if text == "bool":
        if not isinstance(value, bool):
            raise SettingsError(f"{key}: expected true or false, got {value!r}")
        return value
    if text == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(f"{key}: expected an integer, got {value!r}")
        return value
    if text.startswith("float"):
        if value is None and "None" in text:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise SettingsError(f"{key}: expected a positive number, got {value!r}")
        return float(value)
    if text == "Security":
        try:
            return Security(value)
        except ValueError:
            raise SettingsError(f"{key}: expected one of tls, starttls, plain, got {value!r}") from None
    if text.startswith("tuple"):
        if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
            raise SettingsError(f"{key}: expected a list of strings, got {value!r}")
        return tuple(value)
    if not isinstance(value, str):
        raise SettingsError(f"{key}: expected a string, got {value!r}")
    if name.endswith("password"):
        return resolve_secret(value, key, env)
    return value
