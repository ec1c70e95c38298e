"""The OpenAPI 3.1 document, built from the `Api` route tables so it cannot drift from the routes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from inbox.http.routing import Api, Operation
from inbox.http.services import services
from inbox.read.queries import MAX_ID

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "detail": {"type": "string"}},
            "required": ["code", "detail"],
        }
    },
    "required": ["error"],
}

# A path id: what the `int` convertor matches (inbox.http.routing.IdConvertor); a larger number is a 404.
ID_SCHEMA: dict[str, Any] = {"type": "integer", "minimum": 0, "maximum": MAX_ID}

# Routes that are not in an `Api` table (channels, stream, infrastructure), described by hand.
EXTRA: list[dict[str, Any]] = [
    {"method": "get", "path": "/healthz", "summary": "Liveness check", "tag": "meta", "auth": "none"},
    {
        "method": "get",
        "path": "/readyz",
        "summary": "Readiness: database reachable, migrations at head, workers started (else 503 and why)",
        "tag": "meta",
        "auth": "none",
        "responses": {"503": {"description": "Not ready: the JSON says why"}},
    },
    {"method": "get", "path": "/metrics", "summary": "Prometheus metrics", "tag": "meta", "auth": "none"},
    {"method": "get", "path": "/api/v1/openapi.json", "summary": "This document", "tag": "meta", "auth": "none"},
    {
        "method": "get",
        "path": "/api/v1/stream",
        "summary": "Agent event stream (websocket upgrade); query `after=<event id>` resumes",
        "tag": "stream",
        "auth": "agent",
        "websocket": True,
    },
    {
        "method": "post",
        "path": "/api/v1/inboxes/{inbox_id}/incoming",
        "raw": "/api/v1/inboxes/{inbox_id:int}/incoming",
        "summary": "API channel: ingest a customer message (Bearer <inbox secret>)",
        "tag": "channels",
        "auth": "inbox-secret",
    },
]


def _parameters(path: str, operation: Operation | None, components: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": ID_SCHEMA if conv == "int" else {"type": "string"}}
        for name, conv in re.findall(r"{(\w+)(?::(\w+))?}", path)
    ]
    if operation is not None and operation.query is not None:
        schema = _schema(operation.query, components)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": name in required, "schema": _query_value(prop)})
    return params


def _query_value(prop: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema: never null (left out instead) and never empty (`parse_query` refuses `?q=`)."""
    prop = dict(prop)
    options = prop.pop("anyOf", None)
    if isinstance(options, list):
        kept = [option for option in options if option != {"type": "null"}]
        if len(kept) == 1:
            prop.update(kept[0])
        else:
            prop["anyOf"] = kept
    if prop.get("default") is None:
        prop.pop("default", None)
    if prop.get("type") == "string":
        prop["minLength"] = max(1, prop.get("minLength", 1))
    for option in prop.get("anyOf", []):
        if option.get("type") == "string":
            option["minLength"] = max(1, option.get("minLength", 1))
    return prop


def document(modules: list[Api], routes: Sequence[BaseRoute] = ()) -> dict[str, Any]:
    """The document for the `Api` tables, plus every other route of `routes` (channels, stream, pages …).

    Routes outside the tables are described from `EXTRA` when listed there, else from their endpoint's
    docstring, so a route added anywhere in the app shows up here without a second edit.
    """
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for module in modules:
        for op in module.operations:
            clean = _clean(op.path)
            entry: dict[str, Any] = {
                "summary": op.summary,
                "tags": [op.tag],
                "operationId": op.handler.__name__,
                "parameters": _parameters(op.path, op, components),
                "responses": {
                    str(op.status): _success(op, components),
                    "4XX": {
                        "description": "Client error",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                },
            }
            if op.auth == "none":
                entry["security"] = []
            if op.body is not None:
                entry["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": _component(op.body, components)}},
                }
            elif op.upload is not None:
                entry["requestBody"] = {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    op.upload: {
                                        "type": "string",
                                        "contentMediaType": "application/octet-stream",
                                        "minLength": 1,  # an empty file is refused
                                    }
                                },
                                "required": [op.upload],
                                "additionalProperties": False,
                            }
                        }
                    },
                }
            paths.setdefault(clean, {})[op.method.lower()] = entry
    for extra in EXTRA:
        paths.setdefault(extra["path"], {})[extra["method"]] = _extra_entry(extra)
    for found in _other_routes(routes):
        if found["method"] not in paths.get(found["path"], {}):
            paths.setdefault(found["path"], {})[found["method"]] = _extra_entry(found)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Switchboard API", "version": "1"},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "sb_session"},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
    }


def _clean(path: str) -> str:
    return re.sub(r"{(\w+):\w+}", r"{\1}", path)


def _component(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    """Register `model` (and the models it nests) under components; answer a `$ref` to it."""
    components[model.__name__] = _schema(model, components)
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    """`model`'s JSON schema, its nested definitions (enums, models) moved to components so every `$ref`
    in the document resolves from its root (pydantic's own `#/$defs/…` would point nowhere)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for sub_name, sub in schema.pop("$defs", {}).items():
        components[sub_name] = sub
    return schema


def _success(op: Operation, components: dict[str, Any]) -> dict[str, Any]:
    if op.response is None:
        return {"description": "Success"}
    return {
        "description": "Success",
        "content": {"application/json": {"schema": _component(op.response, components)}},
    }


def _extra_entry(extra: dict[str, Any]) -> dict[str, Any]:
    """A route outside the `Api` tables: pages, channel webhooks, the widget, websockets.

    Their bodies are HTML, text or a channel's own format, so only the status classes are promised; and they
    authenticate themselves (a session cookie with a redirect to the login page, a channel's secret, a
    widget key, a websocket's first frame), so the document claims none of the API's schemes for them.
    """
    websocket = extra.get("websocket", False)
    client_error = {"description": "Client error (a plain HTTP request to a websocket: 426 Upgrade Required)"}
    responses: dict[str, Any] = (
        {"101": {"description": "Switching to the websocket protocol"}, "4XX": client_error}
        if websocket
        else {
            "2XX": {"description": "Success"},
            "3XX": {"description": "Redirect (pages: to the login page)"},
            "4XX": {"description": "Client error"},
            **extra.get("responses", {}),
        }
    )
    return {
        "summary": extra["summary"],
        "tags": [extra["tag"]],
        "parameters": _parameters(extra.get("raw", extra["path"]), None, {}),
        "responses": responses,
        **({} if extra["auth"] in ("agent", "admin") and not websocket else {"security": []}),
    }


def _other_routes(routes: Sequence[BaseRoute], prefix: str = "") -> list[dict[str, Any]]:
    """Entries (method, path, summary, tag …) for every HTTP and websocket route, mounts included."""
    found: list[dict[str, Any]] = []
    for route in routes:
        if isinstance(route, Route):
            summary = _first_line(route.endpoint.__doc__) or f"{route.name} (see the README)"
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                found.append(_found(method.lower(), prefix + route.path, summary))
        elif isinstance(route, WebSocketRoute):
            summary = _first_line(route.endpoint.__doc__) or "see the README"
            found.append({**_found("get", prefix + route.path, f"Websocket: {summary}"), "websocket": True})
        elif isinstance(route, Mount):
            if route.routes:
                found += _other_routes(route.routes, prefix + route.path)
            else:
                found.append(
                    _found("get", _clean(prefix + route.path) + "/{path}", f"Files under {prefix + route.path}/")
                )
    return found


def _found(method: str, raw: str, summary: str) -> dict[str, Any]:
    path = _clean(raw)
    tag = "channels" if path.startswith(("/api/", "/channels/", "/widget")) else "pages"
    return {"method": method, "path": path, "raw": raw, "summary": summary, "tag": tag, "auth": "route"}


def _first_line(doc: str | None) -> str:
    return doc.strip().splitlines()[0].strip() if doc and doc.strip() else ""


async def endpoint(request: Request) -> Response:
    """This document."""
    return JSONResponse(document(services(request).api_modules, request.app.routes))
