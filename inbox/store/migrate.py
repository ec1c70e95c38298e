"""Schema migrations with Alembic, run over the app's own async engine (`switchboard migrate`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import Connection

from inbox.store.engine import Store

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


async def upgrade(store: Store, revision: str = "head") -> None:
    """Bring the database to `revision` (idempotent)."""

    def run(connection: Connection) -> None:
        config = alembic_config(store.url)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with store.write_engine.begin() as connection:
        await connection.run_sync(run)
