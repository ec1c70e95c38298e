"""SLA arithmetic (`inbox.workflow.sla`) against hand-computed due times: lunch breaks, weekends, holidays,
daylight-saving changes in both directions, pauses while pending, the warning window, policy precedence."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from inbox.workflow.hours import ALWAYS_OPEN, calendar_from
from inbox.workflow.sla import Policy, Promise, State, policy_for, state

BERLIN = calendar_from(
    {
        "timezone": "Europe/Berlin",
        "hours": {
            day: [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}]
            for day in ("mon", "tue", "wed", "thu", "fri")
        },
        "holidays": [{"date": "2025-12-25", "yearly": True, "name": "Christmas"}],
    }
)
BERLIN_ALWAYS = calendar_from(
    {"timezone": "Europe/Berlin", "hours": {day: [{"start": "00:00", "end": "24:00"}] for day in ("sat", "sun", "mon")}}
)
HOUR = 3600


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "seconds", "due", "why"),
    [
        # Tue 11:30 CET + 1 h: 30 min before lunch, 30 min after → 13:30 CET
        ("2026-03-03 10:30", HOUR, "2026-03-03 12:30", "lunch break"),
        # Fri 16:00 CET + 2 h: 1 h on Friday, the weekend, DST begins Sunday → Mon 10:00 CEST
        ("2026-03-27 15:00", 2 * HOUR, "2026-03-30 08:00", "weekend and spring DST"),
        # Thu 24 Dec 16:30 CET + 1 h: 30 min, Christmas (yearly holiday), weekend → Mon 28 Dec 09:30 CET
        ("2026-12-24 15:30", HOUR, "2026-12-28 08:30", "holiday then weekend"),
        # Sat 20:00 CET, closed: the clock starts Monday 09:00 → + 3 h = 12:00 CET, the moment lunch begins
        ("2026-03-07 19:00", 3 * HOUR, "2026-03-09 11:00", "received while closed"),
        # … and one second more runs over lunch: 13:00:01 CET
        ("2026-03-07 19:00", 3 * HOUR + 1, "2026-03-09 12:00:01", "received while closed, over lunch"),
        # A full working day (7 h) from Mon 09:00 CET ends Mon 17:00 CET
        ("2026-03-02 08:00", 7 * HOUR, "2026-03-02 16:00", "exactly one day"),
    ],
)
def test_due_times(start: str, seconds: int, due: str, why: str) -> None:
    assert Promise.start(seconds, utc(start)).due_at(BERLIN) == utc(due), why


def test_autumn_dst_day_has_25_hours() -> None:
    # Sun 25 Oct 2026 00:00 CEST (Sat 22:00Z) + 24 h of an all-day calendar: the day is 25 h long, so due at
    # 23:00 CET the same day = 22:00Z, not at midnight.
    promise = Promise.start(24 * HOUR, utc("2026-10-24 22:00"))
    assert promise.due_at(BERLIN_ALWAYS) == utc("2026-10-25 22:00")


def test_pause_while_pending_and_resume() -> None:
    # Mon 09:00 CET start, 4 h; pending at 10:00 (1 h used); reopened Tue 14:00 CET → 3 h left → Tue 17:00 CET.
    promise = Promise.start(4 * HOUR, utc("2026-03-02 08:00"))
    paused = promise.pause(utc("2026-03-02 09:00"), BERLIN)
    assert paused.elapsed == HOUR and paused.due_at(BERLIN) is None
    assert paused.pause(utc("2026-03-02 12:00"), BERLIN) == paused  # pausing twice changes nothing
    resumed = paused.resume(utc("2026-03-03 13:00"))
    assert resumed.due_at(BERLIN) == utc("2026-03-03 16:00")


def test_met_promise_has_no_due_time_and_stays_met() -> None:
    promise = Promise.start(HOUR, utc("2026-03-02 08:00")).meet(utc("2026-03-02 08:20"), BERLIN)
    assert promise.met_at == utc("2026-03-02 08:20") and promise.elapsed == 20 * 60
    assert promise.due_at(BERLIN) is None and promise.resume(utc("2026-03-02 09:00")).due_at(BERLIN) is None


def test_overdue_promise_is_due_when_it_resumes() -> None:
    promise = Promise.start(HOUR, utc("2026-03-02 08:00")).pause(utc("2026-03-02 10:00"), ALWAYS_OPEN)
    assert promise.resume(utc("2026-03-03 08:00")).due_at(ALWAYS_OPEN) == utc("2026-03-03 08:00")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-03-02 11:44:59", State.ON_TRACK),
        ("2026-03-02 11:45", State.BREACHING_SOON),
        ("2026-03-02 11:59:59", State.BREACHING_SOON),
        ("2026-03-02 12:00", State.BREACHED),
    ],
)
def test_state(now: str, expected: State) -> None:
    assert state(utc("2026-03-02 12:00"), 900, utc(now)) == expected
    assert state(None, 900, utc(now)) == State.ON_TRACK


def test_most_specific_policy_wins() -> None:
    def policy(id_: int, inbox_id: int | None, priority: str | None) -> Policy:
        return Policy(id_, inbox_id, priority, 60, None, None, 0)

    policies = [policy(1, None, None), policy(2, None, "urgent"), policy(3, 7, None), policy(4, 7, "urgent")]
    assert policy_for(policies, 7, "urgent").id == 4  # type: ignore[union-attr]
    assert policy_for(policies, 7, "low").id == 3  # type: ignore[union-attr]
    assert policy_for(policies, 8, "urgent").id == 2  # type: ignore[union-attr]
    assert policy_for(policies, 8, None).id == 1  # type: ignore[union-attr]
    assert policy_for(policies[2:], 8, None) is None
