"""Every inbound message lands in its own sender's conversation, under its own contact — however the
database orders the rows of a batch's look-up (issue: PostgreSQL's hash join over the VALUES list reordered
them, and pairing by position filed customers' messages under other customers' conversations).

Large concurrent batches from many distinct senders, known and new, on both databases, through the direct
writer; and a property test that the direct writer and the general path store exactly the same rows."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from channels.base import Identity, IdentityKind, Inbound
from inbox.realtime.broker import LocalBroker
from inbox.service import InboxService
from inbox.store.blobs import BlobStore
from inbox.store.engine import Store
from inbox.store.migrate import upgrade
from tests.conftest import fresh_postgres_database
from tests.factories import make_inbox
from tests.test_ingest_direct import snapshot

SENDERS = 60
ROUNDS = 6
BATCH = 16  # the direct writer's largest batch (`MAX_DIRECT`)


def message(inbox_id: int, external_id: str, sender: str, thread: str | None = None) -> Inbound:
    return Inbound(
        inbox_id=inbox_id,
        external_id=external_id,
        thread_key=thread or f"thread:{sender}",
        sender=Identity(IdentityKind.WEBCHAT, f"{inbox_id}:visitor:{sender}", name=f"Visitor {sender}"),
        text=f"{external_id} from {sender}",
    )


async def misfiled(store: Store) -> list[tuple[str, str, str]]:
    """Messages (external id `r<round>-<sender>`) whose conversation is not their sender's thread, or whose
    conversation's contact does not hold their sender's identity: (external id, sender, where it was filed)."""
    async with store.session() as session:
        owned = {
            (contact_id, value)
            for contact_id, value in await session.execute(text("SELECT contact_id, value FROM identity"))
        }
        rows = await session.execute(
            text(
                "SELECT m.external_id, m.inbox_id, m.sender_id, c.thread_key, c.contact_id"
                " FROM message m JOIN conversation c ON c.id = m.conversation_id WHERE m.kind = 'incoming'"
            )
        )
        wrong: list[tuple[str, str, str]] = []
        for external_id, inbox_id, sender_id, thread_key, contact_id in rows:
            sender = external_id.split("-", 1)[1]
            identity = f"{inbox_id}:visitor:{sender}"
            if thread_key != f"thread:{sender}" or (contact_id, identity) not in owned or sender_id != contact_id:
                wrong.append((external_id, sender, f"{thread_key} (contact {contact_id})"))
    return wrong


@pytest.fixture(params=["sqlite", "postgres"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'pairing.db'}"
    base = request.getfixturevalue("postgres_base")
    if base is None:
        pytest.skip("PostgreSQL binaries not installed (run `make test` as root to install them)")
    return await fresh_postgres_database(base)


async def test_concurrent_batches_file_every_message_under_its_own_sender(url: str, tmp_path: Path) -> None:
    store = Store(url)
    await upgrade(store)
    service = InboxService(store, LocalBroker(), BlobStore(tmp_path / "blobs"))
    assert service.batcher.direct
    try:
        inbox = await make_inbox(store, channel="webchat")
        assert inbox.id is not None
        sent = 0
        for round_ in range(ROUNDS):
            # Each round: senders met before (known contacts and conversations) beside new ones, in batches
            # of the direct writer's size, all at once. Sender numbers are spread so the VALUES list is
            # in no order the database would keep by itself.
            first_new = round_ * (SENDERS // ROUNDS)
            senders = [f"s{(n * 37) % SENDERS:03d}" for n in range(first_new + SENDERS // ROUNDS)]
            deliveries = [
                service.deliver(message(inbox.id, f"r{round_}-{sender}", sender)) for sender in reversed(senders)
            ]
            for start in range(0, len(deliveries), BATCH):
                await asyncio.gather(*deliveries[start : start + BATCH])
            sent += len(senders)
        assert service.batcher.direct_batches > 0  # the direct writer took batches (the path under test)
        async with store.session() as session:
            stored = (await session.execute(text("SELECT count(*) FROM message"))).scalar_one()
            contacts = (await session.execute(text("SELECT count(*) FROM contact"))).scalar_one()
            conversations = (await session.execute(text("SELECT count(*) FROM conversation"))).scalar_one()
        assert stored == sent
        assert contacts == conversations == SENDERS
        assert await misfiled(store) == []
    finally:
        await store.close()


# The property: for random batches (senders repeating or not, new and known, several inboxes and threads),
# the direct writer and the general path store exactly the same rows.
Spec = tuple[int, int, int]  # inbox (0-2), sender (0-5), thread (0-2) of one message
batches = st.lists(
    st.lists(st.tuples(st.integers(0, 2), st.integers(0, 5), st.integers(0, 2)), min_size=1, max_size=10),
    min_size=1,
    max_size=4,
)


def renumbered(rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The rows with contacts and conversations numbered by their order (as `snapshot` numbers messages):
    PostgreSQL's direct writer takes ids in its look-up, so a batch it hands over leaves a gap in them."""
    rows.pop("event")  # compared by `test_ingest_direct`; here: where each message was filed
    contact = {row["id"]: rank for rank, row in enumerate(rows["contact"], 1)}
    conversation = {row["id"]: rank for rank, row in enumerate(rows["conversation"], 1)}
    for row in rows["contact"]:
        row["id"] = contact[row["id"]]
    for row in rows["identity"]:
        row["contact_id"] = contact[row["contact_id"]]
    for row in rows["conversation"]:
        row["id"], row["contact_id"] = conversation[row["id"]], contact[row["contact_id"]]
    for row in rows["message"]:
        row["conversation_id"] = conversation[row["conversation_id"]]
        row["sender_id"] = contact[row["sender_id"]]
    return rows


async def _store_batches(url: str, tmp_path: Path, name: str, spec: list[list[Spec]], *, direct: bool) -> Any:
    store = Store(url)
    await upgrade(store)
    service = InboxService(store, LocalBroker(), BlobStore(tmp_path / f"{name}-blobs"))
    service.batcher.direct = direct
    try:
        inboxes = [await make_inbox(store, channel="webchat", name=f"Inbox {n}") for n in range(3)]
        number = 0
        for batch in spec:
            messages = []
            for inbox_at, sender, thread in batch:
                inbox_id = inboxes[inbox_at].id
                assert inbox_id is not None
                number += 1
                messages.append(message(inbox_id, f"m{number}", f"p{sender}", f"thread:p{sender}:{thread}"))
            await asyncio.gather(*(service.deliver(item) for item in messages))
        return renumbered(await snapshot(store)), service.batcher.direct_batches
    finally:
        await store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_direct_writer_stores_what_the_general_path_stores(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    base = request.getfixturevalue("postgres_base") if backend == "postgres" else None
    if backend == "postgres" and base is None:
        pytest.skip("PostgreSQL binaries not installed (run `make test` as root to install them)")
    tmp = tmp_path_factory.mktemp("property")
    counter = iter(range(1_000_000))

    async def fresh() -> str:
        if base is None:
            return f"sqlite+aiosqlite:///{tmp}/db{next(counter)}.db"
        return await fresh_postgres_database(base)

    taken: list[int] = []

    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(spec=batches)
    def check(spec: list[list[Spec]]) -> None:
        async def both() -> None:
            direct, went_direct = await _store_batches(await fresh(), tmp, f"d{next(counter)}", spec, direct=True)
            general, _ = await _store_batches(await fresh(), tmp, f"g{next(counter)}", spec, direct=False)
            taken.append(went_direct)
            assert direct == general

        asyncio.run(both())

    check()
    assert sum(taken) > 0  # the direct writer took some of the batches: the property compared something
