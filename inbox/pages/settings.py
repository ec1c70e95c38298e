"""The admin settings pages: inboxes, agents, teams, labels, canned responses, channel health (with quarantine).

Server-rendered shells only, like the inbox page in `inbox.pages.base`: each page embeds the CSRF token and the
signed-in agent as JSON, and its plain ES module (`web/static/inbox/settings.js`) does the rest through the
admin JSON API. No data is written here.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from inbox.auth import Caller
from inbox.http.routing import optional_caller
from inbox.http.services import services
from inbox.i18n import translate
from inbox.pages.base import HEADERS, page_locale, templates
from inbox.read import views
from inbox.read.permissions import Action, allowed

# Section slug → (title, API collection) for the settings pages.
SECTIONS: dict[str, tuple[str, str]] = {
    "inboxes": ("Inboxes", "/api/v1/inboxes"),
    "agents": ("Agents", "/api/v1/agents"),
    "teams": ("Teams", "/api/v1/teams"),
    "labels": ("Labels", "/api/v1/labels"),
    "canned_responses": ("Canned responses", "/api/v1/canned_responses"),
    "business_hours": ("Business hours", "/api/v1/business_hours"),
    "sla_policies": ("SLA policies", "/api/v1/sla_policies"),
    "health": ("Channel health", "/api/v1/channels/status"),
    "selfservice": ("Self-service", "/api/v1/articles"),  # its own page: inbox.pages.selfserve
    "audit": ("Audit log", "/api/v1/audit"),  # its own page: inbox.pages.audit
}
# Sections with their own page (template and script) instead of the generic list-and-form one.
TEMPLATES: dict[str, str] = {
    "health": "settings_health.html",
    "business_hours": "settings_workflow.html",
    "sla_policies": "settings_workflow.html",
}


def shell_context(request: Request, who: Caller) -> dict[str, Any]:
    """What every signed-in page template needs: the CSRF token and the agent as boot JSON."""
    cookie = who.cookie or ""
    config = services(request).config
    return {
        "agent": who.agent,
        "csrf_token": services(request).sessions.csrf_token(cookie) if cookie else "",
        "boot": {**views.agent(who.agent), "base_url": config.server.base_url.rstrip("/")},
    }


def _login(request: Request) -> Response:
    return RedirectResponse("/login", status_code=303, headers={"Cache-Control": "no-store"})


async def settings_index(request: Request) -> Response:
    return RedirectResponse("/settings/inboxes", status_code=303)


async def settings_page(request: Request) -> Response:
    who = await optional_caller(request)
    if who is None:
        return _login(request)
    section = request.path_params["section"]
    if section not in SECTIONS:
        return Response(f"settings section {section!r} not found", status_code=404, media_type="text/plain")
    if not allowed(who.agent.role, Action.SETTINGS):
        return Response("settings need the admin role", status_code=403, media_type="text/plain")
    _, collection = SECTIONS[section]
    title = translate(page_locale(request), f"settings.section.{section}")
    context = {
        **shell_context(request, who),
        "section": section,
        "title": title,
        "collection": collection,
        "sections": SECTIONS,
    }
    template = TEMPLATES.get(section, "settings.html")
    return templates.TemplateResponse(request, template, context, headers=HEADERS)


routes: list[BaseRoute] = [
    Route("/settings", settings_index),
    Route("/settings/{section}", settings_page),
]
