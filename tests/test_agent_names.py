"""An agent's name refuses control characters (issue 17 item 10): a name with CR/LF would otherwise reach
outgoing `From:` display names and every page. The check is `inbox.admin.directory.check_name` (agents,
inboxes, tokens). Outgoing mail is safe either way: the composer folds a name to one line."""

from __future__ import annotations

import pytest

from channels.email.compose import Reply, compose_reply
from inbox.admin.directory import AgentChanges, Directory
from inbox.errors import Invalid
from inbox.service import InboxService
from tests.factories import make_agent

BAD = ["Ann\r\nBcc: x@evil.test", "Ann\x00", "Ann\x1b[31m", "Ann\u0085Bcc"]


@pytest.mark.parametrize("name", BAD)
async def test_an_agent_name_with_control_characters_is_refused(service: InboxService, name: str) -> None:
    directory = Directory(service)
    with pytest.raises(Invalid, match="name"):
        await directory.create_agent(email="eve@example.test", name=name, role="agent", password="a-long-password-1")
    agent = await make_agent(service.store, email="bob@example.test", name="Bob")
    assert agent.id is not None
    with pytest.raises(Invalid, match="name"):
        await directory.update_agent(agent.id, AgentChanges(name=name))


@pytest.mark.parametrize("name", BAD)
def test_an_agent_name_never_adds_a_header_to_outgoing_mail(name: str) -> None:
    message = compose_reply(
        Reply(
            from_name=name,
            from_address="support@example.test",
            to=["carol@customer.test"],
            cc=[],
            message_id="<m1@example.test>",
            markdown="Hello",
            subject="Order",
            conversation_number=1,
        )
    )
    head = message.as_bytes().split(b"\r\n\r\n" if b"\r\n\r\n" in message.as_bytes() else b"\n\n", 1)[0]
    assert b"\nBcc:" not in head and b"\x00" not in head and b"\x1b" not in head
    assert message["Bcc"] is None and len(message.get_all("From") or []) == 1
