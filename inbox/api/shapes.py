"""Response shapes of the conversations, messages, contacts and attachments API, for the OpenAPI document.

They mirror `inbox.read.views` (which builds the JSON); the API tests validate real responses against them with
unknown fields refused, so the document cannot drift from what the server sends.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AttachmentOut(Shape):
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    url: str = Field(description="download it here (always served as an attachment)")


class Sender(Shape):
    type: Literal["contact", "agent", "system"]
    id: int | None
    name: str


class MessageOut(Shape):
    id: int
    conversation_id: int
    inbox_id: int
    kind: Literal["incoming", "outgoing", "note", "activity"]
    body: str
    html: str | None = Field(description="sanitised HTML (email), if any")
    sender: Sender
    status: Literal["received", "queued", "sent", "delivered", "read", "failed"]
    error: str | None = Field(description="why sending failed")
    external_id: str | None
    client_id: str | None
    meta: dict[str, Any]
    attachments: list[AttachmentOut]
    created_at: str | None
    updated_at: str | None


class ContactBrief(Shape):
    id: int
    name: str
    email: str | None


class ConversationOut(Shape):
    id: int
    number: int
    inbox_id: int
    contact: ContactBrief | None
    status: Literal["open", "pending", "snoozed", "resolved"]
    assignee_id: int | None
    team_id: int | None
    priority: str | None
    subject: str | None
    preview: str
    unread_count: int
    labels: list[str]
    snoozed_until: str | None
    created_at: str | None
    updated_at: str | None
    first_reply_at: str | None
    resolved_at: str | None
    last_activity_at: str | None


class IdentityOut(Shape):
    kind: str = Field(description="email, telegram, webchat, phone or external")
    value: str
    name: str
    verified: bool
    created_at: str | None = Field(default=None, description="when this identity first wrote")


class ContactOut(Shape):
    id: int
    name: str
    email: str | None
    phone: str | None
    attributes: dict[str, Any]
    identities: list[IdentityOut]
    merged_into_id: int | None
    created_at: str | None
    updated_at: str | None


class ContactDetail(ContactOut):
    conversations: list[ConversationOut] = Field(description="the latest 100 on inboxes the caller may see")


class ConversationPage(Shape):
    items: list[ConversationOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class MessagePage(Shape):
    items: list[MessageOut] = Field(description="oldest first")
    next_before: int | None = Field(description="pass as `before` for older messages; null when none are left")


class ContactPage(Shape):
    items: list[ContactOut]
    next_cursor: str | None
