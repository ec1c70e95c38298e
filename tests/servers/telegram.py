"""A small Bot API server on loopback for the tests (the machines have no internet).

It speaks the real wire protocol as python-telegram-bot uses it: `POST /bot<TOKEN>/<method>` with
form-encoded or multipart bodies whose non-string fields are JSON-encoded, answers wrapped as
`{"ok": true, "result": …}`, errors as `{"ok": false, "error_code", "description", "parameters"}`, long-polled
`getUpdates` with offset confirmation, files under `/file/bot<TOKEN>/<path>`, and webhook pushes with the
`X-Telegram-Bot-Api-Secret-Token` header. Tests script failures per method with `fail(...)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.servers.app import free_port

TOKEN = "123456:TEST-token-abc"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Support", "username": "support_test_bot"}
# Parameters that stay strings even when they look like JSON (a text "42" is not the number 42).
STRING_FIELDS = {"text", "caption", "secret_token", "url", "file_id", "action", "parse_mode", "filename"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float
    status: int = 200


@dataclass
class Failure:
    code: int
    description: str
    retry_after: int | None = None


@dataclass
class FakeTelegram:
    url: str = ""
    updates: list[dict[str, Any]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    downloads: list[str] = field(default_factory=list)
    webhook: dict[str, Any] | None = None
    blocked: set[int] = field(default_factory=set)
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    closed: bool = False
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    @property
    def api_base_url(self) -> str:
        return f"{self.url}/bot"

    @property
    def file_base_url(self) -> str:
        return f"{self.url}/file/bot"

    # ── what tests do ──
    def fail(self, method: str, code: int, description: str, *, retry_after: int | None = None, times: int = 1) -> None:
        self.failures.setdefault(method, []).extend([Failure(code, description, retry_after)] * times)

    def add_file(self, file_id: str, data: bytes, file_path: str) -> None:
        self.files[file_id] = (file_path, data)

    async def enqueue(self, update: dict[str, Any]) -> None:
        """Make an update available to getUpdates (polling mode)."""
        async with self.changed:
            self.updates.append(update)
            self.changed.notify_all()

    async def push(self, update: dict[str, Any], *, secret: str | None = None) -> httpx.Response:
        """Deliver an update to the registered webhook the way Telegram does."""
        assert self.webhook is not None, "no webhook registered"
        headers = {"content-type": "application/json"}
        token = self.webhook.get("secret_token") if secret is None else secret
        if token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = token
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.post(self.webhook["url"], content=json.dumps(update), headers=headers)

    def called(self, method: str, *, ok: bool | None = None) -> list[Call]:
        return [c for c in self.calls if c.method == method and (ok is None or (c.status == 200) == ok)]

    # ── the API ──
    async def api(self, request: Request) -> Response:
        if request.path_params["token"] != TOKEN:
            return _error(401, "Unauthorized")
        method = request.path_params["method"]
        params = await _params(request)
        call = Call(method, params, time.monotonic())
        self.calls.append(call)
        response = await self._answer(method, params)
        call.status = response.status_code
        return response

    async def _answer(self, method: str, params: dict[str, Any]) -> Response:
        queued = self.failures.get(method)
        if queued:
            failure = queued.pop(0)
            return _error(failure.code, failure.description, failure.retry_after)
        if method == "getUpdates":
            return await self._get_updates(params)
        if method == "getMe":
            return _ok(BOT_USER)
        if method == "setWebhook":
            self.webhook = {"url": params["url"], "secret_token": params.get("secret_token"), **params}
            return _ok(True)
        if method == "deleteWebhook":
            self.webhook = None
            if params.get("drop_pending_updates"):
                self.updates.clear()
            return _ok(True)
        if method == "getFile":
            found = self.files.get(str(params.get("file_id")))
            if found is None:
                return _error(400, "Bad Request: invalid file_id")
            path, data = found
            return _ok(
                {
                    "file_id": params["file_id"],
                    "file_unique_id": f"u-{params['file_id']}",
                    "file_size": len(data),
                    "file_path": path,
                }
            )
        if method in ("sendMessage", "sendPhoto", "sendDocument", "sendChatAction"):
            chat_id = int(params["chat_id"])
            if chat_id in self.blocked:
                return _error(403, "Forbidden: bot was blocked by the user")
            if method == "sendChatAction":
                return _ok(True)
            if method == "sendMessage":
                text = params.get("text", "")
                if not str(text).strip():
                    return _error(400, "Bad Request: message text is empty")
                if len(str(text).encode("utf-16-le")) // 2 > 4096:
                    return _error(400, "Bad Request: message is too long")
            return _ok(self._message(method, chat_id, params))
        return _error(404, "Not Found: method not found")

    def _message(self, method: str, chat_id: int, params: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
            "from": BOT_USER,
        }
        if method == "sendMessage":
            message["text"] = params["text"]
            if params.get("entities"):
                message["entities"] = params["entities"]
        elif method == "sendPhoto":
            data = params["photo"]
            message["photo"] = [
                {"file_id": "sent-photo", "file_unique_id": "sp", "width": 1, "height": 1, "file_size": len(data)}
            ]
        else:
            data = params["document"]
            message["document"] = {
                "file_id": "sent-doc",
                "file_unique_id": "sd",
                "file_name": params.get("_filename"),
                "file_size": len(data),
            }
        return message

    async def _get_updates(self, params: dict[str, Any]) -> Response:
        if self.webhook is not None:
            return _error(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        async with self.changed:
            if offset:
                # Like Telegram: asking from `offset` confirms every update before it.
                self.updates[:] = [u for u in self.updates if u["update_id"] >= offset]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait_for(lambda: bool(self.updates) or self.closed), timeout)
            return _ok(self.updates[:limit])

    async def file(self, request: Request) -> Response:
        if request.path_params["token"] != TOKEN:
            return _error(401, "Unauthorized")
        path = request.path_params["path"]
        for file_path, data in self.files.values():
            if file_path == path:
                self.downloads.append(path)
                return Response(data, media_type="application/octet-stream")
        return _error(404, "Not Found")


def _ok(result: Any) -> JSONResponse:
    return JSONResponse({"ok": True, "result": result})


def _error(code: int, description: str, retry_after: int | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return JSONResponse(body, status_code=code)


async def _params(request: Request) -> dict[str, Any]:
    """Query string, form (urlencoded or multipart) or JSON body; non-string fields are JSON-decoded."""
    params: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        params.update(await request.json())
        return params
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        async with request.form() as form:
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    params[name] = await value.read()
                    params[f"_{name}_filename"] = value.filename
                    params["_filename"] = value.filename
                else:
                    params[name] = value
    for name, value in list(params.items()):
        if isinstance(value, str) and name not in STRING_FIELDS:
            with contextlib.suppress(ValueError):
                params[name] = json.loads(value)
    # Multipart uploads name the file by reference: `photo=attach://<name>` points at another part.
    for name, value in list(params.items()):
        if isinstance(value, str) and value.startswith("attach://"):
            params[name] = params.get(value.removeprefix("attach://"), b"")
            params["_filename"] = params.get(f"_{value.removeprefix('attach://')}_filename")
    return params


@contextlib.asynccontextmanager
async def telegram_server() -> AsyncIterator[FakeTelegram]:
    """The fake Bot API under uvicorn on a free loopback port, inside the running loop."""
    fake = FakeTelegram()
    app = Starlette(
        routes=[
            Route("/bot{token}/{method}", fake.api, methods=["GET", "POST"]),
            Route("/file/bot{token}/{path:path}", fake.file, methods=["GET"]),
        ]
    )
    port = free_port()
    fake.url = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield fake
    finally:
        async with fake.changed:
            fake.closed = True  # end pending long polls now rather than at their timeout
            fake.changed.notify_all()
        server.should_exit = True
        await task
