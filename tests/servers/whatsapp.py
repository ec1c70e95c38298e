"""A small Graph API server on loopback for the WhatsApp tests (the machines have no internet).

It speaks the Cloud API's wire protocol: bearer-token auth (else 401 with code 190), `POST
/{version}/{phone_number_id}/messages` answered `{"messaging_product": "whatsapp", "contacts": [{"input",
"wa_id"}], "messages": [{"id": "wamid…"}]}`, `POST /{version}/{phone_number_id}/media` (multipart upload),
`GET /{version}/{media_id}` → `{"url", "mime_type", "sha256", "file_size", "id"}` and the download URL
itself, `GET /{version}/{waba_id}/message_templates` with cursor paging; errors as Graph's `{"error":
{"message", "type", "code", "error_data": {"details"}, "fbtrace_id"}}`. Tests script failures with
`fail(...)`. Also `serve` (any ASGI app under uvicorn on a free port) and `post_signed` (a webhook as Meta
signs it).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.servers.asgi import serve

VERSION = "v21.0"
TOKEN = "EAAG-test-access-token"
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"


@dataclass
class Failure:
    http_status: int
    code: int
    message: str
    retry_after: str | None = None
    after: int = 0  # successful sends to let through first


@dataclass
class FakeGraph:
    url: str = ""
    sends: list[dict[str, Any]] = field(default_factory=list)  # accepted message bodies, in order
    attempts: int = 0  # every POST to /messages, refused ones included
    uploads: list[tuple[str, str, bytes]] = field(default_factory=list)  # filename, type, bytes
    media: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # media id → (mime type, bytes)
    downloads: list[str] = field(default_factory=list)
    templates: list[dict[str, Any]] = field(default_factory=list)
    template_page_size: int = 2
    failures: list[Failure] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def api_base_url(self) -> str:
        return f"{self.url}/{VERSION}"

    # ── what tests do ──
    def fail(
        self,
        http_status: int,
        code: int,
        message: str,
        *,
        times: int = 1,
        retry_after: str | None = None,
        after: int = 0,
    ) -> None:
        """The next `times` sends (once `after` more have gone through) are refused with this Graph error."""
        self.failures.extend(
            Failure(http_status, code, message, retry_after, after if i == 0 else 0) for i in range(times)
        )

    def add_media(self, media_id: str, data: bytes, mime_type: str) -> None:
        self.media[media_id] = (mime_type, data)

    # ── the API ──
    async def messages(self, request: Request) -> Response:
        if not _authorised(request):
            return _unauthorised()
        self.attempts += 1
        if request.path_params["node"] != PHONE_NUMBER_ID:
            return _error(400, 100, "Unsupported post request. Object does not exist")
        body = await request.json()
        if self.failures and self.failures[0].after > 0:
            self.failures[0].after -= 1
        elif self.failures:
            failure = self.failures.pop(0)
            return _error(failure.http_status, failure.code, failure.message, retry_after=failure.retry_after)
        problem = _invalid(body)
        if problem:
            return _error(400, 100, f"(#100) {problem}")
        self.sends.append(body)
        wamid = "wamid.HBgNOUT" + base64.b32encode(f"out-{next(self._ids):06d}".encode()).decode().rstrip("=")
        to = body["to"]
        return JSONResponse(
            {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}], "messages": [{"id": wamid}]}
        )

    async def upload(self, request: Request) -> Response:
        if not _authorised(request):
            return _unauthorised()
        async with request.form() as form:
            upload = form.get("file")
            if form.get("messaging_product") != "whatsapp" or not isinstance(upload, UploadFile):
                return _error(400, 100, "(#100) The parameter messaging_product is required.")
            data = await upload.read()
            content_type = str(form.get("type") or upload.content_type)
            self.uploads.append((upload.filename or "", content_type, data))
        media_id = str(2000000000000000 + next(self._ids))
        self.add_media(media_id, data, content_type)
        return JSONResponse({"id": media_id})

    async def node(self, request: Request) -> Response:
        if not _authorised(request):
            return _unauthorised()
        media_id = request.path_params["node"]
        found = self.media.get(media_id)
        if found is None:
            return _error(400, 100, f"Unsupported get request. Object with ID '{media_id}' does not exist")
        mime_type, data = found
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "url": f"{self.url}/whatsapp_business/attachments/?mid={media_id}&ext=1763800000",
                "mime_type": mime_type,
                "sha256": hashlib.sha256(data).hexdigest(),
                "file_size": len(data),
                "id": media_id,
            }
        )

    async def download(self, request: Request) -> Response:
        if not _authorised(request):
            return _unauthorised()
        media_id = request.query_params.get("mid", "")
        found = self.media.get(media_id)
        if found is None:
            return Response(status_code=404)
        self.downloads.append(media_id)
        return Response(found[1], media_type=found[0])

    async def message_templates(self, request: Request) -> Response:
        if not _authorised(request):
            return _unauthorised()
        if request.path_params["node"] != WABA_ID:
            return _error(400, 100, "Unsupported get request.")
        start = int(request.query_params.get("after") or 0)
        page = self.templates[start : start + self.template_page_size]
        paging: dict[str, Any] = {"cursors": {"before": str(start), "after": str(start + len(page))}}
        if start + len(page) < len(self.templates):
            paging["next"] = (
                f"{self.api_base_url}/{WABA_ID}/message_templates?limit={self.template_page_size}&after={start + len(page)}"
            )
        return JSONResponse({"data": page, "paging": paging})


def _authorised(request: Request) -> bool:
    return request.headers.get("authorization") == f"Bearer {TOKEN}"


def _unauthorised() -> JSONResponse:
    return _error(401, 190, "Invalid OAuth access token - Cannot parse access token")


def _error(status: int, code: int, message: str, *, retry_after: str | None = None) -> JSONResponse:
    body = {
        "error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": message},
            "fbtrace_id": "AbCdEfGhIjK",
        }
    }
    response = JSONResponse(body, status_code=status)
    if retry_after is not None:
        response.headers["retry-after"] = retry_after
    return response


def _invalid(body: Any) -> str | None:
    """What the real API would refuse in a send body (the checks our adapter could get wrong)."""
    if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
        return "The parameter messaging_product is required."
    if not str(body.get("to", "")).isdigit():
        return "Invalid parameter: to"
    kind = body.get("type")
    if kind == "text":
        text = body.get("text", {}).get("body", "")
        if not text or len(text) > 4096:
            return "Param text['body'] must be between 1 and 4096 characters"
    elif kind == "template":
        template = body.get("template", {})
        if not template.get("name") or not template.get("language", {}).get("code"):
            return "Param template['name'] and template['language']['code'] are required"
    elif kind in ("image", "video", "audio", "document", "sticker"):
        if not body.get(kind, {}).get("id") and not body.get(kind, {}).get("link"):
            return f"Param {kind}['id'] is required"
    else:
        return f"Unsupported message type {kind!r}"
    return None


@contextlib.asynccontextmanager
async def graph_server() -> AsyncIterator[FakeGraph]:
    """The fake Graph API on a free loopback port."""
    fake = FakeGraph()
    app = Starlette(
        routes=[
            Route(f"/{VERSION}/{{node}}/messages", fake.messages, methods=["POST"]),
            Route(f"/{VERSION}/{{node}}/media", fake.upload, methods=["POST"]),
            Route(f"/{VERSION}/{{node}}/message_templates", fake.message_templates, methods=["GET"]),
            Route(f"/{VERSION}/{{node}}", fake.node, methods=["GET"]),
            Route("/whatsapp_business/attachments/", fake.download, methods=["GET"]),
        ]
    )
    async with serve(app) as url:
        fake.url = url
        yield fake


def sign(body: bytes, app_secret: str) -> str:
    """X-Hub-Signature-256 as Meta computes it (written out here, independently of the adapter's code)."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


async def post_signed(
    url: str, payload: dict[str, Any], app_secret: str, *, signature: str | None = None
) -> httpx.Response:
    """POST a notification the way Meta does: compact JSON, signed with the app secret (or `signature`)."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {"content-type": "application/json", "x-hub-signature-256": signature or sign(body, app_secret)}
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(url, content=body, headers=headers)
