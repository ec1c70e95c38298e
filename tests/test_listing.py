"""The conversation list's row path (`inbox.read.listing`): timestamps formatted from SQLite's stored text equal
`inbox.clock.iso` of the parsed value for every form a row may hold, and label names come back sorted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from inbox.clock import iso
from inbox.read.listing import Stamps, label_names

STORED = [
    "2026-11-23 01:02:03.123456",  # how SQLAlchemy stores a UTC datetime in SQLite
    "2026-11-23 01:02:03.999999",  # truncated, not rounded, to milliseconds
    "2026-11-23 01:02:03.000000",
    "0999-01-01 00:00:00.000500",
    "2026-11-23 01:02:03.123456+00:00",  # an aware value adapted by the sqlite3 driver (bulk loads)
    "2026-11-23 01:02:03",  # hand-written SQL without fractions
    "2026-11-23 01:02:03.5",
    "2026-11-23T01:02:03.123456",
    "2026-11-23 01:02:03.123456+02:00",  # not UTC: must be converted, not sliced
    "2026-11-23 01:02:03.12345६",  # a non-ASCII digit is not the canonical form
]


@pytest.mark.parametrize("stored", STORED)
def test_sqlite_text_is_formatted_like_iso_of_the_parsed_value(stored: str) -> None:
    stamps = Stamps(sqlite.dialect())
    try:
        parsed = datetime.fromisoformat(stored)
    except ValueError:
        with pytest.raises(ValueError):
            stamps.text(stored)
        return
    expected = iso(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
    assert stamps.text(stored) == expected
    assert stamps.datetime(stored) == (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
    assert stamps.datetime(stored).tzinfo is not None


def test_datetimes_from_other_databases_and_nulls() -> None:
    stamps = Stamps(postgresql.dialect())
    value = datetime(2026, 11, 23, 1, 2, 3, 456789, tzinfo=UTC)
    assert stamps.text(value) == "2026-11-23T01:02:03.456Z" == iso(value)
    assert stamps.text(None) is None and Stamps(sqlite.dialect()).text(None) is None


def test_label_names_are_sorted_and_empty_forms_are_empty() -> None:
    assert label_names(None) == [] and label_names("[]") == []
    assert label_names('["zeta","Alpha","alpha"]') == ["Alpha", "alpha", "zeta"]
    assert label_names(["b", "a"]) == ["a", "b"]
