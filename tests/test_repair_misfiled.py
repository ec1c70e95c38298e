"""`switchboard repair misfiled`: finds messages stored under another customer's contact and conversation (the
PostgreSQL misfiling before the look-up was paired by key), moves them with --apply, and leaves a dry run
unchanged. The database is seeded with correct deliveries, then misfiled by hand the way the bug did."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from channels.base import Delivered
from inbox.service import InboxService
from inbox.store.engine import Store
from inbox.store.models import Conversation, Message
from tests.factories import inbound, make_inbox


def run_cli(db_url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SWITCHBOARD_DATABASE_URL": db_url}
    return subprocess.run(
        [sys.executable, "-m", "inbox", "repair", "misfiled", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def where(store: Store, message_id: int) -> tuple[int, int]:
    async with store.session() as session:
        message = await session.get(Message, message_id)
        assert message is not None
        conversation = await session.get(Conversation, message.conversation_id)
        assert conversation is not None
        return message.conversation_id, conversation.contact_id


async def test_repair_moves_misfiled_messages_to_their_senders(
    store: Store, service: InboxService, db_url: str, tmp_path: Path
) -> None:
    inbox = await make_inbox(store)
    ann = await service.deliver(inbound(inbox, "a1", sender="ann"))
    bob = await service.deliver(inbound(inbox, "b1", sender="bob"))
    ann2 = await service.deliver(inbound(inbox, "a2", sender="ann"))
    # Carol never got a contact: her only message went into Bob's conversation.
    carol = await service.deliver(inbound(inbox, "c1", sender="carol"))
    assert all(isinstance(d, Delivered) for d in (ann, bob, ann2, carol))
    async with store.transaction() as tx:
        # Misfile as the bug did: Ann's second message under Bob (conversation and sender contact).
        await tx.execute(
            text("UPDATE message SET conversation_id = :c, sender_id = :s WHERE id = :m"),
            {"c": bob.conversation_id, "s": bob.contact_id, "m": ann2.message_id},
        )
        await tx.execute(
            text("UPDATE message SET conversation_id = :c, sender_id = :s WHERE id = :m"),
            {"c": bob.conversation_id, "s": bob.contact_id, "m": carol.message_id},
        )
        await tx.execute(text("DELETE FROM conversation WHERE id = :c"), {"c": carol.conversation_id})
        await tx.execute(text("DELETE FROM identity WHERE contact_id = :c"), {"c": carol.contact_id})
        await tx.execute(text("DELETE FROM contact WHERE id = :c"), {"c": carol.contact_id})

    dry = run_cli(db_url, tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "2 misfiled message(s) found; dry run" in dry.stdout
    assert f"message {ann2.message_id}:" in dry.stdout and f"message {carol.message_id}:" in dry.stdout
    assert await where(store, ann2.message_id) == (bob.conversation_id, bob.contact_id)  # nothing changed

    applied = run_cli(db_url, tmp_path, "--apply")
    assert applied.returncode == 0, applied.stderr
    assert "2 message(s) moved" in applied.stdout
    assert await where(store, ann2.message_id) == (ann.conversation_id, ann.contact_id)
    carol_conversation, carol_contact = await where(store, carol.message_id)
    assert carol_conversation not in (ann.conversation_id, bob.conversation_id)
    assert carol_contact not in (ann.contact_id, bob.contact_id)
    async with store.session() as session:
        owner = (
            await session.execute(text("SELECT contact_id FROM identity WHERE value = :v"), {"v": f"{inbox.id}:carol"})
        ).scalar_one()
        assert owner == carol_contact
        sender = (
            await session.execute(text("SELECT sender_id FROM message WHERE id = :m"), {"m": ann2.message_id})
        ).scalar_one()
        assert sender == ann.contact_id
        lines = (
            await session.execute(
                text("SELECT conversation_id, body FROM message WHERE kind = 'activity' ORDER BY conversation_id")
            )
        ).all()
    by_conversation = {conversation_id: body for conversation_id, body in lines}
    assert "moved to their sender's own conversation" in by_conversation[bob.conversation_id]
    assert "moved here" in by_conversation[ann.conversation_id]
    assert set(by_conversation) == {ann.conversation_id, bob.conversation_id, carol_conversation}

    again = run_cli(db_url, tmp_path)
    assert "0 misfiled message(s) found" in again.stdout  # repaired for good
