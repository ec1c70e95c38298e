"""The OpenAPI document served by the real app describes every route it serves, with schemas."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from inbox.http.openapi import document
from tests.servers.app import LiveServer


def served(routes: list[BaseRoute], prefix: str = "") -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every route the app answers, websockets as GET, mounts as `/prefix/{path}`."""
    found: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, Route):
            path = prefix + route.path_format
            found |= {(method.lower(), path) for method in (route.methods or {"GET"}) - {"HEAD"}}
        elif isinstance(route, WebSocketRoute):
            found.add(("get", prefix + route.path_format))
        elif isinstance(route, Mount):
            if route.routes:
                found |= served(list(route.routes), prefix + route.path)
            else:
                found.add(("get", prefix + route.path_format))  # "/static/{path}"
    return found


async def test_every_route_of_the_app_is_in_the_document(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get("/api/v1/openapi.json")
    assert response.status_code == 200
    paths: dict[str, dict[str, Any]] = response.json()["paths"]
    expected = served(list(server.app.routes))
    assert ("get", "/api/v1/stream") in expected  # websocket routes are part of the check
    assert ("post", "/api/v1/inboxes/{inbox_id}/incoming") in expected  # and channel routes
    missing = sorted(f"{method.upper()} {path}" for method, path in expected if method not in paths.get(path, {}))
    assert missing == []
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert operation["summary"], f"{method.upper()} {path} has no summary"
    assert "101" in paths["/api/v1/stream"]["get"]["responses"]


def test_a_route_added_outside_the_tables_is_documented_from_its_docstring() -> None:
    async def telegram_webhook(request: Any) -> Any:
        """Telegram: receive one update."""

    async def widget(ws: Any) -> None:
        """The widget's websocket."""

    doc = document(
        [],
        [
            Route("/channels/telegram/{inbox_id:int}", telegram_webhook, methods=["POST"]),
            WebSocketRoute("/widget/ws", widget),
        ],
    )
    assert doc["paths"]["/channels/telegram/{inbox_id}"]["post"]["summary"] == "Telegram: receive one update."
    assert doc["paths"]["/channels/telegram/{inbox_id}"]["post"]["parameters"][0]["schema"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": 2**31 - 1,
    }
    assert doc["paths"]["/widget/ws"]["get"]["summary"] == "Websocket: The widget's websocket."


async def test_api_operations_carry_query_body_and_response_schemas(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        doc = (await http.get("/api/v1/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    listing = doc["paths"]["/api/v1/conversations"]["get"]
    params = {param["name"]: param for param in listing["parameters"]}
    assert set(params) == {"status", "inbox_id", "assignee", "label", "team_id", "q", "cursor", "limit"}
    assert params["limit"]["schema"]["maximum"] == 100
    page = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert page == {"$ref": "#/components/schemas/ConversationPage"}
    assert "next_cursor" in schemas["ConversationPage"]["properties"]
    patch = doc["paths"]["/api/v1/conversations/{conversation_id}"]["patch"]
    assert patch["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ConversationPatch"
    }
    assert schemas["ConversationPatch"]["additionalProperties"] is False
    post = doc["paths"]["/api/v1/conversations/{conversation_id}/messages"]["post"]
    assert "201" in post["responses"] and schemas["NewMessage"]["properties"]["kind"]["enum"] == ["outgoing", "note"]
    upload = doc["paths"]["/api/v1/attachments"]["post"]["requestBody"]["content"]
    assert upload["multipart/form-data"]["schema"]["required"] == ["file"]
    for name in ("MessageOut", "ContactDetail", "AttachmentOut", "Error"):
        assert name in schemas
