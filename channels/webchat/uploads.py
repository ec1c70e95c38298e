"""The widget's HTTP requests that speak for a visitor: the upload ticket they carry, and the multipart form
of an upload (one file, a client id and an optional text) turned into what `check_upload` accepts."""

from __future__ import annotations

import time

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from channels.base import Host, InboundAttachment, InboxInfo
from channels.webchat import protocol
from channels.webchat.connection import http_error
from channels.webchat.documents import find_inbox
from channels.webchat.files import FileRefused, check_upload
from channels.webchat.protocol import Visitor
from channels.webchat.settings import WebchatSettings


async def ticket_holder(
    host: Host, settings: WebchatSettings, request: Request
) -> tuple[InboxInfo, Visitor] | Response:
    """The inbox (`?key=`) and the visitor whose upload ticket (`Authorization: Bearer`, from the welcome)
    the request carries, or the error to answer."""
    inbox = await find_inbox(host, request.query_params.get("key"))
    if inbox is None:
        return http_error(404, "unknown_key", "key: no chat widget has this key")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    ticket = protocol.unsign(settings.token_key, token.strip(), "upload") if scheme.lower() == "bearer" else None
    if ticket is None or ticket.get("i") != inbox.id or float(ticket.get("e", 0)) < time.time():
        return http_error(401, "invalid_token", "Authorization: expected 'Bearer <upload_token from welcome>'")
    return inbox, protocol.visitor_of_ticket(ticket)


async def read_upload(request: Request, settings: WebchatSettings) -> tuple[InboundAttachment, str, str]:
    """The file, client id and text of an upload form; raises `FileRefused` with the status to answer."""
    limit = settings.max_attachment_bytes
    try:
        async with request.form(max_files=1, max_fields=4) as form:
            upload, client_id, body = form.get("file"), form.get("client_id"), form.get("body") or ""
            if not isinstance(upload, UploadFile):
                raise FileRefused(422, "invalid", "file: required")
            if not isinstance(client_id, str) or not 0 < len(client_id) <= protocol.MAX_CLIENT_ID:
                raise FileRefused(422, "invalid", "client_id: expected a string of 1 to 64 characters")
            if not isinstance(body, str) or len(body) > settings.max_message_chars:
                raise FileRefused(422, "too_long", f"body: longer than {settings.max_message_chars} characters")
            data = await upload.read(limit + 1)
            filename, content_type = upload.filename or "", upload.content_type or ""
    except FileRefused:
        raise
    except Exception as exc:
        raise FileRefused(400, "invalid", f"body: expected multipart/form-data ({exc})") from exc
    return check_upload(filename, content_type, data, settings), client_id, body
