"""Configuration: one TOML file read with `tomllib` into frozen dataclasses.

Secrets may be written as `"env:NAME"`; `SWITCHBOARD_DATABASE_URL` and `SWITCHBOARD_REDIS_URL` override the
file. Every error names the dotted key. This module reads files and the environment; it opens nothing else.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from inbox.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: str = ""  # empty: generated once and kept in <state_directory>/secret_key
    state_directory: str = "var"
    base_url: str = "http://127.0.0.1:8000"
    development: bool = False
    max_body_bytes: int = 1_048_576
    secure_cookies: bool = False


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    url: str = "sqlite+aiosqlite:///var/switchboard.db"
    pool_size: int = 10
    echo: bool = False
    checkpoint_interval_seconds: float = 0.25


@dataclass(frozen=True, slots=True)
class RedisConfig:
    url: str = ""
    channel_prefix: str = "switchboard"
    reconnect_max_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    lease_seconds: float = 10.0
    catchup_interval_seconds: float = 1.0


@dataclass(frozen=True, slots=True)
class StorageConfig:
    directory: str = "var/attachments"
    max_attachment_bytes: int = 20_971_520
    unattached_upload_hours: float = 24.0
    cleanup_interval_seconds: float = 3600.0


@dataclass(frozen=True, slots=True)
class StreamConfig:
    queue_size: int = 1000
    retention_days: int = 7
    auth_timeout_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    max_attempts: int = 12
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 900.0
    lease_seconds: float = 60.0
    poll_interval_seconds: float = 1.0
    concurrency: int = 8


@dataclass(frozen=True, slots=True)
class AuthConfig:
    session_max_age_days: int = 14
    login_max_attempts: int = 5
    login_window_seconds: int = 300


@dataclass(frozen=True, slots=True)
class ApiChannelConfig:
    webhook_timeout_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class WebchatConfig:
    max_frame_bytes: int = 65_536
    max_message_chars: int = 5_000
    max_attachment_bytes: int = 10_485_760
    attachment_types: tuple[str, ...] = (
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
        "text/plain",
    )
    visitor_messages_per_minute: int = 20
    ip_messages_per_minute: int = 60
    history_limit: int = 200
    hello_timeout_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class SelfServiceConfig:
    widget_requests_per_minute: int = 60
    ip_requests_per_minute: int = 300
    retention_days: int = 400  # measured visitor actions (views, searches, greetings); 0 keeps them all
    prune_interval_seconds: float = 3600.0


@dataclass(frozen=True, slots=True)
class PrivacyConfig:
    erase_resolved_after_days: int = 0  # erase resolved conversations older than this; 0 = never
    interval_seconds: float = 3600.0


@dataclass(frozen=True, slots=True)
class AdmissionConfig:
    """Backpressure on inbound messages (README ## Overload and backpressure)."""

    max_deliveries_in_flight: int = 128  # 0: no limit; 128 = one full group-commit batch
    retry_after_seconds: float = 1.0
    max_retry_after_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class ChannelsConfig:
    refresh_seconds: float = 5.0
    restart_backoff_max_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class TelegramConfig:
    api_base_url: str = "https://api.telegram.org/bot"
    file_base_url: str = "https://api.telegram.org/file/bot"
    public_base_url: str = ""  # empty: server.base_url
    poll_timeout_seconds: int = 30
    max_file_bytes: int = 20_971_520


@dataclass(frozen=True, slots=True)
class WhatsAppConfig:
    """The WhatsApp Cloud API channel (README ## WhatsApp); numbers and secrets are per-inbox settings."""

    api_base_url: str = "https://graph.facebook.com/v21.0"
    timeout_seconds: float = 30.0
    max_media_bytes: int = 104_857_600


@dataclass(frozen=True, slots=True)
class VkConfig:
    """The VK community-messages channel (README ## VK); communities and tokens are per-inbox settings."""

    api_base_url: str = "https://api.vk.com/method"
    api_version: str = "5.199"
    timeout_seconds: float = 30.0
    max_file_bytes: int = 52_428_800


@dataclass(frozen=True, slots=True)
class PhoneConfig:
    """The phone (CTI) channel (README ## Phone); signing secrets and dial URLs are per-inbox settings."""

    max_recording_bytes: int = 26_214_400
    timeout_seconds: float = 30.0
    max_clock_skew_seconds: int = 300


@dataclass(frozen=True, slots=True)
class EmailConfig:
    """Process-wide email settings; mailboxes themselves are per-inbox settings (README ## Email)."""

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
class ContinuityConfig:
    """Email continuity for live chat (README "Email continuity for live chat"); turned on per webchat inbox."""

    delay_seconds: float = 120.0
    max_delay_seconds: float = 600.0
    interval_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class CsatConfig:
    """Satisfaction surveys (README ## Reports and CSAT); each inbox turns them on with `csat_enabled`."""

    question: str = "How would you rate the help you got?"
    change_minutes: float = 30.0
    expire_days: float = 14.0


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    api_channel: ApiChannelConfig = field(default_factory=ApiChannelConfig)
    webchat: WebchatConfig = field(default_factory=WebchatConfig)
    selfservice: SelfServiceConfig = field(default_factory=SelfServiceConfig)
    channels: ChannelsConfig = field(default_factory=ChannelsConfig)
    admission: AdmissionConfig = field(default_factory=AdmissionConfig)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    whatsapp: WhatsAppConfig = field(default_factory=WhatsAppConfig)
    vk: VkConfig = field(default_factory=VkConfig)
    phone: PhoneConfig = field(default_factory=PhoneConfig)
    email: EmailConfig | None = None  # no [email] section: the email channel is off
    continuity: ContinuityConfig = field(default_factory=ContinuityConfig)
    csat: CsatConfig = field(default_factory=CsatConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)


def load(path: str | Path | None = None, *, environ: typing.Mapping[str, str] | None = None) -> Config:
    """Read `path` (or defaults when None) and apply environment overrides."""
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from exc
    config = from_dict(raw, env)
    overrides: dict[str, Any] = {}
    if url := env.get("SWITCHBOARD_DATABASE_URL"):
        overrides["database"] = dataclasses.replace(config.database, url=url)
    if url := env.get("SWITCHBOARD_REDIS_URL"):
        overrides["redis"] = dataclasses.replace(config.redis, url=url)
    return dataclasses.replace(config, **overrides) if overrides else config


def from_dict(raw: typing.Mapping[str, Any], environ: typing.Mapping[str, str] | None = None) -> Config:
    """Build a `Config` from parsed TOML, naming the dotted key of any problem."""
    env = os.environ if environ is None else environ
    return _build(Config, raw, "", env)


def resolve_secret(value: str, key: str, environ: typing.Mapping[str, str] | None = None) -> str:
    """Turn `"env:NAME"` into the variable's value; other strings pass through."""
    env = os.environ if environ is None else environ
    if not value.startswith("env:"):
        return value
    name = value.removeprefix("env:")
    if name not in env:
        raise ConfigError(f"{key}: environment variable {name} is not set")
    return env[name]


def _build(cls: type[T], raw: typing.Mapping[str, Any], prefix: str, env: typing.Mapping[str, str]) -> T:
    if not isinstance(raw, typing.Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}: unknown key")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        key = f"{prefix}{name}"
        hint = hints[name]
        section = _section(hint)
        if section is not None:
            values[name] = _build(section, value, f"{key}.", env)
        else:
            values[name] = _coerce(value, hint, key)
    return cls(**values)


def _section(hint: Any) -> type[Any] | None:
    """The dataclass of a config section, also for optional sections (`EmailConfig | None`)."""
    if dataclasses.is_dataclass(hint):
        return typing.cast(type[Any], hint)
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        found = [option for option in typing.get_args(hint) if dataclasses.is_dataclass(option)]
        return typing.cast(type[Any], found[0]) if found else None
    return None


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        hint = next(option for option in options if option is not type(None))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{key}: expected a list of strings, got {value!r}")
        return tuple(value)
    raise ConfigError(f"{key}: unsupported setting type {hint!r}")  # pragma: no cover
