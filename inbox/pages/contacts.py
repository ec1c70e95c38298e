"""The contacts page `/contacts` (every signed-in agent; each sees the contacts of the inboxes they may see).

A server-rendered shell like the reports page: it embeds the CSRF token and the agent as boot JSON; the plain
ES module `web/static/inbox/contacts.js` searches, edits and merges through the contacts API
(`GET /api/v1/contacts?q=`, `PATCH /api/v1/contacts/{id}`, `POST /api/v1/contacts/{id}/merge`). No data is
read or written here.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from inbox.http.routing import optional_caller
from inbox.pages.base import HEADERS, templates
from inbox.pages.settings import shell_context


async def contacts_page(request: Request) -> Response:
    who = await optional_caller(request)
    if who is None or not who.via_cookie:
        return RedirectResponse("/login", status_code=303, headers={"Cache-Control": "no-store"})
    return templates.TemplateResponse(request, "contacts.html", shell_context(request, who), headers=HEADERS)


routes: list[BaseRoute] = [Route("/contacts", contacts_page)]
