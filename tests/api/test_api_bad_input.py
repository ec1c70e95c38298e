"""Bad input over real HTTP, on both databases: every case gets a clear 4xx JSON error that names the
problem, and nothing is written (row counts of every table a request could touch stay the same)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from inbox.auth import CSRF_HEADER, SESSION_COOKIE
from inbox.read.queries import encode_cursor
from inbox.store.models import Agent
from tests.api_world import MAX_BODY, World, row_counts


@dataclass
class Case:
    name: str
    method: str
    path: str  # {support} and {sales} are conversation ids
    status: int
    code: str
    detail: str
    who: str | None = "ann"
    kwargs: dict[str, Any] = field(default_factory=dict)


async def _oversized_stream() -> AsyncIterator[bytes]:
    yield b'{"body": "'
    for _ in range(MAX_BODY // 1024 + 2):
        yield b"x" * 1024
    yield b'"}'


MESSAGES = "/api/v1/conversations/{support}/messages"
CASES = [
    Case("malformed JSON", "POST", MESSAGES, 400, "malformed_json", "body: malformed JSON", kwargs={"content": b'{"body": "hi",'}),
    Case("empty body", "POST", MESSAGES, 422, "invalid", "body: a JSON object is required", kwargs={"content": b""}),
    Case("not an object", "POST", MESSAGES, 422, "invalid", "body: Input should be", kwargs={"json": ["hi"]}),
    Case("unknown field", "POST", MESSAGES, 422, "invalid", "body.colour: Extra inputs are not permitted",
         kwargs={"json": {"body": "hi", "colour": "red"}}),
    Case("wrongly typed body", "POST", MESSAGES, 422, "invalid", "body.body: Input should be a valid string",
         kwargs={"json": {"body": 5}}),
    Case("id as a string", "POST", MESSAGES, 422, "invalid", "body.attachment_ids.0: Input should be a valid integer",
         kwargs={"json": {"body": "hi", "attachment_ids": ["1"]}}),
    Case("wrongly typed patch", "PATCH", "/api/v1/conversations/{support}", 422, "invalid",
         "body.assignee_id: Input should be a valid integer", kwargs={"json": {"assignee_id": "2"}}),
    Case("bad timestamp", "PATCH", "/api/v1/conversations/{support}", 422, "invalid", "body.snoozed_until",
         kwargs={"json": {"snoozed_until": "next tuesday"}}),
    Case("oversized body", "POST", MESSAGES, 413, "too_large", f"request body is larger than {MAX_BODY} bytes",
         kwargs={"json": {"body": "x" * (MAX_BODY + 1)}}),
    Case("oversized chunked body", "POST", MESSAGES, 413, "too_large", f"request body is larger than {MAX_BODY} bytes",
         kwargs={"content": _oversized_stream, "headers": {"content-type": "application/json"}}),
    Case("missing token", "POST", MESSAGES, 401, "unauthorized", "authentication required", who=None,
         kwargs={"json": {"body": "hi"}}),
    Case("wrong token", "POST", MESSAGES, 401, "unauthorized", "invalid or revoked API token", who=None,
         kwargs={"json": {"body": "hi"}, "headers": {"Authorization": "Bearer sb_not-a-real-token"}}),
    Case("wrong scheme", "PATCH", "/api/v1/conversations/{support}", 401, "unauthorized", "expected 'Bearer <token>'",
         who=None, kwargs={"json": {"status": "resolved"}, "headers": {"Authorization": "Basic YW5uOnB3"}}),
    Case("another inbox's conversation", "POST", "/api/v1/conversations/{sales}/messages", 404, "not_found",
         "conversation {sales} not found", kwargs={"json": {"body": "hi"}}),
    Case("another inbox's conversation (patch)", "PATCH", "/api/v1/conversations/{sales}", 404, "not_found",
         "conversation {sales} not found", kwargs={"json": {"status": "resolved"}}),
    Case("invalid cursor", "GET", "/api/v1/conversations?cursor=%%%", 422, "invalid", "cursor: not a cursor"),
    Case("well-formed but wrong cursor", "GET", "/api/v1/conversations?cursor=" + encode_cursor(["yesterday", 3]), 422,
         "invalid", "cursor: not a cursor"),
    Case("contacts cursor", "GET", "/api/v1/contacts?cursor=" + encode_cursor([True]), 422, "invalid", "cursor: not a cursor"),
    Case("id beyond any stored id", "GET", "/api/v1/conversations/99999999999", 404, "not_found",
         "conversation 99999999999 not found"),
    Case("contact id beyond any stored id", "PATCH", "/api/v1/contacts/99999999999", 404, "not_found",
         "contact 99999999999 not found", kwargs={"json": {"name": "x"}}),
    Case("attachment id beyond any stored id", "GET", "/api/v1/attachments/99999999999", 404, "not_found",
         "attachment 99999999999 not found"),
    Case("retry id beyond any stored id", "POST", "/api/v1/messages/99999999999/retry", 404, "not_found",
         "message 99999999999 not found"),
    Case("huge id in a body", "PATCH", "/api/v1/conversations/{support}", 422, "invalid",
         "body.assignee_id: Input should be less than or equal to 2147483647", kwargs={"json": {"assignee_id": 2**40}}),
    Case("huge id in a query", "GET", "/api/v1/conversations?assignee=99999999999", 422, "invalid", "query.assignee"),
    Case("huge before", "GET", "/api/v1/conversations/{support}/messages?before=99999999999", 422, "invalid",
         "query.before"),
    Case("huge id in a cursor", "GET", "/api/v1/contacts?cursor=" + encode_cursor([2**40]), 422, "invalid",
         "cursor: not a cursor"),
    Case("unknown query parameter", "GET", "/api/v1/conversations?stauts=open", 422, "invalid",
         "query.stauts: Extra inputs are not permitted"),
]  # fmt: skip


async def test_bad_input_gets_a_clear_error_and_writes_nothing(world: World) -> None:
    support = await world.deliver("support", "1")
    sales = await world.deliver("sales", "2", sender="other")
    ids = {"support": support.conversation_id, "sales": sales.conversation_id}
    for case in CASES:
        before = await row_counts(world.store)
        kwargs = dict(case.kwargs)
        if callable(kwargs.get("content")):
            kwargs["content"] = kwargs["content"]()
        async with world.client(case.who) as http:
            response = await http.request(case.method, case.path.format(**ids), **kwargs)
        assert response.status_code == case.status, (case.name, response.text)
        assert response.headers["content-type"] == "application/json", case.name
        error = response.json()["error"]
        assert error["code"] == case.code, (case.name, error)
        assert case.detail.format(**ids) in error["detail"], (case.name, error)
        assert await row_counts(world.store) == before, case.name


async def test_cookie_writes_need_the_csrf_header(world: World) -> None:
    delivered = await world.deliver("support", "1")
    async with world.store.session() as session:
        ann = await session.get(Agent, world.ann_id)
    assert ann is not None
    sessions = world.server.state.sessions
    cookie = sessions.issue(ann)
    url = f"/api/v1/conversations/{delivered.conversation_id}/messages"
    async with world.client() as http:
        http.cookies.set(SESSION_COOKIE, cookie)
        assert (await http.get(url)).status_code == 200  # reads need no CSRF token
        before = await row_counts(world.store)
        for headers in ({}, {CSRF_HEADER: "forged"}, {CSRF_HEADER: sessions.csrf_token(cookie + "x")}):
            refused = await http.post(url, json={"body": "hi"}, headers=headers)
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"] == {
                "code": "forbidden",
                "detail": f"missing or wrong {CSRF_HEADER} header for a cookie-authenticated write",
            }
        assert await row_counts(world.store) == before
        accepted = await http.post(url, json={"body": "hi"}, headers={CSRF_HEADER: sessions.csrf_token(cookie)})
        assert accepted.status_code == 201, accepted.text
        http.cookies.set(SESSION_COOKIE, cookie + "tampered")
        assert (await http.get(url)).status_code == 401
