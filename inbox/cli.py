"""The `switchboard` command line: serve, migrate, and admin chores (agents, tokens, inboxes, demo data).

Each command runs its own `asyncio.run`; errors print one clear line on stderr and exit non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import fcntl
import getpass
import json
import os
import sqlite3
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select

from inbox import config as config_module
from inbox.admin.directory import ChannelKind, Directory, check_password, normalise_email
from inbox.config import Config
from inbox.errors import InboxError, NotFound
from inbox.realtime.broker import LocalBroker
from inbox.service import InboxService
from inbox.store.blobs import BlobStore
from inbox.store.engine import Store
from inbox.store.migrate import upgrade
from inbox.store.models import Agent, key


def _load(path: str | None) -> Config:
    return config_module.load(path)


async def _migrate(config: Config) -> None:
    store = Store(config.database.url)
    try:
        await upgrade(store)
    finally:
        await store.close()


def cmd_migrate(args: argparse.Namespace) -> int:
    config = _load(args.config)
    asyncio.run(_migrate(config))
    print(f"database is up to date ({config.database.url.split('@')[-1]})")
    return 0


# ── backup and restore ──────────────────────────────────────────────────────────────────────
# SQLite: an online, consistent copy through SQLite's backup API (one step: it reads one snapshot while the
# server keeps writing, thanks to WAL), checked, then renamed into place. PostgreSQL has its own tools.
POSTGRES_BACKUP = (
    "switchboard backup: the database is PostgreSQL; back it up with its own tool while the server runs:\n"
    "    pg_dump --format=custom --file={path} <database url as postgresql://user:pass@host/db>\n"
    "and restore into an empty database with pg_restore --dbname=<url> {path} (see README, Operations)"
)
POSTGRES_RESTORE = (
    "switchboard restore: the database is PostgreSQL; restore a pg_dump file with pg_restore into an empty\n"
    "database: pg_restore --dbname=<url> {path}, then `switchboard migrate` (see README, Operations)"
)
EXIT_USE_OTHER_TOOL = 2


def _sqlite_file(config: Config, command: str, path: str) -> Path | None:
    """The SQLite database file of the config; None (after saying what to use) for PostgreSQL."""
    url = make_url(config.database.url)
    if url.get_backend_name() != "sqlite":
        print((POSTGRES_BACKUP if command == "backup" else POSTGRES_RESTORE).format(path=path), file=sys.stderr)
        return None
    if not url.database or url.database == ":memory:":
        raise InboxError(f"database.url: {command} needs a database file, not {config.database.url}")
    return Path(url.database)


def backup_sqlite(source: Path, target: Path) -> int:
    """Copy the live database `source` to `target` (which must not exist) consistently; answer its size.

    One backup step copies every page under one read transaction: in WAL mode the server's writers go on,
    and the copy is the database as of the moment that step began — everything committed before it.
    Written to a temporary name, checked (`quick_check`), switched to a single file (journal mode DELETE),
    then renamed: a `target` that exists is always a whole backup."""
    if not source.exists():
        raise InboxError(f"database file {source} does not exist")
    if target.exists():
        raise InboxError(f"{target} exists; choose a new file name (a backup never overwrites one)")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    with (
        contextlib.closing(sqlite3.connect(source, timeout=30)) as live,
        contextlib.closing(sqlite3.connect(partial)) as copy,
    ):
        live.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")
        _check_sqlite(copy, partial)
    os.replace(partial, target)
    return target.stat().st_size


def _check_sqlite(connection: sqlite3.Connection, path: Path) -> None:
    verdict = connection.execute("PRAGMA quick_check").fetchone()
    if not verdict or verdict[0] != "ok":
        raise InboxError(f"{path} is damaged: quick_check says {verdict[0] if verdict else 'nothing'}")


def sqlite_in_use(database: Path) -> bool:
    """Whether some process has the database open (a running server, a CLI command).

    Every connection to a WAL database holds a shared lock on the "dead man switch" byte (128) of its `-shm`
    file for as long as it is open; taking that byte exclusively fails while anyone else holds it."""
    shm = database.with_name(database.name + "-shm")
    if not shm.exists():
        return False
    with open(shm, "r+b") as handle:
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)
        except OSError:
            return True
        fcntl.lockf(handle, fcntl.LOCK_UN, 1, 128)
    return False


def restore_sqlite(backup: Path, database: Path) -> Path | None:
    """Replace `database` with the contents of `backup`; refused while the database is open anywhere.

    The database being replaced is first copied to `<database>.before-restore` (answered; None when there
    was none), so a restore of the wrong file can be undone the same way."""
    if not backup.exists():
        raise InboxError(f"{backup} does not exist")
    with contextlib.closing(sqlite3.connect(f"file:{backup}?mode=ro", uri=True)) as source:
        try:
            _check_sqlite(source, backup)
            source.execute("SELECT version_num FROM alembic_version").fetchall()
        except sqlite3.DatabaseError as exc:
            raise InboxError(f"{backup} is not a Switchboard database backup ({exc})") from exc
        if sqlite_in_use(database):
            raise InboxError(f"{database} is in use (a server or another command has it open); stop it first")
        kept = None
        if database.exists():
            kept = database.with_name(database.name + ".before-restore")
            kept.unlink(missing_ok=True)
            backup_sqlite(database, kept)
        database.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(database)) as target:
            source.backup(target)
            _check_sqlite(target, database)
    return kept


def cmd_backup(args: argparse.Namespace) -> int:
    config = _load(args.config)
    source = _sqlite_file(config, "backup", args.path)
    if source is None:
        return EXIT_USE_OTHER_TOOL
    target = Path(args.path).resolve()
    # In a worker thread: the same call serves an event loop (a test, a scheduled job) without blocking it.
    size = asyncio.run(asyncio.to_thread(backup_sqlite, source, target))
    print(f"backup of {source} written to {target} ({size} bytes)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    config = _load(args.config)
    database = _sqlite_file(config, "restore", args.path)
    if database is None:
        return EXIT_USE_OTHER_TOOL
    kept = restore_sqlite(Path(args.path).resolve(), database)
    if kept is not None:
        print(f"the database it replaced was kept as {kept}")
    print(f"{database} restored from {args.path}; run `switchboard migrate` if the backup is from an older version")
    return 0


@asynccontextmanager
async def _directory(config: Config) -> AsyncIterator[Directory]:
    """A Directory over the configured database; events go to the log (a running server replays them)."""
    store = Store(config.database.url)
    try:
        async with store.session() as session:
            await session.execute(select(Agent.id).limit(1))
    except Exception as exc:
        await store.close()
        raise InboxError(
            f"database {config.database.url.split('@')[-1]} is not ready ({type(exc).__name__}); run `switchboard migrate` first"
        ) from exc
    try:
        from inbox.app import SETTINGS_VALIDATORS  # the channels' settings checks, as the server applies them

        yield Directory(InboxService(store, LocalBroker(), BlobStore(config.storage.directory)), SETTINGS_VALIDATORS)
    finally:
        await store.close()


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise InboxError("no terminal to ask for a password: pass --password-stdin and pipe it in")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        raise InboxError("the two passwords do not match")
    return first


def cmd_agent_create(args: argparse.Namespace) -> int:
    config = _load(args.config)
    password = check_password(_password(args))
    normalise_email(args.email)

    async def run() -> Agent:
        async with _directory(config) as directory:
            return await directory.create_agent(email=args.email, name=args.name, role=args.role, password=password)

    agent = asyncio.run(run())
    print(f"created {agent.role} {agent.email} (agent {agent.id})")
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    config = _load(args.config)

    async def run() -> str:
        async with _directory(config) as directory:
            async with directory.store.session() as session:
                agent = (
                    await session.execute(select(Agent).where(col(Agent.email) == args.email.strip().lower()))
                ).scalar_one_or_none()
            if agent is None:
                raise NotFound(f"no agent with email {args.email}")
            _, token = await directory.create_token(key(agent), args.name)
            return token

    print(asyncio.run(run()))
    return 0


PUSHED_CHANNELS = ("telegram", "whatsapp", "vk", "phone")


def cmd_inbox_create(args: argparse.Namespace) -> int:
    config = _load(args.config)
    try:
        settings = json.loads(args.settings)
    except ValueError as exc:
        raise InboxError(f"--settings: malformed JSON ({exc})") from exc
    if not isinstance(settings, dict):
        raise InboxError("--settings: expected a JSON object")

    async def run() -> dict[str, Any]:
        async with _directory(config) as directory:
            return await directory.create_inbox(name=args.name, channel=args.channel, settings=settings)

    inbox = asyncio.run(run())
    print(f"inbox_id: {inbox['id']}")
    if inbox["channel"] == "webchat":
        print(f"public_key: {inbox['public_key']}")
    if inbox["channel"] == "api":
        print(f"secret: {inbox['secret']}")
    if inbox["channel"] in PUSHED_CHANNELS:  # what to type into the provider's dashboard (README per channel)
        print(f"webhook_url: {config.server.base_url.rstrip('/')}/channels/{inbox['channel']}/{inbox['id']}")
    if inbox["channel"] == "phone" and "signing_secret" not in settings:
        print(f"signing_secret: {inbox['secret']}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from inbox.demo.seed import seed

    config = _load(args.config)

    async def run() -> tuple[str, str]:
        async with _directory(config) as directory:
            return await seed(directory)

    email, password = asyncio.run(run())
    print("demo data created: agents, inboxes, contacts and conversations")
    print(f"log in as {email} with password {password}")
    return 0


def cmd_repair_misfiled(args: argparse.Namespace) -> int:
    """Find (and with --apply, move) inbound messages filed under another customer's conversation."""
    config = _load(args.config)

    async def run() -> tuple[list[Any], list[Any]]:
        async with _directory(config) as directory:
            service = directory.service
            found = await service.find_misfiled()
            moved = await service.refile(found) if args.apply else []
            return found, moved

    found, moved = asyncio.run(run())
    for item in found:
        owner = f"contact {item.owner_contact_id}" if item.owner_contact_id else "no contact yet"
        print(
            f"message {item.message_id}: from {item.sender_kind} {item.sender_value!r} ({owner}) "
            f"filed in conversation {item.conversation_id} of contact {item.filed_contact_id}"
        )
    if not args.apply:
        print(f"{len(found)} misfiled message(s) found; dry run, nothing changed (run again with --apply to move them)")
        return 0
    for move in moved:
        print(f"moved message {move.message_id}: conversation {move.from_conversation} -> {move.to_conversation}")
    print(f"{len(moved)} message(s) moved to their senders' own conversations")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from inbox.app import UVICORN_OPTIONS, create_app

    config = _load(args.config)
    if args.development:
        config = dataclasses.replace(config, server=dataclasses.replace(config.server, development=True))
    host = args.host or config.server.host
    port = args.port or config.server.port
    app = create_app(config)
    uvicorn.run(app, host=host, port=port, log_level="info", **UVICORN_OPTIONS)
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="switchboard", description="Omnichannel support inbox with live chat")
    root.add_argument("--config", default=None, help="path to config.toml (default: ./config.toml if present)")
    commands = root.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the web server and background workers")
    serve.add_argument("--config", default=argparse.SUPPRESS)
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--development", action="store_true", help="development mode (enables /demo)")
    serve.set_defaults(func=cmd_serve)
    migrate = commands.add_parser("migrate", help="create or upgrade the database schema")
    migrate.add_argument("--config", default=argparse.SUPPRESS)
    migrate.set_defaults(func=cmd_migrate)
    backup = commands.add_parser(
        "backup", help="write a consistent copy of the SQLite database while the server runs (PostgreSQL: pg_dump)"
    )
    backup.add_argument("--config", default=argparse.SUPPRESS)
    backup.add_argument("path", help="the backup file to create (never overwritten)")
    backup.set_defaults(func=cmd_backup)
    restore = commands.add_parser(
        "restore", help="replace the SQLite database with a backup; the server must be stopped (PostgreSQL: pg_restore)"
    )
    restore.add_argument("--config", default=argparse.SUPPRESS)
    restore.add_argument("path", help="a file written by `switchboard backup`")
    restore.set_defaults(func=cmd_restore)

    agent = commands.add_parser("agent", help="manage agents").add_subparsers(dest="action", required=True)
    create = agent.add_parser("create", help="add an agent (password from --password-stdin or a prompt)")
    create.add_argument("--config", default=argparse.SUPPRESS)
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--role", choices=["admin", "supervisor", "agent"], default="agent")
    create.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    create.set_defaults(func=cmd_agent_create)

    token = commands.add_parser("token", help="manage API tokens").add_subparsers(dest="action", required=True)
    create = token.add_parser("create", help="print a new API token for an agent")
    create.add_argument("--config", default=argparse.SUPPRESS)
    create.add_argument("--email", required=True)
    create.add_argument("--name", default="cli", help="a label to recognise the token by")
    create.set_defaults(func=cmd_token_create)

    inbox = commands.add_parser("inbox", help="manage inboxes").add_subparsers(dest="action", required=True)
    create = inbox.add_parser("create", help="add an inbox; prints its id (and public key or secret)")
    create.add_argument("--config", default=argparse.SUPPRESS)
    create.add_argument("--name", required=True)
    create.add_argument("--channel", required=True, choices=[str(kind) for kind in ChannelKind])
    create.add_argument("--settings", default="{}", help="channel settings as a JSON object")
    create.set_defaults(func=cmd_inbox_create)

    demo = commands.add_parser("demo", help="seed realistic sample data (refuses to run twice)")
    demo.add_argument("--config", default=argparse.SUPPRESS)
    demo.set_defaults(func=cmd_demo)
    repair = commands.add_parser("repair", help="repair stored data").add_subparsers(dest="action", required=True)
    misfiled = repair.add_parser(
        "misfiled",
        help="find messages filed under another customer's conversation (PostgreSQL before 2026-12); dry run",
    )
    misfiled.add_argument("--apply", action="store_true", help="move them to their senders' own conversations")
    misfiled.add_argument("--config", default=argparse.SUPPRESS)
    misfiled.set_defaults(func=cmd_repair_misfiled)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.config is None:
        args.config = "config.toml" if Path("config.toml").exists() else None
    try:
        return int(args.func(args))
    except InboxError as exc:
        print(f"switchboard: {exc.detail}", file=sys.stderr)
        return 1
    except (OSError, SQLAlchemyError) as exc:
        print(f"switchboard: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
