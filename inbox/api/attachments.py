"""HTTP API: attachment upload (multipart, size-limited while streaming) and download.

An upload is spooled to a temporary file (never more than the configured limit plus multipart framing is
read), copied into the blob store under a random name, and recorded through `InboxService`; its id then
goes into a message's `attachment_ids`. A download is allowed to whoever may see the message's
conversation, or, before it is sent, to its uploader (and admins). Files are served as downloads with
`nosniff` and a sandboxing CSP, never rendered inline.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator
from urllib.parse import quote

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from inbox.api.common import path_id
from inbox.api.shapes import AttachmentOut
from inbox.errors import Invalid, NotFound, TooLarge
from inbox.http.routing import Api, caller, json
from inbox.http.services import services
from inbox.read import access
from inbox.store.models import Attachment, Conversation, Message

api = Api()

MULTIPART_SLACK = 16_384  # boundaries, part headers and small fields around the file
CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
FALLBACK_TYPE = "application/octet-stream"


def safe_filename(raw: str | None) -> str:
    """The last path component of a client-supplied name, printable, at most 255 characters."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(char for char in name if char.isprintable()).strip()
    if name in ("", ".", ".."):
        return "attachment"
    if len(name) > 255:
        stem, dot, extension = name.rpartition(".")
        name = (stem[: 254 - len(extension)] + dot + extension) if dot and len(extension) < 20 else name[:255]
    return name


def safe_content_type(raw: str | None) -> str:
    value = (raw or "").split(";", 1)[0].strip().lower()
    return value if CONTENT_TYPE.match(value) and len(value) <= 255 else FALLBACK_TYPE


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the exact name as RFC 5987 `filename*`."""
    fallback = "".join(char if 32 <= ord(char) < 127 and char not in '"\\' else "_" for char in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def _limited(stream: AsyncIterator[bytes], limit: int, file_limit: int) -> AsyncGenerator[bytes, None]:
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"file: attachments may be at most {file_limit} bytes")
        yield chunk


@api.route(
    "POST",
    "/api/v1/attachments",
    summary="Upload a file (multipart/form-data, field `file`); use its id in a message's attachment_ids",
    tag="attachments",
    status=201,
    response=AttachmentOut,
    upload="file",
)
async def upload_attachment(request: Request) -> Response:
    who = await caller(request)
    state = services(request)
    limit: int = state.config.storage.max_attachment_bytes
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise Invalid("body: expected multipart/form-data with a file field named 'file'")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + MULTIPART_SLACK:
        raise TooLarge(f"file: attachments may be at most {limit} bytes")
    parser = MultiPartParser(
        request.headers, _limited(request.stream(), limit + MULTIPART_SLACK, limit), max_files=1, max_fields=10
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise Invalid(f"body: {exc.message}") from exc
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Invalid("file: a multipart file field named 'file' is required")
        unknown = sorted(set(form.keys()) - {"file"})
        if unknown:
            raise Invalid(f"body.{unknown[0]}: unknown field (send only the file, as 'file')")
        size = upload.size or 0
        if size > limit:
            raise TooLarge(f"file: attachments may be at most {limit} bytes")
        if size == 0:
            raise Invalid("file: the file is empty")
        await upload.seek(0)
        blob = await state.blobs.save_file(upload.file)
    finally:
        await form.close()
    view = await state.service.add_upload(
        by=who.agent,
        filename=safe_filename(upload.filename),
        content_type=safe_content_type(upload.content_type),
        blob=blob,
    )
    return json(view, 201)


@api.route("GET", "/api/v1/attachments/{attachment_id:int}", summary="Download an attachment", tag="attachments")
async def download_attachment(request: Request) -> Response:
    who = await caller(request)
    attachment_id = path_id(request, "attachment_id", "attachment")
    state = services(request)
    async with state.store.session() as session:
        row = await session.get(Attachment, attachment_id)
        message = await session.get(Message, row.message_id) if row is not None and row.message_id else None
        # Access follows the conversation's inbox (a continuity mail's answer travels through an email inbox).
        conversation = await session.get(Conversation, message.conversation_id) if message is not None else None
    if row is None:
        raise NotFound(f"attachment {attachment_id} not found")
    if message is not None:
        inbox_id = conversation.inbox_id if conversation is not None else message.inbox_id
        allowed = await access.may_see_inbox(state.store, who.agent, inbox_id)
    else:
        allowed = row.uploaded_by == who.agent.id or who.agent.role == "admin"
    if not allowed:
        raise NotFound(f"attachment {attachment_id} not found")
    path = state.blobs.path(row.storage_name)
    if not path.is_file():
        raise NotFound(f"attachment {attachment_id}: its file is missing from storage")
    return FileResponse(
        path,
        media_type=row.content_type,
        headers={
            "content-disposition": content_disposition(row.filename),
            "x-content-type-options": "nosniff",
            "content-security-policy": "default-src 'none'; sandbox",
            "cache-control": "private, max-age=3600",
        },
    )
