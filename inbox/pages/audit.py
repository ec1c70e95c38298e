"""The audit-log page `/settings/audit` (admins): filters by agent, action and period, newest first, with
an "Older entries" link (the same keyset cursor as `GET /api/v1/audit`). Server-rendered; reads only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from inbox.audit import log
from inbox.clock import parse_iso
from inbox.http.routing import optional_caller
from inbox.http.services import services
from inbox.pages.base import HEADERS, templates
from inbox.pages.settings import SECTIONS, shell_context
from inbox.read.permissions import Action, allowed
from inbox.store.models import Agent

PAGE_SIZE = 50


def _filters(request: Request) -> tuple[dict[str, str], log.AuditFilter, int | None]:
    """The form's values as given, the filter they mean (bad values are ignored), and the cursor."""
    raw = {
        name: request.query_params.get(name, "").strip()[:64] for name in ("actor", "action", "from", "to", "before")
    }
    start = end = None
    try:
        start = parse_iso(raw["from"]) if raw["from"] else None
        end = parse_iso(raw["to"]) + timedelta(days=1) if raw["to"] and len(raw["to"]) == 10 else None
        end = end or (parse_iso(raw["to"]) if raw["to"] else None)
    except ValueError:
        pass
    where = log.AuditFilter(
        actor_id=int(raw["actor"]) if raw["actor"].isdigit() else None,
        action=raw["action"] or None,
        start=start,
        end=end,
    )
    before = int(raw["before"]) if raw["before"].isdigit() else None
    return raw, where, before


async def audit_page(request: Request) -> Response:
    who = await optional_caller(request)
    if who is None or not who.via_cookie:
        return RedirectResponse("/login", status_code=303, headers={"Cache-Control": "no-store"})
    if not allowed(who.agent.role, Action.AUDIT):
        return Response("the audit log needs the admin role", status_code=403, media_type="text/plain")
    values, where, before = _filters(request)
    store = services(request).store
    items, last = await log.page(store, where, before_id=before, limit=PAGE_SIZE)
    async with store.session() as session:
        agents = list((await session.execute(select(Agent).order_by(col(Agent.name)))).scalars())
    older: dict[str, Any] | None = None
    if last is not None:
        older = {name: value for name, value in values.items() if value and name != "before"} | {"before": last}
    context = {
        **shell_context(request, who),
        "section": "audit",
        "title": "Audit log",
        "sections": SECTIONS,
        "items": items,
        "values": values,
        "agents": agents,
        "older": older,
    }
    return templates.TemplateResponse(request, "audit.html", context, headers=HEADERS)


routes: list[BaseRoute] = [Route("/settings/audit", audit_page)]
