"""The core as a channel sees it: `channels.base.Host`, implemented over the store and the service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from channels.base import Delivered, Edit, Identity, Inbound, InboxInfo
from inbox.clock import utcnow
from inbox.models import Cursor, Inbox
from inbox.outbox import inbox_info
from inbox.service import InboxService
from inbox.store import Store


class CoreHost:
    """What adapters may ask of the core: deliver or edit a message, look up inboxes, keep cursors."""

    def __init__(self, store: Store, service: InboxService) -> None:
        self.store = store
        self.service = service

    async def deliver(self, inbound: Inbound) -> Delivered:
        return await self.service.deliver(inbound)

    async def inbox(self, inbox_id: int) -> InboxInfo | None:
        async with self.store.session() as session:
            row = await session.get(Inbox, inbox_id)
        return inbox_info(row) if row is not None else None

    async def inboxes(self, channel: str) -> Sequence[InboxInfo]:
        async with self.store.session() as session:
            rows = (
                await session.execute(select(Inbox).where(col(Inbox.channel) == channel).order_by(col(Inbox.id)))
            ).scalars()
            return [inbox_info(row) for row in rows]

    async def edit(self, edit: Edit) -> Delivered | None:
        return await self.service.edit_incoming(edit.inbound, edit.edited_at)

    async def set_contact_attributes(self, identity: Identity, attributes: Mapping[str, Any]) -> None:
        await self.service.set_contact_attributes(str(identity.kind), identity.value, attributes)

    async def load_cursor(self, key: str) -> str | None:
        async with self.store.session() as session:
            row = await session.get(Cursor, key)
        return row.value if row is not None else None

    async def save_cursor(self, key: str, value: str) -> None:
        # A cursor is a channel's own position, not conversation data: written here, not by the service.
        for attempt in range(2):
            try:
                async with self.store.transaction() as tx:
                    row = await tx.get(Cursor, key)
                    if row is None:
                        tx.add(Cursor(key=key, value=value, updated_at=utcnow()))
                    else:
                        row.value = value
                        row.updated_at = utcnow()
                return
            except IntegrityError:
                if attempt == 1:  # another process inserted the same key at the same moment: update it instead
                    raise
