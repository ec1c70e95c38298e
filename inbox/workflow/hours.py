"""Business hours: a calendar (time zone, weekly hours with several intervals per day, holidays) and the pure
arithmetic every feature needs of it — is the team open now, how many business seconds lie between two
instants, when does a promise of N business seconds fall due, when does the team open next.

Pure and synchronous: no database, no clock of its own (callers pass the instants). Time zones come from the
standard library's `zoneinfo` (the IANA database), so daylight-saving changes follow the wall clock: an
interval 09:00–17:00 is eight hours on most days and what the wall clock says on the two days of a change.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DAYS = 3 * 366  # how far a search walks before it gives up (a calendar open a day in three years is broken)


class CalendarError(ValueError):
    """A calendar that cannot be used; the message names the field (`hours.mon[1].end: …`)."""


@dataclass(frozen=True, slots=True)
class Holiday:
    """A closed day: once (`yearly` false) or every year on the same month and day."""

    day: date
    yearly: bool = False
    name: str = ""

    def covers(self, day: date) -> bool:
        if self.yearly:
            return (day.month, day.day) == (self.day.month, self.day.day)
        return day == self.day


@dataclass(frozen=True, slots=True)
class Calendar:
    """When the team works. `week[0]` is Monday; each day holds sorted, non-overlapping (start, end) minutes
    after midnight, end up to 1440 (24:00)."""

    timezone: str
    week: tuple[tuple[tuple[int, int], ...], ...]
    holidays: tuple[Holiday, ...] = ()
    name: str = ""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def always_closed(self) -> bool:
        return not any(self.week)

    def closed_on(self, day: date) -> bool:
        return any(holiday.covers(day) for holiday in self.holidays)

    def intervals(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        """The open intervals of a local date, as aware UTC instants (none on a holiday)."""
        if self.closed_on(day):
            return
        zone = self.zone
        for start, end in self.week[day.weekday()]:
            opens = _local(day, start, zone)
            closes = _local(day, end, zone)
            if closes > opens:
                yield opens, closes

    def is_open(self, at: datetime) -> bool:
        local = _aware(at).astimezone(self.zone)
        return any(opens <= _aware(at) < closes for opens, closes in self.intervals(local.date()))

    def business_seconds(self, start: datetime, end: datetime) -> float:
        """Open seconds between two instants (0 when `end` is not after `start`)."""
        start, end = _aware(start), _aware(end)
        if end <= start:
            return 0.0
        zone = self.zone
        day = start.astimezone(zone).date() - timedelta(days=1)  # an interval may start the local day before
        last = end.astimezone(zone).date()
        total = 0.0
        while day <= last:
            for opens, closes in self.intervals(day):
                overlap = (min(closes, end) - max(opens, start)).total_seconds()
                if overlap > 0:
                    total += overlap
            day += timedelta(days=1)
        return total

    def add_business_seconds(self, start: datetime, seconds: float) -> datetime | None:
        """The instant at which `seconds` of open time have passed since `start` (None: never, in MAX_DAYS)."""
        start = _aware(start)
        if seconds <= 0:
            return start
        left = float(seconds)
        day = start.astimezone(self.zone).date() - timedelta(days=1)
        for _ in range(MAX_DAYS):
            for opens, closes in self.intervals(day):
                begin = max(opens, start)
                if closes <= begin:
                    continue
                span = (closes - begin).total_seconds()
                if left <= span:
                    return begin + timedelta(seconds=left)
                left -= span
            day += timedelta(days=1)
        return None

    def next_open(self, at: datetime) -> datetime | None:
        """`at` itself when open, else when the team opens next (None: never, in MAX_DAYS)."""
        at = _aware(at)
        day = at.astimezone(self.zone).date() - timedelta(days=1)
        for _ in range(MAX_DAYS):
            for opens, closes in self.intervals(day):
                if closes > at:
                    return max(opens, at)
            day += timedelta(days=1)
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "timezone": self.timezone,
            "hours": {
                name: [{"start": _clock(start), "end": _clock(end)} for start, end in self.week[index]]
                for index, name in enumerate(DAYS)
            },
            "holidays": [
                {"date": holiday.day.isoformat(), "yearly": holiday.yearly, "name": holiday.name}
                for holiday in self.holidays
            ],
        }


ALWAYS_OPEN = Calendar("UTC", tuple(((0, 1440),) for _ in DAYS), name="24/7")


def calendar_from(data: Mapping[str, Any]) -> Calendar:
    """A calendar from its JSON form (`Calendar.to_dict`); `CalendarError` names the first bad field."""
    if not isinstance(data, Mapping):
        raise CalendarError("calendar: expected an object")
    unknown = sorted(set(data) - {"name", "timezone", "hours", "holidays"})
    if unknown:
        raise CalendarError(f"{unknown[0]}: unknown field")
    timezone = data.get("timezone")
    if not isinstance(timezone, str) or not timezone:
        raise CalendarError("timezone: required, an IANA time zone such as Europe/Berlin")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise CalendarError(f"timezone: unknown time zone {timezone!r}") from error
    name = data.get("name", "")
    if not isinstance(name, str) or len(name) > 100:
        raise CalendarError("name: text of at most 100 characters")
    hours = data.get("hours", {})
    if not isinstance(hours, Mapping):
        raise CalendarError("hours: expected an object with days mon..sun")
    unknown = sorted(set(hours) - set(DAYS))
    if unknown:
        raise CalendarError(f"hours.{unknown[0]}: unknown day (use mon, tue, wed, thu, fri, sat, sun)")
    week = tuple(_day(f"hours.{day}", hours.get(day, [])) for day in DAYS)
    holidays = _holidays(data.get("holidays", []))
    return Calendar(timezone, week, holidays, name)


def _day(where: str, raw: Any) -> tuple[tuple[int, int], ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise CalendarError(f"{where}: expected a list of intervals")
    if len(raw) > 8:
        raise CalendarError(f"{where}: at most 8 intervals a day")
    intervals = []
    for index, interval in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(interval, Mapping) or set(interval) != {"start", "end"}:
            raise CalendarError(f"{at}: expected {{'start': 'HH:MM', 'end': 'HH:MM'}}")
        start, end = _minutes(f"{at}.start", interval["start"]), _minutes(f"{at}.end", interval["end"])
        if end <= start:
            raise CalendarError(f"{at}.end: must be after start")
        intervals.append((start, end))
    intervals.sort()
    for (_, first_end), (second_start, _) in itertools.pairwise(intervals):
        if second_start < first_end:
            raise CalendarError(f"{where}: intervals overlap")
    return tuple(intervals)


def _minutes(where: str, raw: Any) -> int:
    if not isinstance(raw, str) or len(raw) != 5 or raw[2] != ":" or not (raw[:2] + raw[3:]).isdigit():
        raise CalendarError(f"{where}: expected HH:MM")
    hours, minutes = int(raw[:2]), int(raw[3:])
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise CalendarError(f"{where}: not a time of day (00:00 to 24:00)")
    return hours * 60 + minutes


def _holidays(raw: Any) -> tuple[Holiday, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise CalendarError("holidays: expected a list")
    if len(raw) > 400:
        raise CalendarError("holidays: at most 400")
    found = []
    for index, item in enumerate(raw):
        at = f"holidays[{index}]"
        if not isinstance(item, Mapping) or not set(item) <= {"date", "yearly", "name"} or "date" not in item:
            raise CalendarError(f"{at}: expected {{'date': 'YYYY-MM-DD', 'yearly': bool, 'name': str}}")
        try:
            day = date.fromisoformat(str(item["date"]))
        except ValueError as error:
            raise CalendarError(f"{at}.date: expected YYYY-MM-DD") from error
        yearly = item.get("yearly", False)
        if not isinstance(yearly, bool):
            raise CalendarError(f"{at}.yearly: expected true or false")
        name = item.get("name", "")
        if not isinstance(name, str) or len(name) > 100:
            raise CalendarError(f"{at}.name: text of at most 100 characters")
        found.append(Holiday(day, yearly, name))
    return tuple(found)


def _local(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """Local wall-clock minutes of `day` as an aware UTC instant (24:00 is the next midnight)."""
    if minutes >= 1440:
        local = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    else:
        local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=zone)
    return local.astimezone(UTC)


def _aware(at: datetime) -> datetime:
    """Naive datetimes in this codebase are UTC (`inbox.clock.utcnow`)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
