"""The `switchboard` command line: serve, migrate, and admin chores (agents, tokens, inboxes, demo data)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from collections.abc import Sequence

from inbox import config as config_module
from inbox.config import Config
from inbox.errors import InboxError
from inbox.migrate import upgrade
from inbox.store import Store


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


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from inbox.app import create_app

    config = _load(args.config)
    if args.development:
        config = dataclasses.replace(config, server=dataclasses.replace(config.server, development=True))
    host = args.host or config.server.host
    port = args.port or config.server.port
    app = create_app(config)
    uvicorn.run(app, host=host, port=port, log_level="info", ws_per_message_deflate=False, proxy_headers=False)
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
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.config is None:
        from pathlib import Path

        args.config = "config.toml" if Path("config.toml").exists() else None
    try:
        return int(args.func(args))
    except InboxError as exc:
        print(f"switchboard: {exc.detail}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
