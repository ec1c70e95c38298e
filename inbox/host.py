"""The core as a channel sees it: `channels.base.Host`, implemented over the store and the service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import col, select

from channels.base import Delivered, Inbound, InboxInfo, ThreadInfo
from inbox.clock import utcnow
from inbox.models import Agent, Conversation, Cursor, Identity, Inbox, Message, MessageKind
from inbox.outbox import inbox_info
from inbox.service import InboxService
from inbox.store import Store

PARTICIPANT_SCAN = 200  # incoming messages looked at when listing a conversation's participants


class CoreHost:
    """What adapters may ask of the core: deliver a message, look up inboxes, threads and cursors."""

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

    async def find_conversation(
        self, inbox_id: int, *, conversation_id: int | None = None, external_id: str | None = None
    ) -> ThreadInfo | None:
        async with self.store.session() as session:
            if conversation_id is None and external_id is not None:
                conversation_id = (
                    await session.execute(
                        select(Message.conversation_id).where(
                            col(Message.inbox_id) == inbox_id, col(Message.external_id) == external_id
                        )
                    )
                ).scalar_one_or_none()
            if conversation_id is None:
                return None
            conversation = await session.get(Conversation, conversation_id)
            if conversation is None or conversation.inbox_id != inbox_id:
                return None
            participants: set[str] = set()
            identities = (
                await session.execute(
                    select(Identity.value).where(
                        col(Identity.contact_id) == conversation.contact_id, col(Identity.kind) == "email"
                    )
                )
            ).scalars()
            participants.update(identities)
            metas = (
                await session.execute(
                    select(Message.meta)
                    .where(col(Message.conversation_id) == conversation_id, col(Message.kind) == MessageKind.INCOMING)
                    .order_by(col(Message.id).desc())
                    .limit(PARTICIPANT_SCAN)
                )
            ).scalars()
            for meta in metas:
                participants.update(_addresses(meta))
            agents = (await session.execute(select(Agent.email).where(col(Agent.active) == True))).scalars()  # noqa: E712
            participants.update(agents)
        return ThreadInfo(conversation_id, frozenset(item.lower() for item in participants if item))

    async def known_external_ids(self, inbox_id: int, external_ids: Sequence[str]) -> set[str]:
        if not external_ids:
            return set()
        async with self.store.session() as session:
            rows = (
                await session.execute(
                    select(Message.external_id).where(
                        col(Message.inbox_id) == inbox_id, col(Message.external_id).in_(list(external_ids))
                    )
                )
            ).scalars()
            return {row for row in rows if row is not None}

    async def mark_failed(self, inbox_id: int, external_id: str, reason: str) -> bool:
        async with self.store.session() as session:
            message_id = (
                await session.execute(
                    select(Message.id).where(
                        col(Message.inbox_id) == inbox_id,
                        col(Message.external_id) == external_id,
                        col(Message.kind) == MessageKind.OUTGOING,
                    )
                )
            ).scalar_one_or_none()
        if message_id is None:
            return False
        await self.service.mark_failed(message_id, reason)
        return True

    async def load_cursor(self, key: str) -> str | None:
        async with self.store.session() as session:
            row = await session.get(Cursor, key)
            return row.value if row is not None else None

    async def save_cursor(self, key: str, value: str) -> None:
        async with self.store.transaction() as tx:
            row = await tx.get(Cursor, key)
            if row is None:
                tx.add(Cursor(key=key, value=value, updated_at=utcnow()))
            else:
                row.value = value
                row.updated_at = utcnow()


def _addresses(meta: Any) -> list[str]:
    """Addresses a stored incoming message names: its sender and, for email, its recipients."""
    found: list[str] = []
    identity = meta.get("identity") if isinstance(meta, dict) else None
    if isinstance(identity, dict):
        found += [value for value in (identity.get("email"), identity.get("value")) if isinstance(value, str)]
    email = meta.get("email") if isinstance(meta, dict) else None
    if isinstance(email, dict):
        for name in ("to", "cc"):
            values = email.get(name)
            if isinstance(values, list):
                found += [value for value in values if isinstance(value, str)]
    return found
