"""The docs stay honest: every event type is in the README's table."""

from __future__ import annotations

from pathlib import Path

from inbox.realtime.events import EventType

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_event_type_is_documented() -> None:
    missing = [event.value for event in EventType if f"| `{event.value}` |" not in README]
    assert missing == []


def test_readme_starts_with_the_two_commands() -> None:
    head = README[:800]
    assert "make run" in head and "make test" in head
