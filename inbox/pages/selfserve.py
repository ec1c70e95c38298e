"""Pages of self-service answers: the public page of a published article (the link agents put in
replies) and the admin page for articles, proactive rules and their numbers.

The admin page is a server-rendered shell like the other settings pages; its module
(`web/static/inbox/selfservice.js`) does the rest through the JSON API. Nothing is written here.
"""

from __future__ import annotations

from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from inbox.http.routing import optional_caller
from inbox.http.services import services
from inbox.i18n import long_date, supported, translate
from inbox.pages.base import HEADERS, page_locale, templates
from inbox.pages.settings import SECTIONS, shell_context
from inbox.store.models import Article


async def public_article(request: Request) -> Response:
    """A published article as a page of its own; drafts are 404 like articles that do not exist."""
    article_id: int = request.path_params["article_id"]
    async with services(request).store.session() as session:
        row = (
            await session.execute(
                select(Article).where(col(Article.id) == article_id, col(Article.published).is_(True))
            )
        ).scalar_one_or_none()
    if row is None:
        return Response(f"article {article_id} not found", status_code=404, media_type="text/plain")
    # The article's own language when it has one; otherwise the reader's (their browser's).
    request.state.locale = supported(row.locale) or page_locale(request)
    headers = {**HEADERS, "Cache-Control": "public, max-age=60", "Vary": "Accept-Language, Cookie"}
    context = {"article": row, "updated": long_date(request.state.locale, row.updated_at.date())}
    return templates.TemplateResponse(request, "help_article.html", context, headers=headers)


async def admin_page(request: Request) -> Response:
    """Settings: self-service answers and proactive messages (admins)."""
    who = await optional_caller(request)
    if who is None:
        return RedirectResponse("/login", status_code=303, headers={"Cache-Control": "no-store"})
    if who.agent.role != "admin":
        return Response("settings need the admin role", status_code=403, media_type="text/plain")
    context = {
        **shell_context(request, who),
        "section": "selfservice",
        "title": translate(page_locale(request), "settings.section.selfservice"),
        "sections": SECTIONS,
    }
    return templates.TemplateResponse(request, "selfservice.html", context, headers=HEADERS)


routes: list[BaseRoute] = [
    Route("/help/articles/{article_id:int}", public_article),
    Route("/settings/selfservice", admin_page),  # listed before the generic /settings/{section}
]
