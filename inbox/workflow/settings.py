"""The workflow settings of an inbox, kept in `Inbox.settings` next to the others: which business-hours
calendar it uses, how new conversations are routed, and the per-inbox capacity override.

Pure: shapes and defaults only. Whether `business_hours_id` names a stored calendar is checked by the writer
(`check_references`) and, at use time, a missing one means "always open".

    {"business_hours_id": 3, "routing": "least_loaded", "routing_capacity": 5}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeGuard

from inbox.errors import Invalid

BUSINESS_HOURS = "business_hours_id"
ROUTING = "routing"
CAPACITY = "routing_capacity"
KEYS = frozenset({BUSINESS_HOURS, ROUTING, CAPACITY})
DEFAULT_CAPACITY = 10  # open conversations an agent gets from routing when neither agent nor inbox says
MAX_CAPACITY = 1000
MAX_ID = 2**31 - 1


class Routing(StrEnum):
    OFF = "off"
    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"


@dataclass(frozen=True, slots=True)
class InboxWorkflow:
    """What routing and SLAs read of one inbox's settings."""

    business_hours_id: int | None = None
    routing: Routing = Routing.OFF
    capacity: int | None = None  # overrides each agent's own capacity in this inbox


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def check(settings: Mapping[str, Any]) -> None:
    """Reject malformed workflow keys; the message names the field (`settings.routing: …`)."""
    if BUSINESS_HOURS in settings:
        value = settings[BUSINESS_HOURS]
        if value is not None and not (_is_int(value) and 1 <= value <= MAX_ID):
            raise Invalid(f"settings.{BUSINESS_HOURS}: must be the id of a business-hours calendar, or null")
    if ROUTING in settings and settings[ROUTING] not in set(Routing):
        raise Invalid(f"settings.{ROUTING}: must be one of {', '.join(Routing)}")
    if CAPACITY in settings:
        value = settings[CAPACITY]
        if value is not None and not (_is_int(value) and 1 <= value <= MAX_CAPACITY):
            raise Invalid(f"settings.{CAPACITY}: must be a whole number from 1 to {MAX_CAPACITY}, or null")


def of(settings: Mapping[str, Any]) -> InboxWorkflow:
    """The workflow settings of an inbox; malformed values (written before validation) count as absent."""
    hours = settings.get(BUSINESS_HOURS)
    routing = settings.get(ROUTING)
    raw = settings.get(CAPACITY)
    capacity: int | None = raw if _is_int(raw) and raw > 0 else None
    return InboxWorkflow(
        business_hours_id=hours if _is_int(hours) else None,
        routing=Routing(routing) if routing in set(Routing) else Routing.OFF,
        capacity=capacity,
    )
