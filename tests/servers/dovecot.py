"""A throwaway Dovecot IMAP server on a free loopback port, owned by the test session.

Runs `dovecot -F -c <generated conf>`; as root, mail processes run as `nobody` from a 0755 directory
under /tmp (pytest's tmp_path is not reachable for them). See TESTING.md.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.servers.app import free_port


def binary() -> str | None:
    return shutil.which("dovecot") or (os.path.exists("/usr/sbin/dovecot") and "/usr/sbin/dovecot") or None


@dataclass(frozen=True)
class Dovecot:
    host: str
    port: int
    users: dict[str, str]
    root: Path
    tls_port: int | None = None  # implicit-TLS IMAP (993-style), when started with certificates


CONFIG = """\
instance_name = sb-test-{port}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
# Tests fail logins on purpose: no growing penalty for loopback clients.
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
mail_location = maildir:{root}/mail/%u/Maildir
{identity}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
{unprivileged}
"""


@contextlib.contextmanager
def dovecot_server(users: dict[str, str], *, cert: Path | None = None, key: Path | None = None) -> Iterator[Dovecot]:
    """Start Dovecot with these `address: password` users; stop it (and remove its files) afterwards.

    With `cert` and `key`, it also listens for implicit-TLS IMAP on `tls_port`.
    """
    exe = binary()
    assert exe is not None
    root = Path(tempfile.mkdtemp(prefix="sb-dovecot-", dir="/tmp"))
    os.chmod(root, 0o755)
    port = free_port()
    tls_port = free_port() if cert and key else 0
    ssl_setting = f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}" if cert and key else "ssl = no"
    is_root = os.geteuid() == 0
    uid, gid = (65534, 65534) if is_root else (os.getuid(), os.getgid())
    for name in ("run", "state", "mail"):
        (root / name).mkdir()
    (root / "users").write_text("".join(f"{user}:{{PLAIN}}{password}::::::\n" for user, password in users.items()))
    if is_root:
        os.chown(root / "mail", uid, gid)
        identity = f"mail_uid = {uid}\nmail_gid = {gid}\nfirst_valid_uid = {uid}\nfirst_valid_gid = {gid}"
        unprivileged = ""
    else:
        user = os.environ.get("USER") or str(uid)
        identity = f"default_internal_user = {user}\ndefault_internal_group = {user}\ndefault_login_user = {user}"
        unprivileged = "service anvil {\n  chroot =\n}\nservice imap-login {\n  chroot =\n}\n"
    conf = root / "dovecot.conf"
    conf.write_text(
        CONFIG.format(
            root=root,
            port=port,
            tls_port=tls_port,
            ssl=ssl_setting,
            uid=uid,
            gid=gid,
            identity=identity,
            unprivileged=unprivileged,
        )
    )
    with open(root / "stderr.log", "wb") as stderr:
        process = subprocess.Popen([exe, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {(root / 'stderr.log').read_text(errors='replace')}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if sock.recv(100).startswith(b"* OK"):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("dovecot did not start")
            time.sleep(0.05)
        yield Dovecot("127.0.0.1", port, dict(users), root, tls_port or None)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        shutil.rmtree(root, ignore_errors=True)
