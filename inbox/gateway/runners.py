"""Channel runners: one task per inbox of each channel, calling `channel.run(inbox)`.

Every `refresh_seconds` the runner compares the inboxes in the store with the running tasks: a new inbox
gets a task, a removed one is cancelled, one whose settings changed is restarted (a Telegram inbox
switching from polling to webhook). A `run` that fails is restarted with exponential backoff; one that
returns (push channels, a registered webhook) stays done until its settings change.

An inbox whose stored settings its channel's validator refuses (saved before the check existed, or edited
in the database) gets no task at all: restarting cannot fix it. The refusal is kept in `misconfigured`
(the channel-health page shows it) and logged once, until the settings change.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from channels.base import Channel, Host, InboxInfo

log = logging.getLogger(__name__)


class ChannelRunners:
    """Keeps `channel.run(inbox)` running for every inbox of the given channels."""

    def __init__(
        self,
        host: Host,
        channels: Mapping[str, Channel],
        *,
        refresh_seconds: float,
        backoff_max_seconds: float,
        exclusive: Callable[[str], AbstractAsyncContextManager[None]] | None = None,
        validators: Mapping[str, Callable[[Mapping[str, Any]], None]] | None = None,
    ) -> None:
        self.host = host
        # Around each receiver: a cluster-wide lease (one IMAP/polling loop per inbox across processes).
        self.exclusive = exclusive
        self.channels = channels
        self.refresh_seconds = refresh_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.validators = validators or {}
        # (channel, inbox id) → why its stored settings were refused (no receiver runs for it).
        self.misconfigured: dict[tuple[str, int], str] = {}
        self._tasks: dict[tuple[str, int], tuple[str, asyncio.Task[None]]] = {}
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look at the inboxes now (after an admin changed one) rather than at the next refresh."""
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self.refresh()
                except Exception:
                    log.exception("channel runners: refreshing inboxes failed")
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.refresh_seconds)
        finally:
            tasks = [task for _, task in self._tasks.values()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.clear()

    async def refresh(self) -> None:
        seen: set[tuple[str, int]] = set()
        for name, channel in self.channels.items():
            for inbox in await self.host.inboxes(name):
                key = (name, inbox.id)
                seen.add(key)
                fingerprint = json.dumps(dict(inbox.settings), sort_keys=True, default=str)
                running = self._tasks.get(key)
                if running is not None and running[0] == fingerprint:
                    continue
                if running is not None:
                    running[1].cancel()
                problem = self._refusal(name, inbox)
                if problem is not None:
                    log.error("%s: inbox %s not started: its settings are invalid (%s)", name, inbox.id, problem)
                    self.misconfigured[key] = problem
                    self._tasks[key] = (fingerprint, _done())
                    continue
                self.misconfigured.pop(key, None)
                task = asyncio.create_task(self._supervise(channel, inbox), name=f"{name}:{inbox.id}")
                self._tasks[key] = (fingerprint, task)
        for key in set(self._tasks) - seen:
            self._tasks.pop(key)[1].cancel()
            self.misconfigured.pop(key, None)

    def _refusal(self, name: str, inbox: InboxInfo) -> str | None:
        """Why the channel's validator refuses this inbox's stored settings (None: they pass, or no validator)."""
        validator = self.validators.get(name)
        if validator is None:
            return None
        try:
            validator(inbox.settings)
        except ValueError as exc:
            return str(exc) or type(exc).__name__
        return None

    async def _supervise(self, channel: Channel, inbox: InboxInfo) -> None:
        delay = 1.0
        while True:
            started = asyncio.get_running_loop().time()
            try:
                if self.exclusive is None:
                    await channel.run(inbox)
                else:
                    async with self.exclusive(f"receiver:{channel.name}:{inbox.id}"):
                        await channel.run(inbox)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "%s: inbox %s receiver failed (%s: %s); restarting in %.0fs",
                    channel.name,
                    inbox.id,
                    type(exc).__name__,
                    exc,
                    delay,
                )
            if asyncio.get_running_loop().time() - started > self.backoff_max_seconds:
                delay = 1.0  # it ran well for a while: this is a new failure, not the same one again
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max_seconds)


def _done() -> asyncio.Task[None]:
    """A finished task: the placeholder of an inbox that gets no receiver (its settings are refused)."""

    async def nothing() -> None:
        return None

    return asyncio.create_task(nothing(), name="not-started")
