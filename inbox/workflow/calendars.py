"""Stored business-hours calendars: the one an inbox uses, and the check that an inbox's settings name one
that exists. Reads only; calendars are written by `inbox.api.workflow` (reference data, like labels)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from inbox.errors import Invalid
from inbox.store.models import BusinessHours, Inbox
from inbox.workflow import settings as workflow_settings
from inbox.workflow.hours import ALWAYS_OPEN, Calendar, CalendarError, calendar_from

log = logging.getLogger(__name__)


async def calendar_of(session: AsyncSession, inbox: Inbox | None) -> Calendar:
    """The inbox's calendar; always open when it names none (or one that was deleted or is broken)."""
    if inbox is None:
        return ALWAYS_OPEN
    hours_id = workflow_settings.of(inbox.settings).business_hours_id
    if hours_id is None:
        return ALWAYS_OPEN
    row = await session.get(BusinessHours, hours_id)
    if row is None:
        return ALWAYS_OPEN
    try:
        return calendar_from(row.calendar)
    except CalendarError:
        log.warning(
            "business hours %s: stored calendar is not valid; treating inbox %s as always open", hours_id, inbox.id
        )
        return ALWAYS_OPEN


async def check_inbox_settings(session: AsyncSession, settings: Mapping[str, Any]) -> None:
    """Validate the workflow keys of inbox settings, including that the calendar exists."""
    workflow_settings.check(settings)
    hours_id = settings.get(workflow_settings.BUSINESS_HOURS)
    if hours_id is not None and await session.get(BusinessHours, hours_id) is None:
        raise Invalid(f"settings.{workflow_settings.BUSINESS_HOURS}: business hours {hours_id} do not exist")
