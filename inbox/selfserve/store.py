"""Reads and writes of self-service data: who may see which article, the JSON shapes, measured visitor
actions, and the one conversation write of this feature (a visitor answering a proactive greeting).

Article and rule rows are reference data (no events, like canned responses). The conversation write goes
through `InboxService`'s transaction pattern: one commit that appends its events, then publish. Measured
visitor actions are kept `selfservice.retention_days` (`prune`, run by one process of the cluster).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from channels.base import Identity
from inbox.clock import iso
from inbox.selfserve import content
from inbox.service import InboxService
from inbox.store.engine import Store
from inbox.store.models import (
    Article,
    ProactiveRule,
    SelfServeEvent,
)

PRUNE_BATCH = 5_000  # rows per delete: SQLite's one writer is never held for long


class Kind:
    """The measured visitor actions (`SelfServeEvent.kind`)."""

    SEARCH = "search"
    SEARCH_EMPTY = "search_empty"
    VIEW = "article_view"
    DEFLECTED = "deflected"
    NOT_DEFLECTED = "not_deflected"
    PROACTIVE_SHOWN = "proactive_shown"
    PROACTIVE_REPLIED = "proactive_replied"


def article_view(row: Article, *, with_body: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": row.id,
        "inbox_id": row.inbox_id,
        "title": row.title,
        "locale": row.locale,
        "published": row.published,
        "excerpt": content.excerpt(row.body),
        "views": row.views,
        "url": f"/help/articles/{row.id}",
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }
    if with_body:
        view["body"] = row.body
        view["html"] = row.html
    return view


def public_article_view(row: Article) -> dict[str, Any]:
    """What a visitor gets: no counters, no draft state."""
    return {
        "id": row.id,
        "title": row.title,
        "excerpt": content.excerpt(row.body),
        "html": row.html,
        "url": f"/help/articles/{row.id}",
    }


def rule_view(row: ProactiveRule) -> dict[str, Any]:
    return {
        "id": row.id,
        "inbox_id": row.inbox_id,
        "message": row.message,
        "url_pattern": row.url_pattern,
        "min_seconds_on_page": row.min_seconds_on_page,
        "returning_only": row.returning_only,
        "agents_online_only": row.agents_online_only,
        "max_per_visitor": row.max_per_visitor,
        "enabled": row.enabled,
        "created_at": iso(row.created_at),
    }


def public_rule_view(row: ProactiveRule) -> dict[str, Any]:
    return {
        "id": row.id,
        "message": row.message,
        "min_seconds_on_page": row.min_seconds_on_page,
        "returning_only": row.returning_only,
        "agents_online_only": row.agents_online_only,
    }


def visible_to_agents(inbox_ids: frozenset[int] | None) -> list[Any]:
    """Agents read global articles and those of inboxes they may see (admins: all)."""
    if inbox_ids is None:
        return []
    return [or_(col(Article.inbox_id).is_(None), col(Article.inbox_id).in_(inbox_ids))]


def visible_to_visitors(inbox_id: int, locale: str) -> list[Any]:
    """Visitors read published articles, global or of this inbox, in their language or language-neutral."""
    clauses: list[Any] = [
        col(Article.published).is_(True),
        or_(col(Article.inbox_id).is_(None), col(Article.inbox_id) == inbox_id),
    ]
    if locale:
        clauses.append(or_(col(Article.locale) == "", col(Article.locale) == locale))
    return clauses


async def record(session: AsyncSession, kind: str, inbox_id: int, visitor: str, **fields: Any) -> None:
    """Count one visitor action (the caller commits)."""
    session.add(SelfServeEvent(kind=kind, inbox_id=inbox_id, visitor=visitor[:200], **fields))


async def prune(store: Store, *, retention_days: int, now: datetime, batch: int = PRUNE_BATCH) -> int:
    """Delete visitor actions older than `retention_days` (0 keeps them all); answers how many went.

    Reports over ranges inside the window are unchanged; a proactive rule's `max_per_visitor` counts the
    greetings shown within it."""
    if retention_days <= 0:
        return 0
    cutoff = now - timedelta(days=retention_days)
    removed = 0
    while True:
        async with store.transaction() as tx:
            ids = list(
                (
                    await tx.execute(
                        select(SelfServeEvent.id).where(col(SelfServeEvent.created_at) < cutoff).limit(batch)
                    )
                ).scalars()
            )
            if ids:
                await tx.execute(delete(SelfServeEvent).where(col(SelfServeEvent.id).in_(ids)))
        removed += len(ids)
        if len(ids) < batch:
            return removed


@dataclass(frozen=True, slots=True)
class Started:
    """A conversation opened by a visitor's answer to a proactive greeting."""

    conversation_id: int
    message_id: int
    created: bool


async def start_from_greeting(
    service: InboxService, rule: ProactiveRule, *, thread_key: str, sender: Identity, greeting_id: str
) -> Started:
    """Open a conversation for the visitor whose first message is the rule's greeting, outgoing and marked
    automatic; the visitor's reply, sent next over the widget socket, lands in it (the latest conversation
    of the thread). Idempotent per `greeting_id` (the widget's id for the greeting it showed)."""
    external_id = f"proactive:{sender.value}:{greeting_id}"[:512]
    for attempt in range(3):
        try:
            return await _start(service, rule, thread_key, sender, external_id)
        except IntegrityError:
            if attempt == 2:  # a concurrent request for the same greeting or identity won: look again
                raise
    raise AssertionError("unreachable")  # pragma: no cover


async def _start(
    service: InboxService, rule: ProactiveRule, thread_key: str, sender: Identity, external_id: str
) -> Started:
    conversation_id, message_id, created = await service.open_with_greeting(
        inbox_id=rule.inbox_id,
        rule_id=rule.id,
        greeting=rule.message,
        thread_key=thread_key,
        sender=sender,
        external_id=external_id,
        also=lambda tx: record(tx, Kind.PROACTIVE_REPLIED, rule.inbox_id, thread_key, rule_id=rule.id),
    )
    return Started(conversation_id, message_id, created)
