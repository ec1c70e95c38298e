"""One writer, checked on the source (AST, not a regex over text): outside `inbox/service/`, no module opens a
write transaction that touches conversation data, builds a `Message` or `Outbox` row, or publishes an event.

Conversation data: conversations, messages, contacts, identities, labels, teams, canned responses, outbox
rows, attachments, surveys. Other tables have their own writers (the directory's agents and inboxes, leases,
quarantine, cursors, self-service articles) and are not checked here. `ALLOWED` names what is still outside
the rule, each with its reason; a new violation fails the test, and so does an entry that no longer applies.
"""

from __future__ import annotations

import ast
from pathlib import Path

INBOX = Path(__file__).resolve().parent.parent / "inbox"
CONVERSATION_DATA = {
    "Conversation",
    "Message",
    "Contact",
    "Identity",
    "Label",
    "ConversationLabel",
    "Team",
    "TeamMember",
    "CannedResponse",
    "Outbox",
    "Attachment",
    "CsatSurvey",
}
BUILT_ONLY_BY_THE_SERVICE = {"Message", "Outbox"}
# module → what it still does, and why it is allowed for now.
ALLOWED: dict[str, set[str]] = {
    # The directory writes agents, inboxes and memberships (not conversation data) and appends their events
    # (`inbox.updated`, `agent.updated`) through the service inside its own transactions, then publishes
    # them; deleting an inbox checks its conversations in the same transaction. To move into the service.
    "admin/directory.py": {"publish", "transaction:Conversation"},
    # The outbox claims its rows (a lease: attempts and next attempt time) with FOR UPDATE SKIP LOCKED.
    "gateway/outbox.py": {"transaction:Outbox"},
    # Sign-in records the token's last use and finds the agent; it writes no conversation data but reads
    # through the same transaction helper.
    # The demo seeds its sample reference data directly (labels, canned responses, teams) before it
    # delivers its conversations through the service.
    "demo/seed.py": {"transaction:Label", "transaction:CannedResponse", "transaction:Team", "transaction:TeamMember"},
}


def _names(node: ast.AST) -> set[str]:
    return {child.id for child in ast.walk(node) if isinstance(child, ast.Name)}


def _is_transaction(item: ast.withitem) -> bool:
    call = item.context_expr
    return isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "transaction"


def violations(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "publish":
                found.add("publish")
            if isinstance(func, ast.Name) and func.id in BUILT_ONLY_BY_THE_SERVICE:
                found.add(f"builds:{func.id}")
        if isinstance(node, ast.AsyncWith) and any(_is_transaction(item) for item in node.items):
            touched = set().union(*(_names(statement) for statement in node.body)) & CONVERSATION_DATA
            found.update(f"transaction:{name}" for name in touched)
    return found


def test_only_the_service_writes_conversation_data_and_publishes() -> None:
    checked = 0
    unexpected: dict[str, set[str]] = {}
    for path in sorted(INBOX.rglob("*.py")):
        relative = path.relative_to(INBOX).as_posix()
        if relative.startswith(("service/", "realtime/", "store/")):
            continue  # the writer itself; the broker's own publish; the engine and models
        checked += 1
        found = violations(path) - ALLOWED.get(relative, set())
        if found:
            unexpected[relative] = found
    assert checked > 40
    assert unexpected == {}, f"outside inbox/service: {unexpected}"


def test_every_allowed_exception_still_applies() -> None:
    stale = {
        module: allowed - violations(INBOX / module)
        for module, allowed in ALLOWED.items()
        if allowed - violations(INBOX / module)
    }
    assert stale == {}, f"these no longer happen; remove them from ALLOWED: {stale}"


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The detector itself: each kind of violation in a small module is found."""
    module = tmp_path / "handler.py"
    module.write_text(
        "async def handler(request, broker):\n"
        "    async with request.app.state.store.transaction() as tx:\n"
        "        tx.add(Message(body='x'))\n"
        "        conversation = await tx.get(Conversation, 1)\n"
        "    await broker.publish(record)\n"
    )
    assert violations(module) == {"publish", "builds:Message", "transaction:Message", "transaction:Conversation"}
