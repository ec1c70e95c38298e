"""Telegram under overload: the core's admission slot is taken, so `deliver` refuses.

The webhook answers 503 (Telegram keeps the update and sends it again) however often that happens — an
overloaded core is not a failure of the update, so it is never skipped — and long polling keeps its offset,
waits `retry_after` and fetches the same update again. Once there is room, the update is stored once.
"""

from __future__ import annotations

from sqlmodel import col, select

from inbox.gateway.admission import Admission
from inbox.store.models import Cursor
from tests.servers.app import LiveServer
from tests.servers.telegram import FakeTelegram
from tests.telegram.support import bot_inbox, count, eventually, messages, returns, update

MAX_STORE_ATTEMPTS = 5  # channels.telegram.channel: failures after which an update is skipped


def tighten(app: LiveServer) -> Admission:
    """Room for one delivery, short waits (the running app's own admission)."""
    admission: Admission = app.state.host.admission
    admission.limit = 1
    admission.base_retry_after = admission.max_retry_after = 0.05
    return admission


async def telegram_cursor(app: LiveServer) -> str | None:
    async with app.state.store.session() as session:
        row = (await session.execute(select(Cursor).where(col(Cursor.key).like("telegram:%")))).scalar_one_or_none()
    return row.value if row is not None else None


async def test_webhook_answers_503_while_overloaded_and_never_skips_the_update(
    app: LiveServer, fake: FakeTelegram
) -> None:
    await bot_inbox(app, "webhook")
    await eventually(lambda: returns(fake.webhook))
    admission = tighten(app)
    with admission.slot():  # another delivery holds the only slot
        for _ in range(MAX_STORE_ATTEMPTS + 2):
            refused = await fake.push(update("text"))
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "slow_down"
            assert int(refused.headers["retry-after"]) >= 1
        assert await messages(app.state.store) == []
        assert await telegram_cursor(app) is None
    stored = await fake.push(update("text"))
    assert stored.status_code == 200 and stored.json()["outcome"] == "delivered"
    assert [m.body for m in await messages(app.state.store)] == ["Hi, my order #123 has not arrived"]
    assert admission.refused == MAX_STORE_ATTEMPTS + 2


async def test_polling_keeps_its_offset_while_overloaded_then_stores_the_update_once(
    app: LiveServer, fake: FakeTelegram
) -> None:
    admission = tighten(app)
    with admission.slot():
        await fake.enqueue(update("text"))
        await bot_inbox(app, "polling")
        # Refused more often than an update may fail before it is skipped, and still not skipped.
        await eventually(lambda: returns(admission.refused > MAX_STORE_ATTEMPTS))
        assert await messages(app.state.store) == []
        assert await telegram_cursor(app) is None
        assert not any(call.params.get("offset") == 500002 for call in fake.called("getUpdates"))
    await eventually(lambda: count(app.state.store, 1))
    await eventually(lambda: returns(any(c.params.get("offset") == 500002 for c in fake.called("getUpdates"))))
    assert len(await messages(app.state.store)) == 1
