"""Config: the example file documents every key and loads; errors name the dotted key."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from inbox import config
from inbox.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


def _keys(cls: type, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for field in dataclasses.fields(cls):
        hint = cls.__annotations__[field.name]
        nested = getattr(config, str(hint).removesuffix(" | None"), None)
        if nested is not None and dataclasses.is_dataclass(nested):
            keys |= _keys(nested, f"{prefix}{field.name}.")
        else:
            keys.add(f"{prefix}{field.name}")
    return keys


def _flatten(data: dict[str, object], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, value in data.items():
        if isinstance(value, dict):
            keys |= _flatten(value, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def test_example_documents_every_key_and_loads() -> None:
    documented = _flatten(tomllib.loads(EXAMPLE.read_text()))
    assert documented == _keys(config.Config)
    loaded = config.load(EXAMPLE, environ={})
    # Optional channel sections present in the example load with their defaults.
    assert loaded == config.Config(email=config.EmailConfig())


def test_environment_overrides_database_and_redis(tmp_path: Path) -> None:
    loaded = config.load(
        EXAMPLE, environ={"SWITCHBOARD_DATABASE_URL": "postgresql+asyncpg://x/y", "SWITCHBOARD_REDIS_URL": "redis://r"}
    )
    assert loaded.database.url == "postgresql+asyncpg://x/y"
    assert loaded.redis.url == "redis://r"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[server]\nport = 'eighty'", "server.port: expected an integer"),
        ("[server]\nbogus = 1", "server.bogus: unknown key"),
        ("[nope]\nx = 1", "nope: unknown key"),
        ("server = 3", "server: expected a table"),
        ("[outbox]\nbackoff_base_seconds = true", "outbox.backoff_base_seconds: expected a number"),
        ("[server\n", "config file"),
    ],
)
def test_errors_name_the_dotted_key(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        config.load(path, environ={})


def test_env_secret_names_key_and_variable() -> None:
    assert config.resolve_secret("env:SB_X", "server.secret_key", {"SB_X": "s3"}) == "s3"
    with pytest.raises(ConfigError, match="server.secret_key: environment variable SB_Y is not set"):
        config.resolve_secret("env:SB_Y", "server.secret_key", {})
