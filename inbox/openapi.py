"""The OpenAPI 3.1 document, built from the `Api` route tables so it cannot drift from the routes."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from inbox.http import Api, Operation

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

# Routes that are not in an `Api` table (channels, stream, infrastructure), described by hand.
EXTRA: list[dict[str, Any]] = [
    {"method": "get", "path": "/healthz", "summary": "Liveness check", "tag": "meta", "auth": "none"},
    {"method": "get", "path": "/metrics", "summary": "Prometheus metrics", "tag": "meta", "auth": "none"},
    {"method": "get", "path": "/api/v1/openapi.json", "summary": "This document", "tag": "meta", "auth": "none"},
    {
        "method": "get",
        "path": "/api/v1/stream",
        "summary": "Agent event stream (websocket upgrade); query `after=<event id>` resumes",
        "tag": "stream",
        "auth": "agent",
    },
    {
        "method": "post",
        "path": "/api/v1/inboxes/{inbox_id}/incoming",
        "summary": "API channel: ingest a customer message (Bearer <inbox secret>)",
        "tag": "channels",
        "auth": "inbox-secret",
    },
]


def _parameters(path: str, operation: Operation | None) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "integer" if conv == "int" else "string"}}
        for name, conv in re.findall(r"{(\w+)(?::(\w+))?}", path)
    ]
    if operation is not None and operation.query is not None:
        schema = operation.query.model_json_schema()
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    return params


def document(modules: list[Api]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for module in modules:
        for op in module.operations:
            clean = re.sub(r"{(\w+):\w+}", r"{\1}", op.path)
            entry: dict[str, Any] = {
                "summary": op.summary,
                "tags": [op.tag],
                "operationId": op.handler.__name__,
                "parameters": _parameters(op.path, op),
                "responses": {
                    str(op.status): {"description": "Success"},
                    "4XX": {
                        "description": "Client error",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                },
            }
            if op.auth == "none":
                entry["security"] = []
            if op.body is not None:
                name = op.body.__name__
                components[name] = op.body.model_json_schema(ref_template="#/components/schemas/{model}")
                for sub_name, sub in components[name].pop("$defs", {}).items():
                    components[sub_name] = sub
                entry["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
                }
            paths.setdefault(clean, {})[op.method.lower()] = entry
    for extra in EXTRA:
        paths.setdefault(extra["path"], {})[extra["method"]] = {
            "summary": extra["summary"],
            "tags": [extra["tag"]],
            "parameters": _parameters(extra["path"], None),
            "responses": {"200": {"description": "Success"}},
            **({"security": []} if extra["auth"] == "none" else {}),
        }
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


async def endpoint(request: Request) -> Response:
    return JSONResponse(document(request.app.state.api_modules))
