"""JSON shapes of stored rows, shared by the HTTP API, the agent stream and events.

Pure functions of rows already loaded: callers batch their queries (a page never costs a query per row).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from inbox.clock import iso
from inbox.store.models import (
    Agent,
    Attachment,
    CannedResponse,
    Contact,
    Conversation,
    Identity,
    Inbox,
    Label,
    Message,
    Team,
)


def attachment(row: Attachment) -> dict[str, Any]:
    return {
        "id": row.id,
        "filename": row.filename,
        "content_type": row.content_type,
        "size": row.size,
        "sha256": row.sha256,
        "url": f"/api/v1/attachments/{row.id}",
    }


def message(row: Message, attachments: Sequence[Attachment] = ()) -> dict[str, Any]:
    return {
        "id": row.id,
        "conversation_id": row.conversation_id,
        "inbox_id": row.inbox_id,
        "kind": row.kind,
        "body": row.body,
        "html": row.html,
        "sender": {"type": row.sender_type, "id": row.sender_id, "name": row.sender_name},
        "status": row.status,
        "error": row.error,
        "external_id": row.external_id,
        "client_id": row.client_id,
        "meta": row.meta,
        "attachments": [attachment(item) for item in attachments],
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def contact_brief(row: Contact) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "email": row.email}


def contact(row: Contact, identities: Iterable[Identity] = ()) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "email": row.email,
        "phone": row.phone,
        "attributes": row.attributes,
        "identities": [
            {
                "kind": item.kind,
                "value": item.value,
                "name": item.name,
                "verified": item.verified,
                "created_at": iso(item.created_at),
            }
            for item in identities
        ],
        "merged_into_id": row.merged_into_id,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def conversation(row: Conversation, contact_row: Contact | None, labels: Sequence[str]) -> dict[str, Any]:
    return {
        "id": row.id,
        "number": row.id,
        "inbox_id": row.inbox_id,
        "contact": contact_brief(contact_row) if contact_row is not None else None,
        "status": row.status,
        "assignee_id": row.assignee_id,
        "team_id": row.team_id,
        "priority": row.priority,
        "subject": row.subject,
        "preview": row.preview,
        "unread_count": row.unread_count,
        "labels": sorted(labels),
        "snoozed_until": iso(row.snoozed_until),
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "first_reply_at": iso(row.first_reply_at),
        "resolved_at": iso(row.resolved_at),
        "last_activity_at": iso(row.last_activity_at),
    }


def agent(row: Agent, *, team_ids: Sequence[int] = (), inbox_ids: Sequence[int] = ()) -> dict[str, Any]:
    return {
        "id": row.id,
        "email": row.email,
        "name": row.name,
        "role": row.role,
        "availability": row.availability,
        "active": row.active,
        "team_ids": list(team_ids),
        "inbox_ids": list(inbox_ids),
        "created_at": iso(row.created_at),
    }


def inbox(row: Inbox, agent_ids: Sequence[int] = (), *, with_secret: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "channel": row.channel,
        "settings": row.settings,
        "public_key": row.public_key,
        "agent_ids": list(agent_ids),
        "created_at": iso(row.created_at),
    }
    if with_secret:
        data["secret"] = row.secret
    return data


def team(row: Team, agent_ids: Sequence[int] = ()) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "description": row.description, "agent_ids": list(agent_ids)}


def label(row: Label) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "color": row.color, "description": row.description}


def canned(row: CannedResponse) -> dict[str, Any]:
    return {"id": row.id, "short_code": row.short_code, "content": row.content}


def group(pairs: Iterable[tuple[int, Any]]) -> Mapping[int, list[Any]]:
    """Group `(key, value)` pairs into `{key: [values]}` (used to batch one-to-many lookups)."""
    grouped: dict[int, list[Any]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return grouped
