"""HTTP API: conversations (list, get, patch, mark read), their messages (list, post) and message retry.

Handlers check who may see what (`inbox.read.access`: another inbox's conversation is a 404) and, for a
change of assignee, whether the caller may take a colleague's conversation (`inbox.read.permissions`), read through
`inbox.read.queries` and write only through `InboxService`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from starlette.requests import Request
from starlette.responses import Response

from inbox.api.common import Body, Changes, Id, Query, path_id
from inbox.api.shapes import ConversationOut, ConversationPage, MessageOut, MessagePage
from inbox.errors import Forbidden, NotFound
from inbox.http.routing import Api, caller, json, parse_body, parse_query
from inbox.http.schema import decimal_up_to
from inbox.http.services import services
from inbox.read import access, permissions, queries
from inbox.read.queries import MAX_ID
from inbox.service import ConversationChanges, InboxService
from inbox.store.models import Agent, Conversation, Message, Status

api = Api()

ASSIGNEE = f"^(?:me|none|{decimal_up_to(MAX_ID, leading_zeros=False)})$"  # an agent id: 1 to MAX_ID
Priority = Literal["urgent", "high", "medium", "low"]


class ConversationQuery(Query):
    status: Status | None = None
    inbox_id: Id | None = None
    assignee: str | None = Field(
        default=None, description="`me`, `none` or an agent id", json_schema_extra={"pattern": ASSIGNEE}
    )
    label: str | None = Field(default=None, max_length=100, description="a label name")
    team_id: Id | None = None
    q: str | None = Field(default=None, max_length=200, description="searches subject, preview, contact name/email")
    cursor: str | None = Field(default=None, max_length=500, description="`next_cursor` of the previous page")
    limit: int = Field(default=25, ge=1, le=100)

    @field_validator("assignee")
    @classmethod
    def _assignee(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(ASSIGNEE, value):
            raise ValueError("must be 'me', 'none' or an agent id")
        return value


class ConversationPatch(Changes):
    """Any of these; `null` clears assignee, team, priority. A `snoozed_until` alone means status snoozed."""

    nullable = frozenset({"assignee_id", "team_id", "priority", "snoozed_until"})

    status: Status | None = Field(default=None, strict=False)
    assignee_id: Id | None = None
    team_id: Id | None = None
    priority: Priority | None = None
    snoozed_until: datetime | None = Field(default=None, strict=False, description="ISO 8601; naive means UTC")
    labels: list[str] | None = Field(default=None, max_length=50)

    @model_validator(mode="after")
    def _consistent(self) -> ConversationPatch:
        given = self.model_fields_set
        if not given:
            raise ValueError(f"give at least one of {', '.join(type(self).model_fields)}")
        if "status" in given and self.status is None:
            raise ValueError("status: must be one of " + ", ".join(Status))
        if "labels" in given and self.labels is None:
            raise ValueError("labels: use [] to remove every label")
        if self.snoozed_until is not None and self.status not in (None, Status.SNOOZED):
            raise ValueError("snoozed_until: only allowed with status snoozed")
        return self

    def changes(self) -> ConversationChanges:
        values: dict[str, Any] = self.given()
        until = values.get("snoozed_until")
        if isinstance(until, datetime):
            values["snoozed_until"] = until.replace(tzinfo=UTC) if until.tzinfo is None else until.astimezone(UTC)
            values.setdefault("status", Status.SNOOZED)
        if "status" in values:
            values["status"] = str(values["status"])
        return ConversationChanges(**values)


class MessageQuery(Query):
    before: Id | None = Field(default=None, description="a message id: return messages older than it")
    limit: int = Field(default=50, ge=1, le=200)


class NewMessage(Body):
    body: str = Field(default="", max_length=100_000)
    kind: Literal["outgoing", "note"] = "outgoing"
    client_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="a UUID; posting it again returns the same message"
    )
    attachment_ids: list[Id] = Field(default_factory=list, max_length=20)


def _assignee(value: str | None, me: int | None) -> int | None:
    """The agent id an `assignee=` filter names (`none` is handled as "unassigned")."""
    if value == "me":
        return me
    return int(value) if value and value.isdigit() else None


def _service(request: Request) -> InboxService:
    service: InboxService = services(request).service
    return service


@api.route(
    "GET",
    "/api/v1/conversations",
    summary="List conversations (keyset pages)",
    tag="conversations",
    query=ConversationQuery,
    response=ConversationPage,
)
async def list_conversations(request: Request) -> Response:
    store = services(request).store
    # One read session for the caller, their inboxes and the page (the hottest read of the API). Each of
    # its statements stands alone (the page is one statement, labels included), so none needs a BEGIN.
    async with store.statement_reads() as session:
        who = await caller(request, session)
        query = parse_query(request, ConversationQuery)
        visible = await access.inbox_ids(store, who.agent, session)
        if query.inbox_id is not None and visible is not None and query.inbox_id not in visible:
            raise NotFound(f"inbox {query.inbox_id} not found")
        where = queries.ConversationFilter(
            visible=visible,
            status=str(query.status) if query.status else None,
            inbox_id=query.inbox_id,
            assignee_id=_assignee(query.assignee, who.agent.id),
            unassigned=query.assignee == "none",
            team_id=query.team_id,
            label=query.label,
            q=query.q.strip() if query.q else None,
        )
        after = queries.activity_cursor(query.cursor) if query.cursor else None
        items, next_cursor = await queries.conversation_page(session, where, after, query.limit)
    return json({"items": items, "next_cursor": next_cursor})


@api.route(
    "GET",
    "/api/v1/conversations/{conversation_id:int}",
    summary="Get a conversation",
    tag="conversations",
    response=ConversationOut,
)
async def get_conversation(request: Request) -> Response:
    who = await caller(request)
    store = services(request).store
    conversation = await access.conversation(store, who.agent, path_id(request, "conversation_id", "conversation"))
    async with store.session() as session:
        return json(await queries.conversation_detail(session, conversation))


@api.route(
    "PATCH",
    "/api/v1/conversations/{conversation_id:int}",
    summary="Change status, assignee, team, priority, snooze or labels",
    tag="conversations",
    body=ConversationPatch,
    response=ConversationOut,
)
async def patch_conversation(request: Request) -> Response:
    who = await caller(request)
    patch = await parse_body(request, ConversationPatch)
    conversation = await access.conversation(
        services(request).store, who.agent, path_id(request, "conversation_id", "conversation")
    )
    assert conversation.id is not None
    if "assignee_id" in patch.model_fields_set:
        await _may_assign(request, who.agent, conversation, patch.assignee_id)
    return json(await _service(request).update_conversation(conversation.id, patch.changes(), by=who.agent))


async def _may_assign(request: Request, agent: Agent, conversation: Conversation, assignee_id: int | None) -> None:
    """Assigning an unassigned or one's own conversation is `assign`; taking one off a colleague, `reassign`."""
    current = conversation.assignee_id
    if assignee_id == current:
        return
    action = permissions.Action.REASSIGN if current not in (None, agent.id) else permissions.Action.ASSIGN
    membership = await access.membership(services(request).store, agent, conversation.inbox_id)
    if not permissions.allowed(agent.role, action, membership):
        raise Forbidden(
            f"assignee_id: conversation {conversation.id} is assigned to a colleague; only a supervisor or an admin may reassign it"
        )


@api.route(
    "POST",
    "/api/v1/conversations/{conversation_id:int}/read",
    summary="Mark a conversation read (unread count to zero)",
    tag="conversations",
    status=204,
)
async def read_conversation(request: Request) -> Response:
    who = await caller(request)
    conversation = await access.conversation(
        services(request).store, who.agent, path_id(request, "conversation_id", "conversation")
    )
    assert conversation.id is not None
    await _service(request).mark_read(conversation.id)
    return Response(status_code=204)


@api.route(
    "GET",
    "/api/v1/conversations/{conversation_id:int}/messages",
    summary="Messages, newest page first, each page in chronological order",
    tag="messages",
    query=MessageQuery,
    response=MessagePage,
)
async def list_messages(request: Request) -> Response:
    who = await caller(request)
    query = parse_query(request, MessageQuery)
    store = services(request).store
    conversation = await access.conversation(store, who.agent, path_id(request, "conversation_id", "conversation"))
    assert conversation.id is not None
    async with store.session() as session:
        items, next_before = await queries.message_page(session, conversation.id, query.before, query.limit)
    return json({"items": items, "next_before": next_before})


@api.route(
    "POST",
    "/api/v1/conversations/{conversation_id:int}/messages",
    summary="Reply (kind outgoing, queued for sending) or add a private note; idempotent on client_id",
    tag="messages",
    body=NewMessage,
    status=201,
    response=MessageOut,
)
async def post_message(request: Request) -> Response:
    who = await caller(request)
    new = await parse_body(request, NewMessage)
    conversation = await access.conversation(
        services(request).store, who.agent, path_id(request, "conversation_id", "conversation")
    )
    assert conversation.id is not None
    service = _service(request)
    write = service.reply if new.kind == "outgoing" else service.add_note
    message, created = await write(
        conversation.id, by=who.agent, body=new.body, client_id=new.client_id, attachment_ids=new.attachment_ids
    )
    return json(message, 201 if created else 200)


@api.route(
    "POST",
    "/api/v1/messages/{message_id:int}/retry",
    summary="Queue a failed outgoing message again (409 if it is not failed)",
    tag="messages",
    response=MessageOut,
)
async def retry_message(request: Request) -> Response:
    who = await caller(request)
    message_id = path_id(request, "message_id", "message")
    store = services(request).store
    async with store.session() as session:
        message = await session.get(Message, message_id)
        # Access follows the conversation's inbox (a continuity mail travels through an email inbox).
        conversation = await session.get(Conversation, message.conversation_id) if message is not None else None
    if conversation is None or not await access.may_see_inbox(store, who.agent, conversation.inbox_id):
        raise NotFound(f"message {message_id} not found")
    return json(await _service(request).retry(message_id))
