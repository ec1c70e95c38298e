"""A throwaway PostgreSQL server: initdb into a temp dir, run on a free loopback port, remove after.

initdb/postgres refuse to run as root, so as root they run as the `postgres` user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CANDIDATES = ["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"]


def binaries() -> Path | None:
    for candidate in CANDIDATES:
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_user() -> dict[str, object]:
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid}


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a base URL `postgresql+asyncpg://postgres@127.0.0.1:PORT` for a fresh cluster."""
    bin_dir = binaries()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL binaries (initdb) not found")
    root = Path(tempfile.mkdtemp(prefix="sb-pg-"))
    data = root / "data"
    data.mkdir()
    root.chmod(0o755)
    user = _as_user()
    if user:
        for path in (root, data):
            os.chown(path, int(user["user"]), int(user["group"]))  # type: ignore[call-overload]
    subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"],
        check=True,
        capture_output=True,
        **user,  # type: ignore[arg-type]
    )
    port = free_port()
    log_file = open(root / "postgres.log", "wb")  # noqa: SIM115  (closed in finally)
    process = subprocess.Popen(
        [
            str(bin_dir / "postgres"),
            "-D",
            str(data),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-k",
            str(root),
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=300",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log_file,
        **user,  # type: ignore[arg-type]
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((root / "postgres.log").read_text()) from None
                time.sleep(0.05)
        # Accepting TCP is not the same as accepting logins; wait for pg_isready.
        for _ in range(200):
            ready = subprocess.run(
                [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"],
                capture_output=True,
            )
            if ready.returncode == 0:
                break
            time.sleep(0.05)
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log_file.close()
        shutil.rmtree(root, ignore_errors=True)
