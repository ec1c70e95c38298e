"""SLA clocks, pure: which policy applies to a conversation, and the arithmetic of one promise — a budget of
business seconds that runs while the conversation is open, pauses while it is pending or snoozed, and is met
by a reply (first and next response) or the resolution.

No database and no clock of its own: callers pass the instants and the inbox's calendar
(`inbox.workflow.hours.Calendar`). `inbox.workflow.clocks` stores the state and follows the event log.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from inbox.workflow.hours import Calendar


class Target(StrEnum):
    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


class State(StrEnum):
    """Where a conversation stands against its nearest promise (list filter `sla=`)."""

    ON_TRACK = "on_track"
    BREACHING_SOON = "breaching_soon"
    BREACHED = "breached"


@dataclass(frozen=True, slots=True)
class Policy:
    id: int
    inbox_id: int | None
    priority: str | None
    first_response_seconds: int | None
    next_response_seconds: int | None
    resolution_seconds: int | None
    warning_seconds: int

    def seconds(self, target: Target) -> int | None:
        return {
            Target.FIRST_RESPONSE: self.first_response_seconds,
            Target.NEXT_RESPONSE: self.next_response_seconds,
            Target.RESOLUTION: self.resolution_seconds,
        }[target]


def policy_for(policies: Sequence[Policy], inbox_id: int, priority: str | None) -> Policy | None:
    """The most specific policy: this inbox and priority, this inbox, any inbox with this priority, any."""
    ranked = [
        (policy.inbox_id is None, policy.priority is None, policy.id)
        for policy in policies
        if policy.inbox_id in (None, inbox_id) and policy.priority in (None, priority)
    ]
    if not ranked:
        return None
    best = min(ranked)
    return next(policy for policy in policies if policy.id == best[2])


@dataclass(frozen=True, slots=True)
class Promise:
    """One clock: `elapsed` business seconds used before `running_since` (None: paused or stopped)."""

    target_seconds: int
    started_at: datetime
    elapsed: float = 0.0
    running_since: datetime | None = None
    met_at: datetime | None = None

    @classmethod
    def start(cls, target_seconds: int, at: datetime) -> Promise:
        return cls(target_seconds, at, 0.0, at)

    def pause(self, at: datetime, calendar: Calendar) -> Promise:
        """Stop counting (pending, snoozed, resolved); what ran until `at` stays used."""
        if self.running_since is None:
            return self
        used = calendar.business_seconds(self.running_since, at)
        return dataclasses.replace(self, elapsed=self.elapsed + used, running_since=None)

    def resume(self, at: datetime) -> Promise:
        """Count again from `at` (reopened, woken from a snooze); a met promise stays met."""
        if self.running_since is not None or self.met_at is not None:
            return self
        return dataclasses.replace(self, running_since=at)

    def meet(self, at: datetime, calendar: Calendar) -> Promise:
        """The promise was kept (or missed) at `at`: the clock stops for good."""
        return dataclasses.replace(self.pause(at, calendar), met_at=at)

    def due_at(self, calendar: Calendar) -> datetime | None:
        """When the promise breaches if the clock keeps running (None while paused or met)."""
        if self.running_since is None or self.met_at is not None:
            return None
        return calendar.add_business_seconds(self.running_since, max(0.0, self.target_seconds - self.elapsed))


def state(due_at: datetime | None, warning_seconds: int, now: datetime) -> State:
    """On track, breaching soon (within the warning time of its due time) or breached."""
    if due_at is None or now < due_at - timedelta(seconds=warning_seconds):
        return State.ON_TRACK
    return State.BREACHED if now >= due_at else State.BREACHING_SOON
