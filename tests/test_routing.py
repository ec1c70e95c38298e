"""Routing (`inbox.workflow.routing`) on both databases: the pure choice, capacity, agents going offline and
online, the FIFO queue moving when capacity frees, even distribution, the reason line, and two routers
sharing one queue without assigning a conversation twice."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlmodel import col, select

from inbox.clock import utcnow
from inbox.service import ConversationChanges, InboxService
from inbox.store.engine import Store
from inbox.store.lease import Leases
from inbox.store.models import Agent, AgentCapacity, Conversation, Inbox, Message, MessageKind
from inbox.workflow.routing import Candidate, Router, choose, queue_stats
from inbox.workflow.settings import Routing
from tests.factories import add_member, inbound, make_agent, make_inbox

ANN, BOB, CID = Candidate(1, "Ann", 3, 5), Candidate(2, "Bob", 1, 2), Candidate(3, "Cid", 4, 4)


@pytest.mark.parametrize(
    ("candidates", "mode", "after", "expected"),
    [
        ([ANN, BOB, CID], Routing.LEAST_LOADED, None, ("Bob", "Auto-assigned to Bob: least loaded, 2 of 2 open")),
        ([ANN, CID], Routing.LEAST_LOADED, None, ("Ann", "Auto-assigned to Ann: least loaded, 4 of 5 open")),
        ([CID], Routing.LEAST_LOADED, None, None),  # at capacity
        ([ANN, BOB], Routing.OFF, None, None),
        ([ANN, BOB, CID], Routing.ROUND_ROBIN, None, ("Ann", "Auto-assigned to Ann: round robin, 4 of 5 open")),
        ([ANN, BOB, CID], Routing.ROUND_ROBIN, 1, ("Bob", "Auto-assigned to Bob: round robin, 2 of 2 open")),
        (
            [ANN, BOB, CID],
            Routing.ROUND_ROBIN,
            2,
            ("Ann", "Auto-assigned to Ann: round robin, 4 of 5 open"),
        ),  # Cid full
        # equal load: the turn passes on after the one chosen last
        ([Candidate(1, "Ann", 1, 5), Candidate(2, "Bob", 1, 5)], Routing.LEAST_LOADED, 1, ("Bob", None)),
        ([Candidate(1, "Ann", 1, 5), Candidate(2, "Bob", 1, 5)], Routing.LEAST_LOADED, 2, ("Ann", None)),
    ],
)
def test_choose(
    candidates: list[Candidate], mode: Routing, after: int | None, expected: tuple[str, str | None] | None
) -> None:
    found = choose(candidates, mode, after)
    if expected is None:
        assert found is None
        return
    assert found is not None
    assert found[0].name == expected[0]
    if expected[1] is not None:
        assert found[1] == expected[1]


async def agent(store: Store, inbox: Inbox, name: str, *, online: bool = True, capacity: int | None = None) -> Agent:
    row = await make_agent(store, email=f"{name.lower()}@example.test", name=name)
    await add_member(store, inbox, row)
    async with store.transaction() as tx:
        found = await tx.get(Agent, row.id)
        assert found is not None
        found.availability = "online" if online else "offline"
        if capacity is not None:
            tx.add(AgentCapacity(agent_id=row.id, capacity=capacity))  # type: ignore[arg-type]
    return row


async def set_online(store: Store, row: Agent, online: bool) -> None:
    async with store.transaction() as tx:
        found = await tx.get(Agent, row.id)
        assert found is not None
        found.availability = "online" if online else "offline"


async def conversations(service: InboxService, inbox: Inbox, count: int, *, start: int = 0) -> list[int]:
    ids = []
    for number in range(start, start + count):
        delivered = await service.deliver(inbound(inbox, f"m{number}", sender=f"cust-{number}"))
        ids.append(delivered.conversation_id)
    return ids


async def assignees(store: Store, ids: list[int]) -> dict[int, int | None]:
    async with store.session() as session:
        rows = (await session.execute(select(Conversation).where(col(Conversation.id).in_(ids)))).scalars()
        return {row.id: row.assignee_id for row in rows}  # type: ignore[misc]


async def routing_lines(store: Store) -> list[tuple[int, str]]:
    async with store.session() as session:
        rows = (
            await session.execute(
                select(Message)
                .where(col(Message.kind) == MessageKind.ACTIVITY, col(Message.sender_name) == "Routing")
                .order_by(col(Message.id))
            )
        ).scalars()
        return [(row.conversation_id, row.body) for row in rows]


async def test_capacity_queue_and_freeing(store: Store, service: InboxService) -> None:
    inbox = await make_inbox(store, routing="least_loaded")
    ann = await agent(store, inbox, "Ann", capacity=2)
    bob = await agent(store, inbox, "Bob", capacity=1)
    ids = await conversations(service, inbox, 5)
    router = Router(service)
    assert await router.route_all() == 3
    found = await assignees(store, ids)
    assert Counter(found.values()) == {ann.id: 2, bob.id: 1, None: 2}
    assert [found[i] for i in ids[3:]] == [None, None]  # the oldest were served first
    lines = await routing_lines(store)
    assert lines[0] == (ids[0], "Auto-assigned to Ann: least loaded, 1 of 2 open")
    assert len(lines) == 3
    async with store.session() as session:
        [stat] = await queue_stats(session, utcnow())
    assert (stat.inbox_id, stat.length) == (inbox.id, 2) and stat.oldest_wait_seconds >= 0
    # Nothing frees: nothing moves.
    assert await router.route_all() == 0
    # Ann resolves one: the oldest waiting conversation (not the newest) goes to her.
    ann_first = next(i for i in ids if found[i] == ann.id)
    await service.update_conversation(ann_first, ConversationChanges(status="resolved"), by=ann)
    assert await router.route_all() == 1
    after = await assignees(store, ids)
    assert after[ids[3]] == ann.id and after[ids[4]] is None


async def test_offline_agents_get_nothing_until_they_come_online(store: Store, service: InboxService) -> None:
    inbox = await make_inbox(store, routing="round_robin")
    ann = await agent(store, inbox, "Ann", online=False)
    outsider = await make_agent(store, email="out@example.test", name="Out")  # online but not a member
    await set_online(store, outsider, True)
    ids = await conversations(service, inbox, 2)
    router = Router(service)
    assert await router.route_all() == 0
    assert set((await assignees(store, ids)).values()) == {None}
    await set_online(store, ann, True)
    assert await router.route_all() == 2
    assert set((await assignees(store, ids)).values()) == {ann.id}


async def test_inbox_capacity_overrides_the_agents(store: Store, service: InboxService) -> None:
    inbox = await make_inbox(store, routing="least_loaded", routing_capacity=1)
    ann = await agent(store, inbox, "Ann", capacity=5)
    ids = await conversations(service, inbox, 3)
    assert await Router(service).route_all() == 1
    assert Counter((await assignees(store, ids)).values()) == {ann.id: 1, None: 2}
    assert (await routing_lines(store))[0][1] == "Auto-assigned to Ann: least loaded, 1 of 1 open"


async def test_routing_off_assigns_nothing(store: Store, service: InboxService) -> None:
    inbox = await make_inbox(store)
    await agent(store, inbox, "Ann")
    ids = await conversations(service, inbox, 2)
    assert await Router(service).route_all() == 0
    assert set((await assignees(store, ids)).values()) == {None}
    async with store.session() as session:
        assert await queue_stats(session, utcnow()) == []


@pytest.mark.parametrize("mode", ["least_loaded", "round_robin"])
async def test_distribution_is_even(store: Store, service: InboxService, mode: str) -> None:
    inbox = await make_inbox(store, routing=mode)
    team = [await agent(store, inbox, name) for name in ("Ann", "Bob", "Cid")]
    router = Router(service)
    ids: list[int] = []
    for number in range(10):  # one at a time, as they arrive
        ids += await conversations(service, inbox, 1, start=number)
        await router.route_all()
        counts = Counter((await assignees(store, ids)).values())
        held = [counts.get(row.id, 0) for row in team]
        assert max(held) - min(held) <= 1, held
    assert sum(counts.values()) == 10 and None not in counts


async def test_two_routers_never_assign_a_conversation_twice(store: Store, service: InboxService) -> None:
    inbox = await make_inbox(store, routing="least_loaded")
    for name in ("Ann", "Bob", "Cid", "Dee"):
        await agent(store, inbox, name, capacity=100)
    ids = await conversations(service, inbox, 40)
    first, second = Router(service), Router(service)
    await asyncio.gather(first.route_all(), second.route_all())  # no lease: the conditional write decides
    lines = await routing_lines(store)
    assert sorted(conversation for conversation, _ in lines) == sorted(ids)  # each exactly once
    assert None not in (await assignees(store, ids)).values()


async def test_two_processes_under_the_lease_respect_capacity(store: Store, service: InboxService) -> None:
    inbox = await make_inbox(store, routing="least_loaded")
    team = [await agent(store, inbox, name, capacity=3) for name in ("Ann", "Bob")]
    ids = await conversations(service, inbox, 10)
    routers = [Router(service, interval_seconds=0.05) for _ in range(2)]
    leases = [Leases(store, ttl_seconds=2.0, owner=f"process-{n}") for n in range(2)]
    tasks = [
        asyncio.create_task(lease.run_exclusive("timer:routing", router.run))
        for lease, router in zip(leases, routers, strict=True)
    ]
    try:
        for _ in range(100):
            if len(await routing_lines(store)) >= 6:
                break
            await asyncio.sleep(0.05)
        for router in routers:
            router.wake()
        await asyncio.sleep(0.3)  # room for a wrong extra assignment to show
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    counts = Counter((await assignees(store, ids)).values())
    assert counts == {team[0].id: 3, team[1].id: 3, None: 4}
    assert len(await routing_lines(store)) == 6
