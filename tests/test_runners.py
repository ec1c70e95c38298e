"""Channel runners: one receiver per inbox, restarted on failure and on settings changes, stopped on removal."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy import delete
from starlette.routing import BaseRoute

from channels.base import InboxInfo, Outbound, Receipt
from inbox.gateway.host import CoreHost
from inbox.gateway.runners import ChannelRunners
from inbox.service import InboxService
from inbox.store.engine import Store
from inbox.store.models import Inbox
from tests.factories import make_inbox


class Receiver:
    """A channel whose `run` fails once per inbox, then receives until cancelled."""

    name: ClassVar[str] = "test"
    routes: Sequence[BaseRoute] = ()

    def __init__(self) -> None:
        self.started: list[tuple[int, dict[str, Any]]] = []
        self.cancelled: list[int] = []

    async def run(self, inbox: InboxInfo) -> None:
        self.started.append((inbox.id, dict(inbox.settings)))
        if sum(1 for started, _ in self.started if started == inbox.id) == 1:
            raise ConnectionError("first start fails")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.append(inbox.id)
            raise

    async def send(self, message: Outbound) -> Receipt:  # pragma: no cover - not used here
        return Receipt()


async def until(check: Any, wait: float = 10.0) -> None:
    deadline = time.monotonic() + wait
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_runners_follow_the_inboxes(store: Store, service: InboxService) -> None:
    receiver = Receiver()
    runners = ChannelRunners(
        CoreHost(store, service), {"test": receiver}, refresh_seconds=0.05, backoff_max_seconds=0.1
    )
    inbox = await make_inbox(store, channel="test", mode="a")
    await make_inbox(store, channel="api", name="other")  # another channel's inbox is not ours
    task = asyncio.create_task(runners.run())
    try:
        await until(lambda: len(receiver.started) == 2)  # failed once, restarted after the backoff
        assert [started for started, _ in receiver.started] == [inbox.id, inbox.id]
        async with store.transaction() as tx:
            row = await tx.get(Inbox, inbox.id)
            assert row is not None
            row.settings = {"mode": "b"}
        await until(lambda: receiver.started[-1][1] == {"mode": "b"})
        assert receiver.cancelled == [inbox.id]  # the old receiver was stopped first
        async with store.transaction() as tx:
            await tx.execute(delete(Inbox).where(Inbox.id == inbox.id))  # type: ignore[arg-type]
        await until(lambda: len(receiver.cancelled) == 2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
