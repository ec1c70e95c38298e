"""Admission control for inbound deliveries: at most N `deliver` calls in flight per process.

Under overload a queue that grows without bound turns into latency of tens of seconds and into messages that
are neither stored nor refused. Instead the host counts deliveries between the adapter's call and the
service's answer (waiting for the store included); beyond the limit `deliver` raises `channels.base.Overloaded`
at once, before anything is written, and the adapter tells its sender to try again after `retry_after`
seconds. This module keeps counts only; it opens nothing and writes nothing.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator

from channels.base import Overloaded

SMOOTHING = 0.2  # weight of the newest delivery in the moving average of delivery time


class Admission:
    """Counts deliveries in flight and refuses the ones beyond `limit` (0: no limit).

    `retry_after` tells a refused sender when the queue in front of it should have drained: the moving average
    of how long one delivery took (which includes its wait behind the others), never below `base_retry_after`
    nor above `max_retry_after`, spread uniformly over 0.5–1.5 times that, so refused senders come back spread
    out (a burst of retries would find the queue full again, then empty while they wait). Clients that are
    refused again back off further on their own (the widget doubles its wait).
    """

    def __init__(
        self,
        limit: int,
        *,
        base_retry_after: float = 1.0,
        max_retry_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.limit = limit
        self.base_retry_after = base_retry_after
        self.max_retry_after = max(max_retry_after, base_retry_after)
        self.clock = clock
        self.jitter = jitter
        self.in_flight = 0
        self.admitted = 0
        self.refused = 0
        self.average_seconds = 0.0

    def retry_after(self) -> float:
        """Seconds a refused sender should wait before trying again."""
        wait = min(max(self.base_retry_after, self.average_seconds), self.max_retry_after)
        return round(wait * (0.5 + self.jitter()), 2)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one delivery slot for the block; raises `Overloaded` when all are taken."""
        if self.limit > 0 and self.in_flight >= self.limit:
            self.refused += 1
            raise Overloaded(self.retry_after())
        self.in_flight += 1
        self.admitted += 1
        started = self.clock()
        try:
            yield
        finally:
            self.in_flight -= 1
            took = self.clock() - started
            self.average_seconds += SMOOTHING * (took - self.average_seconds)
