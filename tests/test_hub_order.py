"""Hub ordering: the hub hands events on in id order, each once, and reads what it missed from the real event log."""

from __future__ import annotations

import asyncio

from inbox.realtime import events
from inbox.realtime.events import EventRecord
from inbox.realtime.hub import Hub, Subscription
from inbox.service import InboxService
from inbox.store.engine import Store
from tests.factories import inbound, make_inbox


async def logged(store: Store, service: InboxService, count: int) -> list[EventRecord]:
    inbox = await make_inbox(store)
    for number in range(count):
        await service.deliver(inbound(inbox, f"m{number}", sender="same"))
    async with store.session() as session:
        return await events.after(session, 0, limit=1000)


def hub_over(store: Store) -> Hub:
    async def read_log(after: int, limit: int) -> events.LogRead:
        return await events.read_settled(store, after, limit=limit)

    return Hub(read_log=read_log, settle_seconds=0.01)


def queued_ids(subscription: Subscription) -> list[int]:
    ids = []
    while not subscription.queue.empty():
        ids.append(subscription.queue.get_nowait().id)
    return ids


async def wait_for(subscription: Subscription, count: int) -> list[int]:
    seen: list[int] = []
    async with asyncio.timeout(5):
        while len(seen) < count:
            seen.append((await subscription.queue.get()).id)
    return seen


async def test_out_of_order_and_duplicate_events_go_out_in_order_once(store: Store, service: InboxService) -> None:
    records = await logged(store, service, 3)
    ids = [record.id for record in records]
    hub = hub_over(store)
    hub.start(0)
    subscription = hub.subscribe(1, is_admin=True, inbox_ids=frozenset())
    by_id = {record.id: record for record in records}
    order = [ids[2], ids[0], ids[1], ids[1], ids[0], *ids[3:]]
    for event_id in order:
        await hub.on_event(by_id[event_id])
    assert await wait_for(subscription, len(ids)) == ids
    assert queued_ids(subscription) == []
    await hub.stop()


async def test_an_event_that_never_arrives_is_read_from_the_log(store: Store, service: InboxService) -> None:
    records = await logged(store, service, 2)
    hub = hub_over(store)
    hub.start(0)
    subscription = hub.subscribe(1, is_admin=True, inbox_ids=frozenset())
    await hub.on_event(records[0])
    for record in records[2:]:  # records[1] is lost on the way
        await hub.on_event(record)
    assert await wait_for(subscription, len(records)) == [record.id for record in records]
    assert hub.gaps_filled >= 1
    await hub.stop()


async def test_catch_up_hands_on_everything_logged_after_the_last_id(store: Store, service: InboxService) -> None:
    records = await logged(store, service, 2)
    hub = hub_over(store)
    hub.start(records[0].id)
    subscription = hub.subscribe(1, is_admin=True, inbox_ids=frozenset())
    assert await hub.catch_up() == len(records) - 1
    assert queued_ids(subscription) == [record.id for record in records[1:]]
    assert await hub.catch_up() == 0
    await hub.on_event(records[-1])  # arriving late through the broker: not handed on twice
    assert queued_ids(subscription) == []
