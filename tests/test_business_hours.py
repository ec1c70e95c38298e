"""`inbox.workflow.hours`: calendars validated field by field, and their arithmetic — open or not, business
seconds between two instants, a promise's due time, the next opening — across split shifts, holidays,
midnight and daylight-saving changes. Table-driven: each row is a case a support lead would recognise."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from inbox.workflow.hours import ALWAYS_OPEN, CalendarError, calendar_from

BERLIN = calendar_from(
    {
        "name": "Berlin office",
        "timezone": "Europe/Berlin",
        "hours": {
            day: [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}]
            for day in ("mon", "tue", "wed", "thu", "fri")
        },
        "holidays": [{"date": "2026-12-25", "yearly": True, "name": "Christmas"}, {"date": "2026-12-08"}],
    }
)
NIGHT = calendar_from({"timezone": "UTC", "hours": {"mon": [{"start": "22:00", "end": "24:00"}]}})


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("at", "open_"),
    [
        ("2026-12-07 08:30", True),  # Monday 09:30 in Berlin (UTC+1)
        ("2026-12-07 11:30", False),  # lunch break, 12:30 local
        ("2026-12-07 15:59", True),  # 16:59 local
        ("2026-12-07 16:00", False),  # 17:00 local: closed (end is exclusive)
        ("2026-12-08 09:00", False),  # a one-off holiday
        ("2027-12-24 09:00", True),
        ("2027-12-25 09:00", False),  # yearly Christmas, a Saturday anyway
        ("2028-12-25 09:00", False),  # yearly Christmas on a Monday
        ("2026-12-12 10:00", False),  # Saturday
    ],
)
def test_is_open(at: str, open_: bool) -> None:
    assert BERLIN.is_open(utc(at)) is open_


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        ("2026-12-07 08:00", "2026-12-07 16:00", 7.0),  # a whole Monday: 3 h + 4 h
        ("2026-12-07 10:00", "2026-12-07 10:30", 0.5),  # 11:00–11:30 local
        ("2026-12-04 15:00", "2026-12-07 09:00", 2.0),  # Friday 16:00 → Monday 10:00: 1 h + 1 h
        ("2026-12-07 09:00", "2026-12-09 09:00", 6.0 + 1.0),  # Monday 10:00 → Wednesday 10:00 over a holiday
        ("2026-12-07 12:00", "2026-12-07 11:00", 0.0),  # end before start
        ("2026-03-27 08:00", "2026-03-30 15:00", 7.0 + 7.0),  # over the spring change (UTC+1 → UTC+2)
    ],
)
def test_business_seconds(start: str, end: str, hours: float) -> None:
    assert BERLIN.business_seconds(utc(start), utc(end)) == pytest.approx(hours * 3600)


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        ("2026-12-07 08:00", 1, "2026-12-07 09:00"),
        ("2026-12-07 10:30", 1, "2026-12-07 12:30"),  # 11:30 local + 30 min, lunch, + 30 min
        ("2026-12-04 15:30", 1, "2026-12-07 08:30"),  # Friday 16:30 local: 30 min, then Monday
        ("2026-12-07 20:00", 0, "2026-12-07 20:00"),  # nothing to wait for
    ],
)
def test_add_business_seconds(start: str, hours: float, due: str) -> None:
    assert BERLIN.add_business_seconds(utc(start), hours * 3600) == utc(due)


def test_intervals_may_end_at_midnight_and_the_search_gives_up_on_a_closed_calendar() -> None:
    assert NIGHT.is_open(utc("2026-12-07 23:59"))
    assert not NIGHT.is_open(utc("2026-12-08 00:00"))
    assert NIGHT.next_open(utc("2026-12-08 00:00")) == utc("2026-12-14 22:00")
    assert BERLIN.next_open(utc("2026-12-07 11:30")) == utc("2026-12-07 12:00")
    closed = calendar_from({"timezone": "UTC", "hours": {}})
    assert closed.always_closed()
    assert closed.add_business_seconds(utc("2026-12-07 00:00"), 60) is None
    assert ALWAYS_OPEN.business_seconds(utc("2026-12-07 00:00"), utc("2026-12-08 00:00")) == 86400


def test_round_trip_through_json() -> None:
    assert calendar_from(BERLIN.to_dict()) == BERLIN


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "timezone: required"),
        ({"timezone": "Mars/Olympus"}, "timezone: unknown time zone"),
        ({"timezone": "UTC", "hours": {"funday": []}}, "hours.funday: unknown day"),
        (
            {"timezone": "UTC", "hours": {"mon": [{"start": "9:00", "end": "17:00"}]}},
            "hours.mon[0].start: expected HH:MM",
        ),
        (
            {"timezone": "UTC", "hours": {"mon": [{"start": "17:00", "end": "09:00"}]}},
            "hours.mon[0].end: must be after",
        ),
        ({"timezone": "UTC", "hours": {"tue": [{"start": "09:00", "end": "25:00"}]}}, "hours.tue[0].end: not a time"),
        (
            {
                "timezone": "UTC",
                "hours": {"mon": [{"start": "09:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}]},
            },
            "hours.mon: intervals overlap",
        ),
        ({"timezone": "UTC", "holidays": [{"date": "2026-02-30"}]}, "holidays[0].date: expected YYYY-MM-DD"),
        ({"timezone": "UTC", "holidays": [{"date": "2026-02-03", "yearly": "yes"}]}, "holidays[0].yearly"),
        ({"timezone": "UTC", "colour": "red"}, "colour: unknown field"),
    ],
)
def test_bad_calendars_name_the_field(data: dict[str, object], message: str) -> None:
    with pytest.raises(CalendarError, match=message.replace("[", r"\[").replace("]", r"\]")):
        calendar_from(data)
