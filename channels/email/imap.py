"""IMAP in with aioimaplib: one `ImapReader` per mailbox.

IDLE where the server offers it, polling otherwise (each poll sends NOOP before its UID SEARCH, so a
mail in the mailbox when a poll starts is fetched by that poll). The position is a persisted `UIDVALIDITY:UID` cursor
that advances only after `deliver` returned, so an outage backfills with no gap and a restart never
refetches; headers are fetched first so mail already stored (its Message-ID, then its body digest) is skipped unparsed. A
message that fails three times is quarantined (stored with the original attached) and never blocks later
mail. Mail is only read (`BODY.PEEK`): nothing in the mailbox is changed or deleted. When the core is
overloaded (`Overloaded`), the reader keeps its cursor and its connection, waits `retry_after`, and goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aioimaplib import IMAP4, IMAP4_SSL

from channels.base import Host, InboxInfo, MessageDigests, Overloaded
from channels.email.dedupe import digested_id, is_stored
from channels.email.parse import text_digest
from channels.email.settings import EmailSettings, MailboxSettings, Security

log = logging.getLogger(__name__)

FETCH_LINE = re.compile(rb"^\d+ FETCH \(.*?\bUID (\d+)", re.I)
UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]", re.I)
HEADER_ID = re.compile(rb"^Message-ID:\s*(<[^<>\s]{1,900}>)", re.I | re.M)
MAX_ATTEMPTS = 3

Ingest = Callable[[InboxInfo, bytes, Sequence[str]], Awaitable[Any]]
Quarantine = Callable[[InboxInfo, bytes, str], Awaitable[Any]]


class ImapError(Exception):
    """The server said no (login, select, fetch); the reader reconnects with backoff."""


@dataclass
class Health:
    """What an admin page shows about one mailbox (Unix timestamps)."""

    last_success_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    failing_since: float | None = None  # first failure since the last successful fetch
    fetched: int = 0
    backlog: int = 0  # mails found on the server and not yet stored

    def failed(self, error: BaseException) -> None:
        detail = str(error) or ("no answer in time" if isinstance(error, TimeoutError) else "no details")
        self.last_error = f"{type(error).__name__}: {detail}"
        self.last_error_at = time.time()
        self.failing_since = self.failing_since or self.last_error_at

    def succeeded(self) -> None:
        self.last_success_at = time.time()
        self.failing_since = None


def cursor_key(inbox_id: int) -> str:
    return f"email.imap.{inbox_id}"


def parse_cursor(value: str | None) -> tuple[int, int]:
    """`"<uidvalidity>:<last uid>"` → numbers; (0, 0) when absent or unreadable."""
    try:
        validity, _, last = (value or "").partition(":")
        return int(validity), int(last)
    except ValueError:
        return 0, 0


def fetched_messages(lines: Sequence[Any]) -> dict[int, bytes]:
    """UID → literal bytes from a `UID FETCH` response."""
    found: dict[int, bytes] = {}
    uid: int | None = None
    for line in lines:
        if isinstance(line, bytearray | memoryview):
            if uid is not None:
                found[uid] = bytes(line)
            continue
        match = FETCH_LINE.match(line)
        uid = int(match.group(1)) if match else uid
    return found


class ImapReader:
    """Reads one mailbox into its inbox until cancelled; reconnects with backoff."""

    def __init__(
        self,
        host: Host,
        inbox: InboxInfo,
        mailbox: MailboxSettings,
        settings: EmailSettings,
        ingest: Ingest,
        quarantine: Quarantine,
    ) -> None:
        self.host = host
        self.inbox = inbox
        self.mailbox = mailbox
        self.settings = settings
        self.ingest = ingest
        self.quarantine = quarantine
        self.health = Health()
        self.failures: dict[tuple[int, int], int] = {}
        self.idle_active = asyncio.Event()  # set while an IDLE is in progress (tests and health)
        self.lost = asyncio.Event()  # set when the current session's connection drops

    async def call(self, command: Awaitable[Any]) -> Any:
        """Run one IMAP command, failing at once if the connection drops (aioimaplib would wait its timeout)."""
        task = asyncio.ensure_future(command)
        dropped = asyncio.ensure_future(self.lost.wait())
        try:
            await asyncio.wait({task, dropped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            dropped.cancel()
            if not task.done():
                task.cancel()
        if not task.cancelled() and task.done():
            return task.result()
        raise ImapError("connection lost")

    async def run(self) -> None:
        first = min(1.0, self.settings.reconnect_max_seconds)
        delay = first
        while True:
            fetched_before = self.health.last_success_at
            try:
                await self.session()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.health.failed(error)
                log.warning("email: inbox %s IMAP session ended: %s", self.inbox.id, self.health.last_error)
            self.idle_active.clear()
            if self.health.last_success_at != fetched_before:
                delay = first  # the session worked for a while: a fresh failure starts the backoff over
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.settings.reconnect_max_seconds)

    def client(self, lost: asyncio.Event) -> IMAP4:
        """A client whose connection is being opened (aioimaplib connects in the background)."""
        mailbox = self.mailbox
        timeout = self.settings.connect_timeout_seconds

        def connection_lost(error: Exception | None) -> None:
            lost.set()

        if mailbox.imap_security == Security.TLS:
            client: IMAP4 = IMAP4_SSL(
                mailbox.imap_host, mailbox.imap_port, timeout=timeout, ssl_context=ssl.create_default_context()
            )
            # IMAP4_SSL takes no conn_lost_cb; the protocol (made synchronously, connected later) does.
            client.protocol.conn_lost_cb = connection_lost
            return client
        return IMAP4(mailbox.imap_host, mailbox.imap_port, timeout=timeout, conn_lost_cb=connection_lost)

    async def login(self, client: IMAP4) -> None:
        mailbox = self.mailbox
        await asyncio.wait_for(client.wait_hello_from_server(), self.settings.connect_timeout_seconds)
        response = await self.call(client.login(mailbox.imap_username or mailbox.address, mailbox.imap_password))
        if response.result != "OK":
            raise ImapError(f"login as {mailbox.imap_username or mailbox.address} failed: {_text(response.lines)}")

    async def session(self) -> None:
        lost = self.lost = asyncio.Event()
        client = self.client(lost)
        try:
            await self.login(client)
            response = await self.call(client.select(self.mailbox.imap_folder))
            if response.result != "OK":
                raise ImapError(f"select {self.mailbox.imap_folder} failed: {_text(response.lines)}")
            validity = next(
                (
                    int(m.group(1))
                    for line in response.lines
                    if isinstance(line, bytes) and (m := UIDVALIDITY.search(line))
                ),
                0,
            )
            use_idle = self.mailbox.imap_idle and client.has_capability("IDLE")
            while True:
                # Repeat until a search finds nothing new: mail that arrived while we were fetching was
                # announced inside those responses, not in the IDLE that follows.
                try:
                    while await self.catch_up(client, validity):
                        pass
                except Overloaded as busy:  # the cursor stays before the refused mail: wait, then go on
                    await asyncio.sleep(busy.retry_after)
                    continue
                self.health.succeeded()
                if use_idle:
                    await self.idle(client, lost)
                else:
                    await asyncio.sleep(self.mailbox.poll_interval_seconds or self.settings.poll_interval_seconds)
                    await self.refresh(client)
        finally:
            self.idle_active.clear()
            if not lost.is_set() and client.get_state() in ("AUTH", "SELECTED"):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.logout(), 2)
            _close(client)

    async def refresh(self, client: IMAP4) -> None:
        """Polling without IDLE: NOOP first, so the server updates this session's view of the mailbox.

        Without it a server may answer the next UID SEARCH from the view it had at the previous command,
        and a mail that arrived meanwhile would wait for a second poll.
        """
        response = await self.call(client.noop())
        if response.result != "OK":
            raise ImapError(f"noop failed: {_text(response.lines)}")

    async def idle(self, client: IMAP4, lost: asyncio.Event) -> None:
        """Wait in IDLE until the server reports a change, the renew interval passes or the connection drops."""
        idle = await client.idle_start(timeout=self.settings.idle_renew_seconds)
        self.idle_active.set()
        push = asyncio.ensure_future(client.wait_server_push(timeout=self.settings.idle_renew_seconds + 5))
        dropped = asyncio.ensure_future(lost.wait())
        try:
            # Any push (EXISTS, EXPUNGE, flag changes) or the renew timer ends this IDLE; catching up is cheap.
            await asyncio.wait({push, dropped}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            if not lost.is_set():
                with contextlib.suppress(Exception):
                    client.idle_done()  # so the LOGOUT that follows is answered
            raise
        finally:
            self.idle_active.clear()
            for task in (push, dropped):
                task.cancel()
            await asyncio.gather(push, dropped, return_exceptions=True)
        if lost.is_set():
            idle.cancel()
            raise ImapError("connection lost during IDLE")
        client.idle_done()
        await asyncio.wait_for(idle, 30)

    async def catch_up(self, client: IMAP4, validity: int) -> int:
        """Fetch everything after the cursor, oldest first, advancing the cursor after each delivery.

        Answers how many new UIDs the search found.
        """
        key = cursor_key(self.inbox.id)
        stored_validity, last = parse_cursor(await self.host.load_cursor(key))
        if stored_validity != validity:
            # The mailbox was rebuilt: UIDs mean nothing now. Start over; stored Message-IDs are skipped.
            last = 0
            await self.host.save_cursor(key, f"{validity}:0")
        response = await self.call(client.uid_search(f"UID {last + 1}:*"))
        if response.result != "OK":
            raise ImapError(f"search failed: {_text(response.lines)}")
        uids = sorted(int(item) for item in response.lines[0].split() if int(item) > last) if response.lines else []
        batch = max(1, self.settings.fetch_batch)
        self.health.backlog = len(uids)
        for start in range(0, len(uids), batch):
            chunk = uids[start : start + batch]
            known = await self.known(client, chunk)
            for uid in chunk:
                if uid not in known:
                    await self.fetch_one(client, validity, uid)
                await self.host.save_cursor(key, f"{validity}:{uid}")
                self.health.backlog -= 1
        return len(uids)

    async def known(self, client: IMAP4, uids: Sequence[int]) -> set[int]:
        """Header-first: which of these UIDs are mails already stored in this inbox.

        A stored Message-ID is not enough (two different mails may carry one): for those UIDs the body is
        fetched (`BODY.PEEK[TEXT]`, no parsing) and its digest compared with the stored one
        (`channels.email.dedupe`). New mail costs the one header fetch, as before.
        """
        response = await self.call(
            client.uid("fetch", ",".join(map(str, uids)), "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        )
        if response.result != "OK":
            raise ImapError(f"header fetch failed: {_text(response.lines)}")
        ids: dict[int, str] = {}
        for uid, header in fetched_messages(response.lines).items():
            match = HEADER_ID.search(header)
            if match:
                ids[uid] = match.group(1).decode("ascii", "replace")
        if not isinstance(self.host, MessageDigests):
            stored_ids = await self.host.known_external_ids(self.inbox.id, sorted(set(ids.values())))
            return {uid for uid, message_id in ids.items() if message_id in stored_ids}
        stored = await self.host.message_digests(self.inbox.id, sorted(set(ids.values())))
        seen = {uid: message_id for uid, message_id in ids.items() if message_id in stored}
        if not seen:
            return set()
        response = await self.call(client.uid("fetch", ",".join(map(str, sorted(seen))), "(UID BODY.PEEK[TEXT])"))
        if response.result != "OK":
            raise ImapError(f"body fetch failed: {_text(response.lines)}")
        digests = {uid: text_digest(body) for uid, body in fetched_messages(response.lines).items() if uid in seen}
        variants = sorted({digested_id(seen[uid], digest) for uid, digest in digests.items()})
        stored.update(await self.host.message_digests(self.inbox.id, variants))
        return {uid for uid, digest in digests.items() if is_stored(seen[uid], digest, stored)}

    async def fetch_one(self, client: IMAP4, validity: int, uid: int) -> None:
        """Fetch and store one mail. A mail that fails `MAX_ATTEMPTS` times (to fetch or to store) is
        quarantined and passed, so it never blocks the mail behind it."""
        attempt = (validity, uid)
        raw: bytes | None = None
        try:
            response = await self.call(client.uid("fetch", str(uid), "(UID BODY.PEEK[])"))
            if response.result != "OK":
                raise ImapError(f"fetch of UID {uid} failed: {_text(response.lines)}")
            raw = fetched_messages(response.lines).get(uid)
            if raw is None:
                return  # expunged meanwhile
            await self.ingest(self.inbox, raw, ())
        except Overloaded:
            raise  # the server is busy, the mail is fine: not an attempt towards quarantine
        except Exception as error:
            count = self.failures.get(attempt, 0) + 1
            self.failures[attempt] = count
            if count < MAX_ATTEMPTS:
                raise  # reconnect and try again: the failure may be transient (network, database restarting)
            log.exception("email: inbox %s UID %s failed %s times; quarantining it", self.inbox.id, uid, count)
            reason = f"{type(error).__name__}: {error}"
            if raw is None:
                reason = f"UID {uid} could not be fetched ({reason}); it is still in the mailbox"
            try:
                await self.quarantine(self.inbox, raw or f"X-Switchboard-Imap-Uid: {uid}\r\n\r\n".encode(), reason)
            except Overloaded:
                raise  # quarantined on the next attempt, not skipped
            except Exception:
                log.exception("email: quarantining UID %s failed; skipping it (it stays in the mailbox)", uid)
        self.failures.pop(attempt, None)
        self.health.fetched += 1


def _close(client: IMAP4) -> None:
    """Close the socket whatever state the session ended in (cancelled mid-connect, server gone, …)."""
    task = getattr(client, "_client_task", None)
    if task is not None and not task.done():
        task.cancel()
    transport = getattr(client.protocol, "transport", None)
    if transport is not None:
        transport.abort()


def _text(lines: Sequence[Any]) -> str:
    return " ".join(line.decode("utf-8", "replace") if isinstance(line, bytes) else str(line) for line in lines)[:300]
