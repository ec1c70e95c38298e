"""Macros over real HTTP on both databases: CRUD with validation naming the field, running one on a
conversation (every action written at once, each an activity line naming the macro, a note and a canned reply
signed by the agent), who may run one, and ids out of range."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from inbox.admin.directory import Directory
from inbox.service import ConversationChanges, InboxService
from inbox.store.models import CannedResponse, Conversation, Message, MessageKind, Outbox
from tests.factories import inbound, make_inbox, make_label
from tests.people import People, make_people
from tests.servers.app import LiveServer


@pytest.fixture
async def people(server: LiveServer) -> AsyncIterator[People]:
    found = await make_people(server)
    yield found
    await found.admin.aclose()
    await found.agent.aclose()


def error(response: httpx.Response) -> str:
    detail: str = response.json()["error"]["detail"]
    return detail


async def setup(server: LiveServer, people: People, *, member: bool = True) -> tuple[int, int]:
    """An inbox (the agent a member of it) with one conversation, a label and a canned response."""
    service: InboxService = server.state.service
    inbox = await make_inbox(service.store)
    assert inbox.id is not None
    if member:
        await Directory(service).add_member(inbox.id, people.agent_id)
    await make_label(service.store, "spam")
    async with service.store.transaction() as tx:
        tx.add(CannedResponse(short_code="bye", content="Closing this one, thanks!"))
    delivered = await service.deliver(inbound(inbox))
    return inbox.id, delivered.conversation_id


CLOSE = {
    "name": "Close as spam",
    "actions": [
        {"type": "add_label", "label": "spam"},
        {"type": "set_priority", "priority": "low"},
        {"type": "add_note", "body": "Spam, closed by macro."},
        {"type": "reply_canned", "canned_response_id": 1},
        {"type": "set_status", "status": "resolved"},
    ],
}


async def test_an_agent_runs_a_macro_on_a_conversation(server: LiveServer, people: People) -> None:
    _, conversation_id = await setup(server, people)
    created = await people.admin.post("/api/v1/macros", json=CLOSE)
    assert created.status_code == 201, created.text
    macro_id = created.json()["id"]
    assert [item["name"] for item in (await people.agent.get("/api/v1/macros")).json()["items"]] == ["Close as spam"]
    ran = await people.agent.post(f"/api/v1/conversations/{conversation_id}/macros/{macro_id}")
    assert ran.status_code == 200, ran.text
    view = ran.json()["conversation"]
    assert (view["status"], view["priority"], view["labels"]) == ("resolved", "low", ["spam"])
    store = server.state.store
    async with store.session() as session:
        rows = list(
            (
                await session.execute(
                    select(Message).where(col(Message.conversation_id) == conversation_id).order_by(col(Message.id))
                )
            ).scalars()
        )
        queued = (await session.execute(select(Outbox.message_id))).scalars().all()
    activity = [row.body for row in rows if row.kind == MessageKind.ACTIVITY]
    assert activity == [
        "Macro \u201cClose as spam\u201d: added label spam",
        "Macro \u201cClose as spam\u201d: set priority to low",
        "Macro \u201cClose as spam\u201d: added a private note",
        "Macro \u201cClose as spam\u201d: replied with canned response /bye",
        "Macro \u201cClose as spam\u201d: resolved",
    ]
    (note,) = [row for row in rows if row.kind == MessageKind.NOTE]
    assert (note.body, note.sender_name, note.sender_id) == ("Spam, closed by macro.", "Bob Agent", people.agent_id)
    (reply,) = [row for row in rows if row.kind == MessageKind.OUTGOING]
    assert (reply.body, reply.sender_name) == ("Closing this one, thanks!", "Bob Agent")
    assert reply.id in queued
    assert reply.meta["automation"]["macro_id"] == macro_id


async def test_a_macro_that_cannot_run_writes_nothing(server: LiveServer, people: People) -> None:
    _, conversation_id = await setup(server, people)
    macro_id = (await people.admin.post("/api/v1/macros", json=CLOSE)).json()["id"]
    assert (await people.admin.delete("/api/v1/labels/1")).status_code == 204  # the label it names is gone
    ran = await people.agent.post(f"/api/v1/conversations/{conversation_id}/macros/{macro_id}")
    assert ran.status_code == 422 and error(ran).startswith("labels: label 'spam' does not exist")
    async with server.state.store.session() as session:
        row = await session.get(Conversation, conversation_id)
        assert row is not None and (row.status, row.priority) == ("open", None)


async def test_who_may_run_a_macro(server: LiveServer, people: People) -> None:
    _, conversation_id = await setup(server, people, member=False)
    macro_id = (
        await people.admin.post("/api/v1/macros", json={"name": "Take", "actions": [{"type": "unassign"}]})
    ).json()["id"]
    outside = await people.agent.post(f"/api/v1/conversations/{conversation_id}/macros/{macro_id}")
    assert outside.status_code == 404  # not a member: the conversation does not exist for them
    service: InboxService = server.state.service
    async with service.store.session() as session:
        conversation = await session.get(Conversation, conversation_id)
        assert conversation is not None
    await Directory(service).add_member(conversation.inbox_id, people.agent_id)
    await Directory(service).add_member(conversation.inbox_id, people.admin_id)
    await service.update_conversation(conversation_id, ConversationChanges(assignee_id=people.admin_id), by=None)
    colleague = await people.agent.post(f"/api/v1/conversations/{conversation_id}/macros/{macro_id}")
    assert colleague.status_code == 403 and error(colleague).startswith("macro_id:")
    taken = await people.admin.post(f"/api/v1/conversations/{conversation_id}/macros/{macro_id}")
    assert taken.status_code == 200 and taken.json()["conversation"]["assignee_id"] is None


async def test_macros_crud_and_validation(server: LiveServer, people: People) -> None:
    await setup(server, people)
    macro_id = (await people.admin.post("/api/v1/macros", json=CLOSE)).json()["id"]
    assert (await people.agent.post("/api/v1/macros", json={**CLOSE, "name": "Mine"})).status_code == 403
    clash = await people.admin.post("/api/v1/macros", json=CLOSE)
    assert clash.status_code == 409 and error(clash).startswith("name:")
    renamed = await people.admin.patch(f"/api/v1/macros/{macro_id}", json={"name": "Spam"})
    assert renamed.status_code == 200 and renamed.json()["actions"] == CLOSE["actions"]
    empty = await people.admin.patch(f"/api/v1/macros/{macro_id}", json={})
    assert empty.status_code == 422 and error(empty).startswith("body:")
    assert (await people.agent.get(f"/api/v1/macros/{macro_id}")).json()["name"] == "Spam"
    assert (await people.admin.delete(f"/api/v1/macros/{macro_id}")).status_code == 204
    assert (await people.admin.get(f"/api/v1/macros/{macro_id}")).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "actions": []}, "body.actions: must be a list"),
        ({"name": "x", "actions": [{"type": "add_label", "label": "nope"}]}, "body.actions[0].label: label 'nope'"),
        (
            {"name": "x", "actions": [{"type": "reply_canned", "canned_response_id": 99}]},
            "body.actions[0].canned_response_id",
        ),
        (
            {"name": "x", "actions": [{"type": "assign_team", "team_id": 2**31}]},
            "body.actions[0].team_id: must be an id",
        ),
        ({"name": "x", "actions": [{"type": "set_status", "status": "snoozed"}]}, "body.actions[0].snooze_minutes"),
        ({"name": "", "actions": [{"type": "unassign"}]}, "body.name"),
        ({"actions": [{"type": "unassign"}]}, "body.name"),
        ({"name": "x", "actions": "unassign"}, "body.actions"),
    ],
)
async def test_bad_macros_are_422_naming_the_field(
    server: LiveServer, people: People, body: dict[str, Any], field: str
) -> None:
    response = await people.admin.post("/api/v1/macros", json=body)
    assert response.status_code == 422, response.text
    assert error(response).startswith(field), error(response)


async def test_macro_ids_out_of_range_are_404(server: LiveServer, people: People) -> None:
    _, conversation_id = await setup(server, people)
    for path in (
        "/api/v1/macros/0",
        "/api/v1/macros/99999999999",
    ):
        assert (await people.admin.get(path)).status_code == 404, path
    for path in (
        f"/api/v1/conversations/{conversation_id}/macros/99999999999",
        f"/api/v1/conversations/{conversation_id}/macros/7",
        "/api/v1/conversations/99999999999/macros/1",
    ):
        assert (await people.admin.post(path)).status_code == 404, path
