"""HTTP plumbing shared by every route: the API route table (with its OpenAPI metadata), body and
query parsing with clear errors, the caller lookup with CSRF, and the one place errors become responses.
"""

from __future__ import annotations

import itertools
import json as jsonlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from inbox.auth import CSRF_HEADER, Caller
from inbox.errors import Forbidden, InboxError, Invalid, Throttled, TooLarge, Unauthorized
from inbox.http.schema import decimal_up_to
from inbox.http.services import services
from inbox.read.permissions import Action, allowed
from inbox.read.queries import MAX_ID
from inbox.store import audit

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[Request], Awaitable[Response]]
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def error_body(code: str, detail: str) -> dict[str, Any]:
    return {"error": {"code": code, "detail": detail}}


async def inbox_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InboxError)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Throttled) else None
    return JSONResponse(error_body(exc.code, exc.detail), status_code=exc.status, headers=headers)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else "request failed"
    if exc.status_code == 404:
        detail = _beyond_any_id(request.url.path) or detail
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
    if request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", ""):
        return JSONResponse(error_body(code, detail), status_code=exc.status_code, headers=exc.headers)
    return Response(detail, status_code=exc.status_code, media_type="text/plain", headers=exc.headers)


def _beyond_any_id(path: str) -> str | None:
    """`conversation 99999999999 not found` for a path that failed to match only because its id is beyond
    `MAX_ID` (the `int` convertor refuses it), so the 404 names the thing like any other unknown id."""
    parts = path.strip("/").split("/")
    for before, part in itertools.pairwise(parts):
        if part.isdigit() and (len(part) > len(str(MAX_ID)) or int(part) > MAX_ID):
            noun = before[:-2] if before.endswith("xes") else before.removesuffix("s")
            shown = part if len(part) <= 30 else part[:20] + "…"
            return f"{noun.replace('_', ' ')} {shown} not found"
    return None


def json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


async def read_body(request: Request, limit: int) -> bytes:
    """Read the request body, refusing more than `limit` bytes before buffering it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def parse_body(request: Request, model: type[M]) -> M:
    """A JSON body validated against `model`; errors name the offending field."""
    limit = services(request).config.server.max_body_bytes
    raw = await read_body(request, limit)
    if not raw.strip():
        raise Invalid("body: a JSON object is required")
    try:
        data = jsonlib.loads(raw, parse_float=_number)
    except ValueError as exc:
        raise BadJson(f"body: malformed JSON ({exc})") from exc
    return validate(model, data, "body")


def _number(text: str) -> int | float:
    """A JSON number with a fraction or exponent: `5.0` and `5e0` are the integer 5, as JSON Schema says
    (JSON has one number type), so a strict id field takes them; `5.5` stays a float and is refused there."""
    value = float(text)
    return int(value) if value.is_integer() else value


def parse_query(request: Request, model: type[M]) -> M:
    """Query parameters validated against `model`: unknown, repeated and empty parameters are refused.

    `?team_id=1&team_id=2` has no one meaning (which one wins depends on the framework), and `?inbox_id=`
    is a client bug rather than "no filter": both are a 422 naming the parameter, never a silent guess."""
    items = request.query_params.multi_items()
    names = [name for name, _ in items]
    for name in names:
        if names.count(name) > 1:
            raise Invalid(f"query.{name}: given more than once; give it once")
    for name, value in items:
        if value == "":
            raise Invalid(f"query.{name}: must not be empty; leave the parameter out instead")
    return validate(model, dict(items), "query")


def validate(model: type[M], data: Any, where: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        path = f"{where}.{location}" if location else where
        raise Invalid(f"{path}: {first['msg']}") from exc


class IdConvertor(Convertor[int]):
    """`{name:int}` in every route: only numbers a stored id can have (up to `MAX_ID`) match.

    A larger number is a 404 like any other unknown id, instead of an `OverflowError` (or a driver error on
    PostgreSQL's 32-bit ids) deep in a handler. It replaces Starlette's own `int` convertor for the whole
    process, so the routes of channels and pages (which write `{inbox_id:int}`) get it without an edit.
    """

    regex = decimal_up_to(MAX_ID)

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        if not 0 <= value <= MAX_ID:
            raise ValueError(f"{value} is not an id")
        return str(value)


register_url_convertor("int", IdConvertor())


class BadJson(Invalid):
    status = 400
    code = "malformed_json"


async def optional_caller(conn: HTTPConnection, db: AsyncSession | None = None) -> Caller | None:
    """The authenticated agent, if any (looked up once per request; a bad bearer token is a 401).

    `db`: a read session the handler holds anyway, to look the caller up in."""
    if "caller" not in conn.scope:
        conn.scope["caller"] = await services(conn).authenticator.caller(conn, db)
    found: Caller | None = conn.scope["caller"]
    return found


async def caller(request: Request, db: AsyncSession | None = None) -> Caller:
    """The authenticated agent; 401 when there is none, 403 for a cookie write without CSRF token."""
    found = await optional_caller(request, db)
    if found is None:
        raise Unauthorized("authentication required: log in or send 'Authorization: Bearer <token>'")
    if found.via_cookie and request.method in UNSAFE_METHODS:
        sessions = services(request).sessions
        if not sessions.csrf_ok(found.cookie or "", request.headers.get(CSRF_HEADER)):
            raise Forbidden(f"missing or wrong {CSRF_HEADER} header for a cookie-authenticated write")
    # The audit log of whatever this request writes names this agent and address (inbox.store.audit).
    audit.acting.set(audit.Actor(found.agent.id, found.agent.email, client_address(request)))
    return found


def client_address(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else ""


async def admin(request: Request) -> Caller:
    """The caller, who must be allowed to change settings (inbox.read.permissions); 403 otherwise."""
    return await permitted(request, Action.SETTINGS)


async def permitted(request: Request, action: Action) -> Caller:
    """The caller, who must be allowed `action` (one that touches no particular inbox); 403 otherwise."""
    found = await caller(request)
    if not allowed(found.agent.role, action):
        # Every action outside an inbox that some role lacks is an admin's (see the matrix).
        raise Forbidden("this action needs the admin role")
    return found


@dataclass(frozen=True, slots=True)
class Operation:
    """One API route and what the OpenAPI document says about it."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    status: int = 200
    auth: str = "agent"  # agent | admin | inbox-secret | none
    responses: dict[int, str] = field(default_factory=dict)
    response: type[BaseModel] | None = None  # the success body's shape, for the document
    upload: str | None = None  # multipart/form-data: the name of the file field


class Api:
    """A route table that keeps the OpenAPI metadata next to each handler."""

    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tag: str,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        status: int = 200,
        auth: str = "agent",
        response: type[BaseModel] | None = None,
        upload: str | None = None,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.operations.append(
                Operation(
                    method, path, handler, summary, tag, body, query, status, auth, response=response, upload=upload
                )
            )
            return handler

        return register

    def routes(self) -> list[Route]:
        by_path: dict[str, dict[str, Handler]] = {}
        for operation in self.operations:
            by_path.setdefault(operation.path, {})[operation.method] = operation.handler
        return [Route(path, _dispatch(handlers), methods=list(handlers)) for path, handlers in by_path.items()]


def _dispatch(handlers: dict[str, Handler]) -> Handler:
    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    return endpoint


def upgrade_required(routes: Sequence[BaseRoute]) -> list[Route]:
    """A plain HTTP route beside each websocket route: a GET without the upgrade is a 426 saying so, any
    other method a 405 (without it, both were a bare 404, as if the path did not exist)."""

    async def refuse(request: Request) -> Response:
        """Websocket only: upgrade the connection."""
        return JSONResponse(
            error_body("upgrade_required", f"{request.url.path} is a websocket: connect with an upgrade request"),
            status_code=426,
            headers={"Upgrade": "websocket", "Connection": "Upgrade"},
        )

    return [Route(route.path, refuse, methods=["GET"]) for route in routes if isinstance(route, WebSocketRoute)]
