"""Organisations and customer health, read-only: the organisation of a contact (by hand, else by email
domain), an organisation's members in keyset pages, and a contact's health — conversations on every channel,
CSAT history, median first response, open issues, and an indicator with its reasons.

Health rules (docs/REPORTS.md), over the last `WINDOW` days: a CSAT answer of 2 or less is *poor*; each of
"a customer message waiting for a reply for over 24 h", "reopened twice or more", "3 or more open
conversations" and "median first response over 4 h" is a reason for *at risk*; two such reasons are *poor*.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as columns
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox.clock import iso
from inbox.reports.facts import Fact, Scope, aware, calendars, domain_contacts, load_facts
from inbox.store.models import Contact, Conversation, CsatSurvey, Identity, Inbox, Organization, OrganizationMember
from inbox.workflow.hours import ALWAYS_OPEN

WINDOW = timedelta(days=30)
WAITING_TOO_LONG = timedelta(hours=24)
SLOW_FIRST_RESPONSE = 4 * 3600
MAX_CONVERSATIONS = 50


def view(organization: Organization) -> dict[str, Any]:
    return {
        "id": organization.id,
        "name": organization.name,
        "domains": list(organization.domains),
        "notes": organization.notes,
        "created_at": iso(organization.created_at),
        "updated_at": iso(organization.updated_at),
    }


async def organizations(session: AsyncSession) -> list[dict[str, Any]]:
    rows = (await session.execute(select(Organization).order_by(col(Organization.name)))).scalars()
    return [view(row) for row in rows]


async def organization_of(session: AsyncSession, contact: Contact) -> dict[str, Any] | None:
    """The contact's organisation and how it joined ("hand" or "domain"), or None."""
    member = await session.get(OrganizationMember, contact.id)
    if member is not None:
        found = await session.get(Organization, member.organization_id)
        return {"id": found.id, "name": found.name, "via": "hand"} if found else None
    found_emails = await session.execute(
        select(Identity.value).where(col(Identity.contact_id) == contact.id, col(Identity.kind) == "email")
    )
    emails = [contact.email or "", *found_emails.scalars()]
    domains = {email.rpartition("@")[2].lower() for email in emails if "@" in email}
    for organization in (await session.execute(select(Organization).order_by(col(Organization.id)))).scalars():
        if domains & set(organization.domains):
            return {"id": organization.id, "name": organization.name, "via": "domain"}
    return None


async def members(
    session: AsyncSession, organization: Organization, after: int, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """Contacts of the organisation by id after `after` (hand-added and by domain), and the next cursor."""
    hand = select(OrganizationMember.contact_id).where(col(OrganizationMember.organization_id) == organization.id)
    by_domain = (col(Contact.id).in_(domain_contacts(organization.domains))) & ~col(Contact.id).in_(
        select(OrganizationMember.contact_id)
    )
    rows = (
        await session.execute(
            columns(col(Contact.id), col(Contact.name), col(Contact.email), col(Contact.id).in_(hand))
            .where(
                col(Contact.id) > after, col(Contact.merged_into_id).is_(None), col(Contact.id).in_(hand) | by_domain
            )
            .order_by(col(Contact.id))
            .limit(limit + 1)
        )
    ).all()
    shown = rows[:limit]
    identities: dict[Any, str] = {}
    if shown:
        for contact_id, value in await session.execute(
            columns(col(Identity.contact_id), col(Identity.value))
            .where(col(Identity.contact_id).in_([row[0] for row in shown]), col(Identity.kind) == "email")
            .order_by(col(Identity.id).desc())
        ):
            identities[contact_id] = value  # the oldest email identity wins
    items = [
        {"id": cid, "name": name, "email": email or identities.get(cid), "via": "hand" if manual else "domain"}
        for cid, name, email, manual in shown
    ]
    cursor: Any = rows[limit - 1][0] if len(rows) > limit else None
    return items, cursor


def indicator(
    facts: Sequence[Fact], ratings: Sequence[tuple[int, datetime]], now: datetime, cals: dict[int, Any]
) -> dict[str, Any]:
    """The health indicator and its reasons, from the contact's conversations and CSAT answers."""
    since = now - WINDOW
    poor: list[str] = []
    risk: list[str] = []
    low = [rating for rating, at in ratings if at >= since and rating <= 2]
    if low:
        poor.append(f"CSAT of {min(low)} in the last 30 days" + (f" ({len(low)} low answers)" if len(low) > 1 else ""))
    waiting = [f for f in facts if f.status != "resolved" and f.timeline.waiting_since is not None]
    oldest = min((f.timeline.waiting_since for f in waiting if f.timeline.waiting_since), default=None)
    if oldest is not None and now - oldest > WAITING_TOO_LONG:
        risk.append(f"waiting for a reply for {int((now - oldest).total_seconds() // 3600)} h")
    reopened = sum(1 for f in facts for at in f.timeline.reopened_at if at >= since)
    if reopened >= 2:
        risk.append(f"reopened {reopened} times in the last 30 days")
    open_count = sum(1 for f in facts if f.status != "resolved")
    if open_count >= 3:
        risk.append(f"{open_count} open conversations")
    recent = [
        (f.first_reply_at - f.created_at).total_seconds()
        for f in facts
        if f.first_reply_at is not None and f.created_at >= since
    ]
    if recent and statistics.median(recent) > SLOW_FIRST_RESPONSE:
        risk.append(f"median first response {statistics.median(recent) / 3600:.1f} h in the last 30 days")
    level = "poor" if poor or len(risk) >= 2 else "at_risk" if risk else "good"
    return {"level": level, "reasons": poor + risk}


async def health(
    session: AsyncSession, contact: Contact, visible: frozenset[int] | None, now: datetime
) -> dict[str, Any]:
    """A contact's history across channels and its health indicator (only inboxes the caller may see)."""
    scope = Scope(visible)
    facts = await load_facts(session, scope, col(Conversation.contact_id) == contact.id)
    cals = await calendars(session, None)
    ids = [f.id for f in facts]
    surveys = (
        (
            await session.execute(
                columns(
                    col(CsatSurvey.conversation_id),
                    col(CsatSurvey.rating),
                    col(CsatSurvey.comment),
                    col(CsatSurvey.responded_at),
                )
                .where(col(CsatSurvey.conversation_id).in_(ids), col(CsatSurvey.rating).is_not(None))
                .order_by(col(CsatSurvey.responded_at).desc(), col(CsatSurvey.id).desc())
            )
        ).all()
        if ids
        else []
    )
    inboxes = dict((await session.execute(columns(col(Inbox.id), col(Inbox.name)))).all())
    subjects = (
        dict(
            (
                await session.execute(
                    columns(
                        col(Conversation.id), func.coalesce(col(Conversation.subject), col(Conversation.preview))
                    ).where(col(Conversation.id).in_(ids))
                )
            ).all()
        )
        if ids
        else {}
    )
    first = [(f.first_reply_at - f.created_at).total_seconds() for f in facts if f.first_reply_at]
    first_business = [
        cals.get(f.inbox_id, ALWAYS_OPEN).business_seconds(f.created_at, f.first_reply_at)
        for f in facts
        if f.first_reply_at
    ]
    newest = sorted(facts, key=lambda f: (f.created_at, f.id), reverse=True)
    return {
        "contact_id": contact.id,
        "name": contact.name,
        "organization": await organization_of(session, contact),
        "health": indicator(
            facts, [(int(r), aware(at)) for _, r, _, at in surveys if at is not None and r is not None], now, cals
        ),
        "conversations": [
            {
                "id": f.id,
                "inbox_id": f.inbox_id,
                "inbox": inboxes.get(f.inbox_id, ""),
                "channel": f.channel,
                "status": f.status,
                "subject": subjects.get(f.id) or "",
                "labels": f.labels,
                "created_at": iso(f.created_at),
            }
            for f in newest[:MAX_CONVERSATIONS]
        ],
        "conversation_count": len(facts),
        "channels": sorted({f.channel for f in facts}),
        "open_issues": [f.id for f in newest if f.status != "resolved"],
        "median_first_response_seconds": statistics.median(first) if first else None,
        "median_first_response_business_seconds": statistics.median(first_business) if first_business else None,
        "csat": [
            {"conversation_id": cid, "rating": rating, "comment": comment, "responded_at": iso(at)}
            for cid, rating, comment, at in surveys
        ],
    }
