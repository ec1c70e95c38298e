"""A small VK API server on loopback for the tests (the machines have no internet).

It speaks VK's wire protocol as the channel uses it: `POST /method/<name>` with form fields plus
`access_token` and `v`, answered HTTP 200 with `{"response": …}` or `{"error": {"error_code", "error_msg",
"request_params"}}`; `messages.send` delivers each `random_id` once per community and answers a repeat with
the message it already sent, as VK does; the upload chain (`photos.getMessagesUploadServer` → multipart POST
to `upload_url` → `photos.saveMessagesPhoto`, and the same for docs); `users.get`; `messages.setActivity`;
files under `/files/<path>` for inbound attachment downloads. Tests script failures per method with `fail(...)`,
and post Callback API events to the app under test with `post_event(...)`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
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

TOKEN = "vk1.a.community-token-for-tests"
GROUP_ID = 229000001
USERS = {555000111: ("Carol", "Customer"), 555000222: ("Dan", "Driver")}
ERROR_MESSAGES = {
    5: "User authorization failed: invalid access_token (4).",
    6: "Too many requests per second",
    7: "Permission to perform this action is denied",
    8: "Invalid request: v (version) is required",
    9: "Flood control",
    10: "Internal server error",
    15: "Access denied",
    29: "Rate limit reached",
    100: "One of the parameters specified was missing or invalid",
    901: "Can't send messages for users without permission",
    902: "Can't send messages to this user due to their privacy settings",
}


@dataclass
class Call:
    method: str
    params: dict[str, str]
    at: float
    error: int | None = None


@dataclass
class Sent:
    """A message VK accepted (a repeated `random_id` adds none)."""

    id: int
    peer_id: int
    random_id: int
    text: str
    attachment: str


@dataclass
class FakeVk:
    url: str = ""
    calls: list[Call] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    downloads: list[str] = field(default_factory=list)
    uploads: list[tuple[str, str, bytes]] = field(default_factory=list)  # (kind, filename, bytes)
    denied: set[int] = field(default_factory=set)  # peers that did not allow messages (error 901)
    failures: dict[str, list[list[int]]] = field(default_factory=dict)  # method → [[code, calls to let through]]
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))
    _by_random_id: dict[int, Sent] = field(default_factory=dict)
    _uploaded: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)  # upload token → (kind, name, data)
    _saved: set[str] = field(default_factory=set)  # attachment strings that exist

    @property
    def api_base_url(self) -> str:
        return f"{self.url}/method"

    @property
    def files_url(self) -> str:
        return f"{self.url}/files"

    # ── what tests do ──
    def fail(self, method: str, code: int, *, times: int = 1, after: int = 0) -> None:
        """`times` calls of `method` answer VK error `code`, once `after` more calls have gone through."""
        self.failures.setdefault(method, []).extend([[code, after]] + [[code, 0] for _ in range(times - 1)])

    def add_file(self, path: str, data: bytes) -> None:
        self.files[path] = data

    def called(self, method: str, *, ok: bool | None = None) -> list[Call]:
        return [c for c in self.calls if c.method == method and (ok is None or (c.error is None) == ok)]

    # ── the API ──
    async def method(self, request: Request) -> Response:
        name = request.path_params["name"]
        async with request.form() as form:
            params = {key: value for key, value in form.multi_items() if isinstance(value, str)}
        params.update({k: v for k, v in request.query_params.items() if k not in params})
        call = Call(name, params, time.monotonic())
        self.calls.append(call)
        code, answer = self._answer(name, params)
        call.error = code
        if code is not None:
            shown = [{"key": k, "value": v} for k, v in params.items() if k != "access_token"]
            return JSONResponse(
                {"error": {"error_code": code, "error_msg": ERROR_MESSAGES.get(code, "error"), "request_params": shown}}
            )
        return JSONResponse({"response": answer})

    def _answer(self, name: str, params: dict[str, str]) -> tuple[int | None, Any]:
        if not params.get("v"):
            return 8, None
        if params.get("access_token") != TOKEN:
            return 5, None
        queued = self.failures.get(name)
        if queued and queued[0][1] > 0:
            queued[0][1] -= 1
        elif queued:
            return queued.pop(0)[0], None
        if name == "messages.send":
            return self._send(params)
        if name == "users.get":
            users = []
            for raw in params.get("user_ids", "").split(","):
                if raw.strip().isdigit() and int(raw) in USERS:
                    first, last = USERS[int(raw)]
                    users.append({"id": int(raw), "first_name": first, "last_name": last, "can_access_closed": True})
            return None, users
        if name == "messages.setActivity":
            return None, 1
        if name in ("photos.getMessagesUploadServer", "docs.getMessagesUploadServer"):
            if not params.get("peer_id", "").lstrip("-").isdigit():
                return 100, None
            kind = "photo" if name.startswith("photos") else "doc"
            upload = f"{self.url}/upload/{kind}/{next(self._ids)}"
            if kind == "photo":
                return None, {"album_id": -3, "upload_url": upload, "user_id": 0, "group_id": GROUP_ID}
            return None, {"upload_url": upload}
        if name == "photos.saveMessagesPhoto":
            found = self._uploaded.get(params.get("photo", ""))
            if found is None or found[0] != "photo" or params.get("hash") != "h" + params.get("photo", "")[:8]:
                return 100, None
            photo = {"id": next(self._ids), "owner_id": -GROUP_ID, "access_key": "pk1", "album_id": -3, "sizes": []}
            self._saved.add(f"photo{photo['owner_id']}_{photo['id']}_pk1")
            return None, [photo]
        if name == "docs.save":
            found = self._uploaded.get(params.get("file", ""))
            if found is None or found[0] != "doc":
                return 100, None
            doc = {"id": next(self._ids), "owner_id": -GROUP_ID, "title": params.get("title") or found[1]}
            self._saved.add(f"doc{doc['owner_id']}_{doc['id']}")
            return None, {"type": "doc", "doc": doc}
        return 3, None  # unknown method

    def _send(self, params: dict[str, str]) -> tuple[int | None, Any]:
        peer, rid = params.get("peer_id", ""), params.get("random_id", "")
        if not peer.lstrip("-").isdigit() or not rid.lstrip("-").isdigit():
            return 100, None
        text, attachment = params.get("message", ""), params.get("attachment", "")
        if not text.strip() and not attachment:
            return 100, None
        if attachment and any(item not in self._saved for item in attachment.split(",")):
            return 100, None
        if len(text) > 4096:
            return 914, None
        if int(peer) in self.denied:
            return 901, None
        if int(rid) != 0 and int(rid) in self._by_random_id:  # VK: a random_id is delivered once
            return None, self._by_random_id[int(rid)].id
        sent = Sent(next(self._ids), int(peer), int(rid), text, attachment)
        self.sent.append(sent)
        if int(rid) != 0:
            self._by_random_id[int(rid)] = sent
        return None, sent.id

    async def upload(self, request: Request) -> Response:
        kind = request.path_params["kind"]
        field_name = "photo" if kind == "photo" else "file"
        async with request.form() as form:
            item = form.get(field_name)
            if not isinstance(item, UploadFile):
                return JSONResponse({"error": f"no {field_name} in the upload"})
            data = await item.read()
            filename = item.filename or ""
        token = f"{kind}-{next(self._ids)}-upload"
        self._uploaded[token] = (kind, filename, data)
        self.uploads.append((kind, filename, data))
        if kind == "photo":
            return JSONResponse({"server": 850123, "photo": token, "hash": "h" + token[:8]})
        return JSONResponse({"file": token})

    async def file(self, request: Request) -> Response:
        path = request.path_params["path"]
        if path not in self.files:
            return Response("not found", status_code=404)
        self.downloads.append(path)
        return Response(self.files[path], media_type="application/octet-stream")


async def post_event(url: str, event: dict[str, Any]) -> httpx.Response:
    """POST one Callback API event the way VK does (JSON body, no auth header: the secret is in the body)."""
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(url, content=json.dumps(event), headers={"content-type": "application/json"})


@contextlib.asynccontextmanager
async def vk_server() -> AsyncIterator[FakeVk]:
    """The fake VK API on a free loopback port."""
    fake = FakeVk()
    app = Starlette(
        routes=[
            Route("/method/{name}", fake.method, methods=["GET", "POST"]),
            Route("/upload/{kind}/{n:int}", fake.upload, methods=["POST"]),
            Route("/files/{path:path}", fake.file, methods=["GET"]),
        ]
    )
    async with serve(app) as url:
        fake.url = url
        yield fake
