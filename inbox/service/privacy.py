"""Privacy requests of `InboxService`: export everything about a contact, erase a contact, and erase
resolved conversations past the retention period.

Erasure keeps the rows reports count (conversations with their timestamps, status, assignee; messages with
their kind, sender type and times; CSAT ratings) and removes what identifies or was said by the person:
message bodies, HTML and metadata, attachments (rows and files), subjects and previews, the thread key (a
new message on the same thread starts a new conversation), CSAT comments, the stored events' payloads of
those conversations, and — for a contact — name, email, phone, attributes and every identity, so a new
message from the same address or chat starts a new contact. Each request adds its audit entry in the same
transaction. An erased conversation's `thread_key` starts with `ERASED`: that is how the retention timer
knows it is done.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox.clock import iso, utcnow
from inbox.read import views
from inbox.read.queries import attachments_of
from inbox.realtime.events import EventType
from inbox.service.base import ServiceBase, _get
from inbox.store import audit
from inbox.store.models import (
    Attachment,
    Contact,
    Conversation,
    CsatSurvey,
    Event,
    Identity,
    Message,
    MessageStatus,
    Outbox,
    Status,
    key,
)

log = logging.getLogger(__name__)

ERASED = "erased:"  # prefix of an erased conversation's thread key


@dataclass(frozen=True, slots=True)
class ContactExport:
    """Everything stored about a contact: the JSON document and its attachments' files (archive name → blob)."""

    data: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)


class PrivacyWrites(ServiceBase):
    """Export and erasure of contacts, and the retention of resolved conversations."""

    async def export_contact(self, contact_id: int) -> ContactExport:
        """Everything about the contact (and contacts merged into it); audited as `contact.exported`."""
        async with self.store.transaction() as tx:
            contact: Contact = await _get(tx, Contact, contact_id)
            merged = list(
                (await tx.execute(select(Contact).where(col(Contact.merged_into_id) == contact_id))).scalars()
            )
            ids = [contact_id, *(key(row) for row in merged)]
            identities = list((await tx.execute(select(Identity).where(col(Identity.contact_id).in_(ids)))).scalars())
            conversations = await _conversations_of(tx, ids)
            files: dict[str, str] = {}
            threads = []
            for conversation in conversations:
                messages = list(
                    (
                        await tx.execute(
                            select(Message)
                            .where(col(Message.conversation_id) == conversation.id)
                            .order_by(col(Message.id))
                        )
                    ).scalars()
                )
                attachments = await attachments_of(tx, [key(row) for row in messages])
                for rows in attachments.values():
                    for row in rows:
                        files[f"attachments/{row.id}-{_safe(row.filename)}"] = row.storage_name
                surveys = (
                    await tx.execute(select(CsatSurvey).where(col(CsatSurvey.conversation_id) == conversation.id))
                ).scalars()
                threads.append(
                    {
                        **views.conversation(conversation, contact, []),
                        "messages": [views.message(row, attachments.get(key(row), [])) for row in messages],
                        "surveys": [
                            {"rating": s.rating, "comment": s.comment, "responded_at": iso(s.responded_at)}
                            for s in surveys
                        ],
                    }
                )
            data = {
                "exported_at": iso(utcnow()),
                "contact": views.contact(contact, identities),
                "merged_contacts": [views.contact(row) for row in merged],
                "conversations": threads,
                "attachments": sorted(files),
            }
            await audit.record(
                tx,
                "contact.exported",
                target_type="contact",
                target_id=contact_id,
                after={"conversations": len(threads), "attachments": len(files)},
            )
        return ContactExport(data, files)

    async def contact_archive(self, contact_id: int) -> bytes:
        """The export as one zip archive: `contact.json` and `attachments/<id>-<filename>`."""
        export = await self.export_contact(contact_id)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("contact.json", json.dumps(export.data, ensure_ascii=False, indent=2))
            for name, storage_name in export.files.items():
                try:
                    archive.writestr(name, await self.blobs.read(storage_name))
                except FileNotFoundError:
                    log.warning("export of contact %s: the file of %s is missing", contact_id, name)
        return buffer.getvalue()

    async def erase_contact(self, contact_id: int) -> dict[str, Any]:
        """Erase the contact (and contacts merged into it) and the content of all their conversations.

        Publishes `contact.erased`; audited as `contact.erased` (counts only: nothing erased is kept)."""
        async with self.store.transaction() as tx:
            contact: Contact = await _get(tx, Contact, contact_id)
            merged = list(
                (await tx.execute(select(Contact).where(col(Contact.merged_into_id) == contact_id))).scalars()
            )
            ids = [contact_id, *(key(row) for row in merged)]
            conversation_ids = [key(row) for row in await _conversations_of(tx, ids)]
            blobs = await _erase_conversations(tx, conversation_ids)
            identities = await tx.execute(delete(Identity).where(col(Identity.contact_id).in_(ids)))
            for row in [contact, *merged]:
                row.name, row.email, row.phone, row.attributes = "", None, None, {}
                row.updated_at = utcnow()
            result = {"id": contact_id, "conversation_ids": conversation_ids}
            await audit.record(
                tx,
                "contact.erased",
                target_type="contact",
                target_id=contact_id,
                after={
                    "conversations": len(conversation_ids),
                    "identities": getattr(identities, "rowcount", 0),
                    "attachments": len(blobs),
                    "merged_contacts": len(merged),
                },
            )
            records = await self._append(tx, [(EventType.CONTACT_ERASED, result)])
        await self._remove_files(blobs)
        await self._publish(records)
        return result

    async def erase_resolved(self, older_than: timedelta, *, limit: int = 200) -> int:
        """Erase the content of conversations resolved more than `older_than` ago (the retention setting).

        Contacts stay (they may write again); at most `limit` conversations per call. No event: the
        conversations were resolved long ago; one audit entry per call that erased any."""
        cutoff = utcnow() - older_than
        async with self.store.transaction() as tx:
            conversation_ids = list(
                (
                    await tx.execute(
                        select(Conversation.id)
                        .where(
                            col(Conversation.status) == Status.RESOLVED,
                            col(Conversation.resolved_at) < cutoff,
                            ~col(Conversation.thread_key).startswith(ERASED),
                        )
                        .order_by(col(Conversation.id))
                        .limit(limit)
                    )
                ).scalars()
            )
            if not conversation_ids:
                return 0
            blobs = await _erase_conversations(tx, conversation_ids)
            await audit.record(
                tx,
                "retention.erased",
                target_type="conversation",
                after={"conversation_ids": conversation_ids, "older_than_days": older_than.days},
            )
        await self._remove_files(blobs)
        return len(conversation_ids)

    async def _remove_files(self, storage_names: Sequence[str]) -> None:
        """Delete files no attachment row names any more (the rows went in the committed transaction)."""
        if not storage_names:
            return
        async with self.store.session() as session:
            still_used = set(
                (
                    await session.execute(
                        select(Attachment.storage_name).where(col(Attachment.storage_name).in_(storage_names))
                    )
                ).scalars()
            )
        for name in set(storage_names) - still_used:
            await self.blobs.delete(name)


async def _conversations_of(tx: AsyncSession, contact_ids: Sequence[int]) -> list[Conversation]:
    query = select(Conversation).where(col(Conversation.contact_id).in_(contact_ids)).order_by(col(Conversation.id))
    return list((await tx.execute(query)).scalars())


async def _erase_conversations(tx: AsyncSession, conversation_ids: Sequence[int]) -> list[str]:
    """Anonymise the conversations' content in `tx`; answers the attachment files to delete after commit."""
    if not conversation_ids:
        return []
    message_ids = select(Message.id).where(col(Message.conversation_id).in_(conversation_ids))
    storage_names = list(
        (await tx.execute(select(Attachment.storage_name).where(col(Attachment.message_id).in_(message_ids)))).scalars()
    )
    await tx.execute(delete(Attachment).where(col(Attachment.message_id).in_(message_ids)))
    await tx.execute(
        update(Message)
        .where(col(Message.conversation_id).in_(conversation_ids))
        .values(body="", html=None, meta={}, error=None)
    )
    # Replies still waiting to go out would go out blank: they are not sent.
    await tx.execute(update(Outbox).where(col(Outbox.message_id).in_(message_ids), ~col(Outbox.done)).values(done=True))
    await tx.execute(
        update(Message)
        .where(col(Message.conversation_id).in_(conversation_ids), col(Message.status) == MessageStatus.QUEUED)
        .values(status=MessageStatus.FAILED, error="erased before it was sent")
    )
    await tx.execute(
        update(Message)
        .where(col(Message.conversation_id).in_(conversation_ids), col(Message.sender_type) == "contact")
        .values(sender_name="")
    )
    for conversation_id in conversation_ids:
        await tx.execute(
            update(Conversation)
            .where(col(Conversation.id) == conversation_id)
            .values(thread_key=f"{ERASED}{conversation_id}", subject=None, preview="")
        )
    await tx.execute(update(CsatSurvey).where(col(CsatSurvey.conversation_id).in_(conversation_ids)).values(comment=""))
    # The event log keeps what was said for `stream.retention_days`: keep the rows (ids stay gapless for
    # resuming clients), drop their content.
    events = await tx.execute(select(Event).where(col(Event.conversation_id).in_(conversation_ids)))
    for event in events.scalars():
        event.payload = {"id": event.payload.get("id"), "conversation_id": event.conversation_id, "erased": True}
    return storage_names


def _safe(filename: str) -> str:
    """A file name safe inside an archive: no directories, no control characters."""
    name = "".join(ch for ch in filename.replace("/", "_").replace("\\", "_") if ch.isprintable()).strip(". ")
    return name[:120] or "file"
