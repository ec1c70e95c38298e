"""A controlled clock for report tests: every service module reads `utcnow` from where it imported it, so the
patch covers each of those names (unittest.mock, nothing else)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from unittest import mock

WRITERS = (
    "inbox.service.agent",
    "inbox.service.inbound",
    "inbox.service.records",
    "inbox.service.ingest.batch",
    "inbox.service.ingest.direct",
    "inbox.csat.survey",
)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@contextlib.contextmanager
def controlled(at: datetime) -> Iterator[Clock]:
    clock = Clock(at)
    with contextlib.ExitStack() as stack:
        for module in WRITERS:
            stack.enter_context(mock.patch(f"{module}.utcnow", clock))
        yield clock
