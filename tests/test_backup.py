"""`switchboard backup` and `switchboard restore` (issue 17): a round trip under write load on SQLite.

Deliveries keep running while `switchboard backup` (a separate process, as an operator runs it) copies the
live database; the copy opens, passes SQLite's check and holds every message acknowledged before the backup
started. `switchboard restore` refuses while the server has the database open, then brings the copy back
once it is stopped. PostgreSQL: both commands say what to use instead and exit 2.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import pytest

from inbox.cli import main
from inbox.store.models import Inbox
from tests.factories import inbound, make_inbox
from tests.servers.app import ROOT, LiveServer, live_server, make_config

pytestmark = pytest.mark.timeout(120)
WRITERS = 4


async def switchboard(db_url: str, *args: str) -> tuple[int, str]:
    """Run the `switchboard` command in its own process against `db_url`; its exit code and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "inbox",
        *args,
        cwd=ROOT,
        env={**os.environ, "SWITCHBOARD_DATABASE_URL": db_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


def external_ids(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return {row[0] for row in db.execute("SELECT external_id FROM message WHERE external_id IS NOT NULL")}


class Load:
    """Writers delivering messages until told to stop; what was acknowledged, in order."""

    def __init__(self, server: LiveServer, inbox: Inbox) -> None:
        self.server = server
        self.inbox = inbox
        self.acknowledged: list[str] = []
        self.stopping = asyncio.Event()
        self.tasks = [asyncio.create_task(self.write(n)) for n in range(WRITERS)]

    async def write(self, writer: int) -> None:
        n = 0
        while not self.stopping.is_set():
            external_id = f"w{writer}-{n}"
            await self.server.state.service.deliver(
                inbound(self.inbox, external_id, text=f"message {n}", sender=f"cust-{writer}-{n % 7}")
            )
            self.acknowledged.append(external_id)
            n += 1

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.gather(*self.tasks)


async def test_backup_under_write_load_then_restore(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"
    copy = tmp_path / "backups" / "switchboard-backup.db"
    copy.parent.mkdir()
    async with live_server(make_config(url, tmp_path)) as server:
        inbox = await make_inbox(server.state.store, name="Support")
        load = Load(server, inbox)
        while len(load.acknowledged) < 200:
            await asyncio.sleep(0.01)
        before_backup = set(load.acknowledged)
        code, output = await switchboard(url, "backup", str(copy))
        during = len(load.acknowledged) - len(before_backup)
        await load.stop()
        assert code == 0, output
        assert "written to" in output
        assert during > 0, "no delivery ran while the backup ran: the test did not test an online backup"
        saved = external_ids(copy)
        assert before_backup <= saved, f"{len(before_backup - saved)} acknowledged messages missing from the backup"
        assert not copy.with_name(copy.name + "-wal").exists()  # one self-contained file

        # A backup never overwrites a file.
        again, output = await switchboard(url, "backup", str(copy))
        assert again == 1 and "exists" in output, output

        # While the server has the database open, restore refuses and changes nothing.
        refused, output = await switchboard(url, "restore", str(copy))
        assert refused == 1 and "in use" in output, output
        await server.state.service.deliver(inbound(inbox, "after-backup", text="not in the backup"))
        assert "after-backup" in external_ids(tmp_path / "live.db")

    # The server is stopped: restore brings the backup back and keeps what it replaced.
    restored, output = await switchboard(url, "restore", str(copy))
    assert restored == 0, output
    live = external_ids(tmp_path / "live.db")
    assert live == saved and "after-backup" not in live
    assert "after-backup" in external_ids(tmp_path / "live.db.before-restore")


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_postgres_says_to_use_its_own_tools(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", "postgresql+asyncpg://sb:secret@db.example.test/sb")
    assert main([command, str(tmp_path / "out.dump")]) == 2
    said = capsys.readouterr().err
    assert ("pg_dump" if command == "backup" else "pg_restore") in said
    assert "secret" not in said
    assert not (tmp_path / "out.dump").exists()
