"""The customer portal's pages: `/portal` (sign in by emailed link, then the customer's conversations),
`/portal/link/<token>` (a button that spends the link), `/portal/c/<id>` (one thread: reply, answer a survey).

No agent session: a portal session is its own signed cookie (`sb_portal`, HttpOnly, SameSite=Lax) naming the
address the customer proved; its forms carry a token bound to it. The policy is `inbox.portal.customer`'s.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from inbox.auth import Sessions
from inbox.csat.survey import SCALE
from inbox.errors import Conflict, Invalid, NotFound, Throttled
from inbox.http.services import services
from inbox.i18n import translate
from inbox.pages.base import HEADERS, _form, _form_ok, _render, page_locale, templates
from inbox.portal.customer import LinkRefused, Portal
from inbox.store.models import Status

COOKIE = "sb_portal"


def _portal(request: Request) -> Portal:
    portal: Portal = services(request).portal
    return portal


def _address(request: Request) -> tuple[str | None, str | None]:
    """The signed-in address and its cookie, or (None, None)."""
    cookie = request.cookies.get(COOKIE)
    address = _portal(request).session_address(cookie)
    return (address, cookie) if address is not None else (None, None)


def _csrf(request: Request, cookie: str) -> str:
    sessions: Sessions = services(request).sessions
    return sessions.csrf_token("portal:" + cookie)


def _csrf_ok(request: Request, cookie: str, form: dict[str, str]) -> bool:
    sessions: Sessions = services(request).sessions
    return sessions.csrf_ok("portal:" + cookie, form.get("csrf_token"))


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    locale = page_locale(request)
    words = {
        "error": None,
        "statuses": {str(value): translate(locale, f"portal.status.{value}") for value in Status},
        "scale": [(value, translate(locale, f"csat.word.{value}")) for value in SCALE],
    }
    return templates.TemplateResponse(request, name, {**words, **context}, status_code=status, headers=HEADERS)


def _redirect(path: str) -> Response:
    return RedirectResponse(path, status_code=303, headers={"Cache-Control": "no-store"})


async def home(request: Request) -> Response:
    address, cookie = _address(request)
    if address is None or cookie is None:
        return _render(request, "portal_sign_in.html", {"sent": False, "email": ""})
    cards = await _portal(request).conversations(address, locale=page_locale(request))
    return _page(request, "portal.html", {"address": address, "cards": cards, "csrf_token": _csrf(request, cookie)})


async def ask_for_link(request: Request) -> Response:
    form = await _form(request)
    email = form.get("email", "")
    if not _form_ok(request, form):
        return _render(request, "portal_sign_in.html", {"sent": False, "email": email, "error": "form.expired"}, 400)
    ip = request.client.host if request.client else ""
    try:
        await _portal(request).request_link(email, ip=ip, locale=page_locale(request))
    except Invalid:
        return _render(
            request, "portal_sign_in.html", {"sent": False, "email": email, "error": "portal.error.email"}, 400
        )
    except Throttled:
        return _render(
            request, "portal_sign_in.html", {"sent": False, "email": email, "error": "portal.error.throttled"}, 429
        )
    # The same page whether or not the address is known.
    return _render(request, "portal_sign_in.html", {"sent": True, "email": ""})


async def link(request: Request) -> Response:
    token = request.path_params["token"]
    portal = _portal(request)
    try:
        if request.method == "GET":
            await portal.check_link(token)
            return _page(request, "portal_link.html", {"valid": True})
        session = await portal.sign_in(token)
    except LinkRefused:
        return _page(request, "portal_link.html", {"valid": False}, 410)
    response = _redirect("/portal")
    response.set_cookie(
        COOKIE,
        session,
        max_age=portal.session_seconds,
        httponly=True,
        samesite="lax",
        secure=services(request).config.server.secure_cookies,
        path="/portal",
    )
    return response


async def sign_out(request: Request) -> Response:
    _, cookie = _address(request)
    form = await _form(request)
    response = _redirect("/portal")
    if cookie is not None and _csrf_ok(request, cookie, form):
        response.delete_cookie(COOKIE, path="/portal")
    return response


async def conversation(request: Request) -> Response:
    address, cookie = _address(request)
    if address is None or cookie is None:
        return _redirect("/portal")
    conversation_id = int(request.path_params["conversation_id"])
    portal = _portal(request)
    error: str | None = None
    status = 200
    saved = False
    if request.method == "POST":
        form = await _form(request)
        try:
            if not _csrf_ok(request, cookie, form):
                raise Invalid("form expired")
            if form.get("action") == "survey":
                rating = form.get("rating", "")
                await portal.answer_survey(
                    address, conversation_id, int(rating) if rating.isdigit() else None, form.get("comment", "")
                )
                saved = True
            else:
                await portal.reply(
                    address, conversation_id, form.get("body", ""), client_id=form.get("client_id") or ""
                )
                return _redirect(f"/portal/c/{conversation_id}")
        except NotFound:
            return _page(request, "portal_missing.html", {}, 404)
        except (Invalid, Conflict) as exc:
            error, status = _error_key(exc.detail), exc.status
    try:
        thread = await portal.thread(address, conversation_id, locale=page_locale(request))
    except NotFound:
        return _page(request, "portal_missing.html", {}, 404)
    return _page(
        request,
        "portal_thread.html",
        {
            "thread": thread,
            "csrf_token": _csrf(request, cookie),
            "client_id": str(uuid.uuid4()),
            "error": error,
            "saved": saved,
        },
        status,
    )


def _error_key(detail: str) -> str:
    """The catalogue key of a refusal (the modules say it in English)."""
    if detail.startswith("body:"):
        return "portal.error.body"
    if detail.startswith("rating:"):
        return "portal.error.rating"
    if detail == "form expired":
        return "form.expired"
    return "portal.error.survey"


routes: list[BaseRoute] = [
    Route("/portal", home, methods=["GET"]),
    Route("/portal/sign-in", ask_for_link, methods=["POST"]),
    Route("/portal/sign-out", sign_out, methods=["POST"]),
    Route("/portal/link/{token}", link, methods=["GET", "POST"]),
    Route("/portal/c/{conversation_id:int}", conversation, methods=["GET", "POST"]),
]
