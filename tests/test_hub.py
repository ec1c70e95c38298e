"""The hub's fan-out rules: bounded queues cut off a reader that stops, without delaying others."""

from __future__ import annotations

from inbox.realtime.events import EventRecord
from inbox.realtime.hub import OVERFLOW, Hub


def event(n: int, inbox_id: int = 1) -> EventRecord:
    return EventRecord(n, "message.created", inbox_id, 1, {"n": n}, None)


async def test_a_reader_that_stops_is_cut_off_and_others_get_everything() -> None:
    hub = Hub(queue_size=3)
    slow = hub.subscribe(1, is_admin=True, inbox_ids=frozenset())
    fast = hub.subscribe(2, is_admin=True, inbox_ids=frozenset())
    cut: list[bool] = []
    slow.on_cut_off = lambda: cut.append(True)
    for n in range(1, 4):
        await hub.on_event(event(n))
        assert fast.queue.get_nowait().id == n  # the fast reader keeps up
    await hub.on_event(event(4))
    assert slow.overflowed and cut == [True]
    assert slow.queue.get_nowait() is OVERFLOW
    assert fast.queue.get_nowait().id == 4


async def test_membership_follows_inbox_updated_events() -> None:
    hub = Hub()
    agent = hub.subscribe(7, is_admin=False, inbox_ids=frozenset())
    await hub.on_event(event(1, inbox_id=5))
    assert agent.queue.empty()
    await hub.on_event(EventRecord(2, "inbox.updated", 5, None, {"id": 5, "agent_ids": [7]}, None))
    await hub.on_event(event(3, inbox_id=5))
    assert [agent.queue.get_nowait().id for _ in range(2)] == [2, 3]
    await hub.on_event(EventRecord(4, "inbox.updated", 5, None, {"id": 5, "agent_ids": []}, None))
    await hub.on_event(event(5, inbox_id=5))
    assert agent.queue.empty()
