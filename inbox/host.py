"""The core as a channel sees it: `channels.base.Host`, implemented over the store and the service."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select

from channels.base import Delivered, Inbound, InboxInfo
from inbox.models import Inbox
from inbox.outbox import inbox_info
from inbox.service import InboxService
from inbox.store import Store


class CoreHost:
    """What adapters may ask of the core: deliver a message, look up inboxes."""

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
