"""The reports page `/reports` (every signed-in agent; admins see every inbox, agents their own).

A server-rendered shell like the settings pages: it embeds the CSRF token and the agent as boot JSON; the
plain ES module `web/static/inbox/reports.js` asks `GET /api/v1/reports/summary` for the chosen period and
draws it. No data is read or written here.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from inbox.http.routing import optional_caller
from inbox.pages.base import HEADERS, templates
from inbox.pages.settings import shell_context


async def reports_page(request: Request) -> Response:
    who = await optional_caller(request)
    if who is None or not who.via_cookie:
        return RedirectResponse("/login", status_code=303, headers={"Cache-Control": "no-store"})
    return templates.TemplateResponse(request, "reports.html", shell_context(request, who), headers=HEADERS)


routes: list[BaseRoute] = [Route("/reports", reports_page)]
