"""Server-rendered pages (Jinja2): first-admin setup, login/logout and the agent inbox shell.

Forms are protected against cross-site posts before anyone is logged in, too: a random pre-session value
lives in an HttpOnly cookie and the form carries a token bound to it (HMAC with the server key). Logging in
is throttled per email and per client address; the error never says whether the email exists.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jinja2
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from inbox.admin.directory import MIN_PASSWORD_LENGTH, Directory, any_agent
from inbox.api.agents import agent_views, set_session_cookie
from inbox.audit import log as audit_log
from inbox.auth import SESSION_COOKIE, Caller, LoginThrottle, Sessions
from inbox.errors import Conflict, Invalid, Throttled, TooLarge
from inbox.http.routing import optional_caller, read_body
from inbox.http.services import services
from inbox.i18n import LANGUAGE_NAMES, browser_catalogue, negotiate, supported, translate

TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"
PRELOGIN_COOKIE = "sb_prelogin"
LANGUAGE_COOKIE = "sb_lang"
FORM_LIMIT = 16_384
BAD_LOGIN = "login.bad_password"
EXPIRED_FORM = "form.expired"


def page_locale(request: Request) -> str:
    """The language of a page: one a view chose (a customer page: the inbox's), else the agent's pick (a
    cookie), else the browser's `Accept-Language`, else English."""
    chosen = getattr(request.state, "locale", None) or supported(request.cookies.get(LANGUAGE_COOKIE))
    return chosen or negotiate(request.headers.get("accept-language"))


def _i18n_context(request: Request) -> dict[str, Any]:
    locale = page_locale(request)
    return {"locale": locale, "languages": LANGUAGE_NAMES, "i18n_js": browser_catalogue(locale)}


@jinja2.pass_context
def _translate(context: Any, key: str, /, count: int | None = None, **values: object) -> str:
    """`{{ _("login.title") }}` in a template: the key in the page's language."""
    return translate(context["locale"], key, count, **values)


templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    ),
    context_processors=[_i18n_context],
)
templates.env.globals["_"] = _translate
HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
}


def _sessions(request: Request) -> Sessions:
    sessions: Sessions = services(request).sessions
    return sessions


def _render(
    request: Request, name: str, context: dict[str, Any], status: int = 200, *, form_nonce: str | None = None
) -> Response:
    """Render a page; forms get a fresh pre-session token (and its cookie) unless one is passed."""
    nonce = form_nonce or request.cookies.get(PRELOGIN_COOKIE) or secrets.token_urlsafe(18)
    context = {"form_token": _sessions(request).csrf_token("form:" + nonce), "error": None, **context}
    response = templates.TemplateResponse(request, name, context, status_code=status, headers=HEADERS)
    if request.cookies.get(PRELOGIN_COOKIE) != nonce:
        response.set_cookie(
            PRELOGIN_COOKIE,
            nonce,
            httponly=True,
            samesite="lax",
            secure=services(request).config.server.secure_cookies,
            path="/",
        )
    return response


def _redirect(path: str) -> Response:
    return RedirectResponse(path, status_code=303, headers={"Cache-Control": "no-store"})


async def _form(request: Request) -> dict[str, str]:
    """A urlencoded form as `{name: first value}`; bounded in size."""
    raw = await read_body(request, FORM_LIMIT)
    fields = parse_qs(raw.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def _form_ok(request: Request, form: dict[str, str]) -> bool:
    nonce = request.cookies.get(PRELOGIN_COOKIE)
    return nonce is not None and _sessions(request).csrf_ok("form:" + nonce, form.get("form_token"))


async def _session_caller(request: Request) -> Caller | None:
    try:
        found = await optional_caller(request)
    except Exception:  # a bad bearer header on a page: treat as logged out
        return None
    return found if found is not None and found.via_cookie else None


# ── pages ───────────────────────────────────────────────────────────────────────────────────
async def index(request: Request) -> Response:
    store = services(request).store
    if not await any_agent(store):
        return _redirect("/setup")
    found = await _session_caller(request)
    if found is None:
        return _redirect("/login")
    assert found.cookie is not None
    [boot] = await agent_views(store, [found.agent], viewer=found.agent)
    return templates.TemplateResponse(
        request,
        "inbox.html",
        {"agent": found.agent, "boot": boot, "csrf_token": _sessions(request).csrf_token(found.cookie)},
        headers=HEADERS,
    )


async def setup(request: Request) -> Response:
    if await any_agent(services(request).store):
        if request.method == "POST":
            return Response("Not Found", status_code=404, media_type="text/plain")
        return _redirect("/")
    if request.method == "GET":
        return _render(request, "setup.html", {"values": {}, "min_length": MIN_PASSWORD_LENGTH})
    form = await _form(request)
    values = {"name": form.get("name", ""), "email": form.get("email", "")}
    context: dict[str, Any] = {"values": values, "min_length": MIN_PASSWORD_LENGTH}
    if not _form_ok(request, form):
        return _render(request, "setup.html", {**context, "error": _t(request, EXPIRED_FORM)}, 403)
    error = None
    if not values["name"].strip():
        error = _t(request, "setup.name_missing")
    elif form.get("password", "") != form.get("password_confirm", ""):
        error = _t(request, "setup.passwords_differ")
    if error is None:
        try:
            agent = await Directory(services(request).service).create_agent(
                email=values["email"],
                name=values["name"][:200],
                role="admin",
                password=form.get("password", ""),
                only_if_none=True,
            )
        except Invalid as exc:
            error = _sentence(exc.detail)
        except Conflict:
            return _redirect("/login")
    if error is not None:
        return _render(request, "setup.html", {**context, "error": error}, 422)
    response = _redirect("/")
    set_session_cookie(request, response, _sessions(request).issue(agent))
    response.delete_cookie(PRELOGIN_COOKIE, path="/")
    return response


async def login(request: Request) -> Response:
    state = services(request)
    if not await any_agent(state.store):
        return _redirect("/setup")
    if request.method == "GET":
        if await _session_caller(request) is not None:
            return _redirect("/")
        return _render(request, "login.html", {"email": ""})
    try:
        form = await _form(request)
    except TooLarge:
        return _render(request, "login.html", {"email": "", "error": _t(request, "form.too_large")}, 413)
    email = form.get("email", "").strip().lower()[:320]
    if not _form_ok(request, form):
        return _render(request, "login.html", {"email": email, "error": _t(request, EXPIRED_FORM)}, 403)
    throttle: LoginThrottle = state.throttle
    client = request.client.host if request.client else "unknown"
    keys = (f"email:{email}", f"ip:{client}")
    try:
        throttle.check(*keys)
    except Throttled as exc:
        message = _t(request, "login.throttled", count=exc.retry_after)
        response = _render(request, "login.html", {"email": email, "error": message}, 429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    agent = await state.authenticator.login(email, form.get("password", ""))
    await audit_log.sign_in(state.store, email=email, agent=agent, ip=client)
    if agent is None:
        throttle.failed(*keys)
        return _render(request, "login.html", {"email": email, "error": _t(request, BAD_LOGIN)}, 401)
    throttle.succeeded(keys[0])
    response = _redirect("/")
    set_session_cookie(request, response, _sessions(request).issue(agent))
    response.delete_cookie(PRELOGIN_COOKIE, path="/")
    return response


async def logout(request: Request) -> Response:
    """End the session (every session of this agent: the cookie is stateless, so its version is bumped)."""
    form = await _form(request)
    found = await _session_caller(request)
    if found is not None:
        assert found.cookie is not None and found.agent.id is not None
        if not _sessions(request).csrf_ok(found.cookie, form.get("csrf_token")):
            return Response("Forbidden: missing or wrong CSRF token", status_code=403, media_type="text/plain")
        await Directory(services(request).service).end_sessions(found.agent.id)
    response = _redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def language(request: Request) -> Response:
    """The agent's (or visitor's) language choice: kept in a cookie for a year, then back to the page.

    No CSRF token: the only effect is a display preference, and `next` may only name a path on this site.
    """
    form = await _form(request)
    target = form.get("next", "/")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        target = "/"
    response = _redirect(target)
    code = supported(form.get("lang"))
    if code is not None:
        response.set_cookie(
            LANGUAGE_COOKIE,
            code,
            max_age=365 * 86400,
            httponly=True,
            samesite="lax",
            secure=services(request).config.server.secure_cookies,
            path="/",
        )
    return response


def _t(request: Request, key: str, /, count: int | None = None, **values: object) -> str:
    return translate(page_locale(request), key, count, **values)


def _sentence(detail: str) -> str:
    """ "password: must be at least 10 characters" → "Password must be at least 10 characters."."""
    field, _, rest = detail.partition(": ")
    if not rest:
        return detail
    return f"{field.capitalize()} {rest}."


routes: list[BaseRoute] = [
    Route("/", index, methods=["GET"]),
    Route("/setup", setup, methods=["GET", "POST"]),
    Route("/login", login, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/language", language, methods=["POST"]),
]
