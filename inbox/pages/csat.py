"""The public survey page `/csat/<token>`: the customer rates a resolved conversation (no login).

The signed token is the only authority (see `inbox.csat.survey`), so the page needs no session. GET shows the
question (`?rating=N` preselects an answer, for one-click links) and never writes; POST stores the answer,
from the page's form (urlencoded, answered with the page) or from the widget's rating card (JSON, answered
with JSON). Bad input re-renders the page with the reason; nothing is stored.
"""

from __future__ import annotations

import json as jsonlib
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from inbox.config import CsatConfig
from inbox.csat.survey import SCALE, Surveys, SurveyState
from inbox.errors import Conflict, InboxError, Invalid, NotFound
from inbox.http.routing import read_body
from inbox.http.services import services
from inbox.i18n import translate
from inbox.pages.base import HEADERS, page_locale, templates

BODY_LIMIT = 16_384
DEFAULT_QUESTION = CsatConfig().question
# What the survey module says, in English, → the catalogue key that says it in the page's language.
KNOWN: dict[str, str] = {
    "this survey has expired": "csat.expired",
    "this rating can no longer be changed": "csat.locked",
    "rating: must be a whole number from 1 to 5": "csat.bad_rating",
    "survey not found (the link is incomplete or was changed)": "csat.bad_link",
    "survey not found": "csat.not_found_text",
}


def _say(locale: str, text: str | None) -> str | None:
    """A sentence from the survey module in the page's language (a known one) or as it is, capitalised."""
    if not text:
        return text
    key = KNOWN.get(text.rstrip("."))
    if key is not None:
        return translate(locale, key)
    return f"{text[0].upper()}{text[1:]}" + ("" if text.endswith(".") else ".")


def _surveys(request: Request) -> Surveys:
    surveys: Surveys = services(request).surveys
    return surveys


def _page(
    request: Request,
    state: SurveyState | None,
    *,
    status: int = 200,
    error: str | None = None,
    saved: bool = False,
    chosen: int | None = None,
    comment: str | None = None,
) -> Response:
    locale = page_locale(request)
    question = state.question if state else DEFAULT_QUESTION
    context: dict[str, Any] = {
        "survey": state,
        "question": translate(locale, "csat.question") if question == DEFAULT_QUESTION else question,
        "closed_reason": _say(locale, state.closed_reason) if state else None,
        "scale": [(value, translate(locale, f"csat.word.{value}")) for value in SCALE],
        "chosen": chosen if chosen is not None else (state.rating if state else None),
        "comment": comment if comment is not None else (state.comment if state else ""),
        "error": _say(locale, error),
        "saved": saved,
    }
    return templates.TemplateResponse(request, "csat.html", context, status_code=status, headers=HEADERS)


def _rating(raw: str | None) -> int | None:
    return int(raw) if raw is not None and raw.strip().isdigit() else None


async def survey_page(request: Request) -> Response:
    token = request.path_params["token"]
    surveys = _surveys(request)
    try:
        state = await surveys.state(token)
    except NotFound as exc:
        return _page(request, None, status=404, error=exc.detail)
    if request.method == "GET":
        return _page(request, state, chosen=_rating(request.query_params.get("rating")))
    if "application/json" in request.headers.get("content-type", ""):
        return await _answer_json(request, surveys, token)
    try:
        raw = await read_body(request, BODY_LIMIT)
    except InboxError as exc:
        return _page(request, state, status=exc.status, error=exc.detail)
    fields = {name: values[0] for name, values in parse_qs(raw.decode("utf-8", "replace")).items()}
    chosen, comment = _rating(fields.get("rating")), fields.get("comment", "")
    try:
        answered = await surveys.respond(token, chosen, comment)
    except (Invalid, Conflict) as exc:
        return _page(request, state, status=exc.status, error=exc.detail, chosen=chosen, comment=comment)
    return _page(request, answered, saved=True)


async def _answer_json(request: Request, surveys: Surveys, token: str) -> Response:
    raw = await read_body(request, BODY_LIMIT)
    try:
        body = jsonlib.loads(raw or b"null")
    except ValueError as exc:
        raise Invalid(f"body: not valid JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise Invalid('body: expected {"rating": 1-5, "comment": "…"}')
    answered = await surveys.respond(token, body.get("rating"), body.get("comment", ""))
    return JSONResponse({"survey": answered.as_dict()}, headers={"Cache-Control": "no-store"})


routes: list[BaseRoute] = [Route("/csat/{token}", survey_page, methods=["GET", "POST"])]
