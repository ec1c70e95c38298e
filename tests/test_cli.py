"""The `switchboard` CLI as a user runs it: `python -m inbox …` subprocesses against a SQLite file and a
PostgreSQL database (passed with SWITCHBOARD_DATABASE_URL), checked against what they stored."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from inbox.auth import Authenticator, Sessions
from inbox.cli import main
from inbox.store.engine import Store
from inbox.store.models import Agent, Conversation, Event, Inbox, Label, Message

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(db_url: str, tmp_path: Path) -> Run:
    """Run `python -m inbox <args>` in an empty directory (no config.toml) against `db_url`."""
    env = {**os.environ, "SWITCHBOARD_DATABASE_URL": db_url}

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "inbox", *args],
            cwd=tmp_path,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


async def count(store: Store, model: type) -> int:
    async with store.session() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_commands_before_migrate_say_so(cli: Run) -> None:
    result = cli("agent", "create", "--email", "a@example.test", "--name", "A", "--password-stdin", stdin="x" * 12)
    assert result.returncode == 1
    assert "run `switchboard migrate` first" in result.stderr


async def test_agent_token_inbox_commands(cli: Run, db_url: str) -> None:
    assert cli("migrate").returncode == 0
    created = cli(
        "agent",
        "create",
        "--email",
        "Ada@Example.test",
        "--name",
        "Ada",
        "--role",
        "admin",
        "--password-stdin",
        stdin="correct-horse-battery\n",
    )
    assert created.returncode == 0, created.stderr
    assert "created admin ada@example.test" in created.stdout
    again = cli("agent", "create", "--email", "ada@example.test", "--name", "Ada", "--password-stdin", stdin="x" * 12)
    assert again.returncode == 1 and "already exists" in again.stderr
    token = cli("token", "create", "--email", "ada@example.test")
    assert token.returncode == 0, token.stderr
    assert (cli("token", "create", "--email", "who@example.test").returncode, "no agent") == (1, "no agent")

    webchat = cli("inbox", "create", "--name", "Website", "--channel", "webchat")
    assert webchat.returncode == 0, webchat.stderr
    lines = dict(line.split(": ", 1) for line in webchat.stdout.strip().splitlines())
    api = cli(
        "inbox",
        "create",
        "--name",
        "Integration",
        "--channel",
        "api",
        "--settings",
        '{"webhook_url": "http://127.0.0.1:9/x"}',
    )
    assert api.returncode == 0 and "secret: " in api.stdout
    store = Store(db_url)
    try:
        authenticator = Authenticator(store, Sessions("k", 60))
        agent = await authenticator.agent_for_token(token.stdout.strip())
        assert agent is not None and agent.email == "ada@example.test" and agent.role == "admin"
        assert await authenticator.login("ada@example.test", "correct-horse-battery") is not None
        assert await count(store, Agent) == 1
        async with store.session() as session:
            inbox = await session.get(Inbox, int(lines["inbox_id"]))
            assert inbox is not None and inbox.channel == "webchat" and inbox.public_key == lines["public_key"]
        assert await count(store, Inbox) == 2
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("argv", "stdin", "status", "message"),
    [
        (
            ["agent", "create", "--email", "b@example.test", "--name", "B", "--password-stdin"],
            "short\n",
            1,
            "at least 10",
        ),
        (["agent", "create", "--email", "b@example.test", "--name", "B"], "", 1, "pass --password-stdin"),
        (["agent", "create", "--email", "b@example.test", "--name", "B", "--role", "root"], "", 2, "invalid choice"),
        (["inbox", "create", "--name", "X", "--channel", "sms"], "", 2, "invalid choice: 'sms'"),
        (["inbox", "create", "--name", "X", "--channel", "api", "--settings", "[1]"], "", 1, "expected a JSON object"),
        (["inbox", "create", "--name", "X", "--channel", "api", "--settings", "{"], "", 1, "malformed JSON"),
        (["--config", "missing.toml", "migrate"], "", 1, "config file missing.toml not found"),
    ],
)
def test_bad_arguments_exit_non_zero_with_a_clear_message(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    stdin: str,
    status: int,
    message: str,
) -> None:
    """Checked in-process (the same `main` the console script runs): nothing here needs a database."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    assert code == status
    assert message in capsys.readouterr().err


async def test_demo_seeds_a_living_inbox_once(cli: Run, db_url: str) -> None:
    assert cli("migrate").returncode == 0
    seeded = cli("demo")
    assert seeded.returncode == 0, seeded.stderr
    last = seeded.stdout.strip().splitlines()[-1]
    assert last.startswith("log in as admin@example.com with password ")
    password = last.rsplit(" ", 1)[-1]

    store = Store(db_url)
    try:
        async with store.session() as session:
            statuses = set((await session.execute(select(Conversation.status))).scalars())
            kinds = set((await session.execute(select(Message.kind))).scalars())
            queued = (await session.execute(select(func.count()).where(Message.status == "queued"))).scalar_one()
        assert statuses == {"open", "pending", "snoozed", "resolved"}
        assert {"incoming", "outgoing", "note", "activity"} <= kinds and queued == 0
        conversations, messages, events = (
            await count(store, Conversation),
            await count(store, Message),
            await count(store, Event),
        )
        assert conversations >= 30 and messages >= 3 * conversations and events > messages
        assert await count(store, Label) >= 5
        authenticator = Authenticator(store, Sessions("k", 60))
        admin = await authenticator.login("admin@example.com", password)
        assert admin is not None and admin.role == "admin"

        twice = cli("demo")
        assert twice.returncode == 1 and "already exists" in twice.stderr
        assert await count(store, Conversation) == conversations and await count(store, Event) == events
    finally:
        await store.close()
