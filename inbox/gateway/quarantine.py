"""Quarantine: messages a channel could not process (poison mail), kept for admins only.

A quarantined message is stored once per `(inbox, sha256 of its bytes)` with the reason and the raw original
(in the blob store), never as a conversation message, so agents never see it. Admins list it, download the
original, retry it (the channel takes the original again, after a fix) or discard it. A discarded row stays
as a tombstone without its bytes, so the same mail arriving again (a mailbox rebuilt with a new UIDVALIDITY)
is not quarantined again. Nothing here publishes events: the admin health page polls.

An inbox with mail in quarantine cannot be deleted (like one with conversations: nothing is thrown away by
an admin click); its tombstones go with it (`before_inbox_deleted`), so an inbox that later gets the same id
(SQLite reuses the highest id) inherits nothing. Rows of an inbox deleted before this rule (or while a
receiver was still quarantining) are listed as of a deleted inbox; they can be downloaded and discarded,
not retried.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from sqlalchemy import delete, func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox.clock import utcnow
from inbox.errors import Conflict, NotFound
from inbox.store.blobs import BlobStore
from inbox.store.engine import Store
from inbox.store.models import Inbox, Quarantined

log = logging.getLogger(__name__)
QUARANTINED = "quarantined"
DISCARDED = "discarded"


@dataclass(frozen=True, slots=True)
class Held:
    """One quarantined message with its inbox (None: the inbox was deleted), as the admin API shows it."""

    row: Quarantined
    inbox_name: str | None
    channel: str | None


async def before_inbox_deleted(tx: AsyncSession, inbox_id: int) -> None:
    """In the transaction deleting an inbox: refuse while mail of it is in quarantine, drop its tombstones."""
    held = (
        await tx.execute(
            select(func.count())
            .select_from(Quarantined)
            .where(col(Quarantined.inbox_id) == inbox_id, col(Quarantined.status) == QUARANTINED)
        )
    ).scalar_one()
    if held:
        raise Conflict(
            f"inbox {inbox_id} has {held} quarantined {'message' if held == 1 else 'messages'}: "
            "retry or discard them first"
        )
    await tx.execute(delete(Quarantined).where(col(Quarantined.inbox_id) == inbox_id))


class Quarantine:
    """Holds, lists, releases and discards quarantined messages."""

    def __init__(self, store: Store, blobs: BlobStore) -> None:
        self.store = store
        self.blobs = blobs

    async def hold(self, inbox_id: int, raw: bytes, reason: str, *, sender: str = "", subject: str = "") -> int:
        """Keep `raw` once with its reason; the same bytes again only update the reason and the attempt count."""
        digest = hashlib.sha256(raw).hexdigest()
        found = await self._update_existing(inbox_id, digest, reason)
        if found is not None:
            return found
        blob = await self.blobs.save(raw)
        try:
            async with self.store.transaction() as tx:
                row = Quarantined(
                    inbox_id=inbox_id,
                    digest=digest,
                    reason=reason[:4000],
                    sender=sender[:320],
                    subject=subject[:998],
                    size=len(raw),
                    storage_name=blob.storage_name,
                )
                tx.add(row)
                await tx.flush()
                assert row.id is not None
                return row.id
        except IntegrityError:  # another process quarantined the same mail a moment ago
            self.blobs.path(blob.storage_name).unlink(missing_ok=True)
            again = await self._update_existing(inbox_id, digest, reason)
            assert again is not None
            return again

    async def _update_existing(self, inbox_id: int, digest: str, reason: str) -> int | None:
        async with self.store.transaction() as tx:
            row = (
                await tx.execute(
                    select(Quarantined).where(col(Quarantined.inbox_id) == inbox_id, col(Quarantined.digest) == digest)
                )
            ).scalar_one_or_none()
            if row is None:
                return None
            if row.status == QUARANTINED:
                row.reason = reason[:4000]
                row.attempts += 1
                row.updated_at = utcnow()
            assert row.id is not None
            return row.id

    async def listing(self, inbox_id: int | None = None) -> list[Held]:
        """Every message still in quarantine (newest first), optionally of one inbox."""
        query = (
            select(Quarantined, Inbox)
            .outerjoin(Inbox, col(Inbox.id) == col(Quarantined.inbox_id))
            .where(col(Quarantined.status) == QUARANTINED)
            .order_by(col(Quarantined.id).desc())
        )
        if inbox_id is not None:
            query = query.where(col(Quarantined.inbox_id) == inbox_id)
        async with self.store.session() as session:
            rows = (await session.execute(query)).all()
        return [Held(row, inbox.name if inbox else None, inbox.channel if inbox else None) for row, inbox in rows]

    async def get(self, quarantined_id: int) -> Quarantined:
        async with self.store.session() as session:
            row = await session.get(Quarantined, quarantined_id)
        if row is None or row.status != QUARANTINED or row.storage_name is None:
            raise NotFound(f"quarantined message {quarantined_id} not found")
        return row

    async def raw(self, quarantined_id: int) -> tuple[Quarantined, bytes]:
        row = await self.get(quarantined_id)
        assert row.storage_name is not None
        try:
            return row, await self.blobs.read(row.storage_name)
        except FileNotFoundError as error:
            raise NotFound(f"quarantined message {quarantined_id}: its file is missing from storage") from error

    async def failed_again(self, quarantined_id: int, reason: str) -> None:
        """A retry failed: keep it, with the new reason."""
        async with self.store.transaction() as tx:
            row = await tx.get(Quarantined, quarantined_id)
            if row is not None:
                row.reason = reason[:4000]
                row.attempts += 1
                row.updated_at = utcnow()

    async def release(self, quarantined_id: int) -> None:
        """A retry stored the message: forget the quarantined copy."""
        await self._drop(quarantined_id, keep_tombstone=False)

    async def discard(self, quarantined_id: int) -> None:
        """Drop the bytes and keep a tombstone, so the same mail is not quarantined again (no tombstone for a
        deleted inbox: nothing arrives there any more)."""
        row = await self.get(quarantined_id)
        async with self.store.session() as session:
            inbox = await session.get(Inbox, row.inbox_id)
        await self._drop(quarantined_id, keep_tombstone=inbox is not None)

    async def _drop(self, quarantined_id: int, *, keep_tombstone: bool) -> None:
        async with self.store.transaction() as tx:
            row = await tx.get(Quarantined, quarantined_id)
            if row is None:
                return
            storage_name = row.storage_name
            if keep_tombstone:
                row.status = DISCARDED
                row.storage_name = None
                row.updated_at = utcnow()
            else:
                await tx.delete(row)
        if storage_name is not None:
            self.blobs.path(storage_name).unlink(missing_ok=True)

    async def counts(self) -> dict[int, int]:
        """Inbox id → messages in quarantine."""
        query = (
            select(col(Quarantined.inbox_id), func.count())
            .where(col(Quarantined.status) == QUARANTINED)
            .group_by(col(Quarantined.inbox_id))
        )
        async with self.store.session() as session:
            return {int(inbox_id): int(count) for inbox_id, count in (await session.execute(query)).all()}
