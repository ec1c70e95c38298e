"""Pages of self-service answers: the public help center (`/help`: published articles by category, with
the widget's full-text search; `/help/sitemap.xml` for search engines), the public page of a published article
(the link agents put in replies) and the admin page for articles, proactive rules and their numbers.

Categories: an article belongs to one inbox or to every inbox (`Article.inbox_id`), so the help center groups
by that — one category per inbox, named after it, and "General" for articles of every inbox. `/help?inbox=N`
is one inbox's help center, in its name and widget colour (global articles included).

The admin page is a server-rendered shell like the other settings pages; its module
(`web/static/inbox/selfservice.js`) does the rest through the JSON API. Nothing is written here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from sqlmodel import col, or_, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from inbox.http.routing import optional_caller
from inbox.http.services import services
from inbox.i18n import long_date, supported, translate
from inbox.pages.base import HEADERS, page_locale, templates
from inbox.pages.settings import SECTIONS, shell_context
from inbox.selfserve.search import search
from inbox.store.models import Article, Inbox

PUBLIC_HEADERS = {**HEADERS, "Cache-Control": "public, max-age=60", "Vary": "Accept-Language, Cookie"}
DEFAULT_COLOR = "#2563eb"
COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_QUERY = 200
MAX_RESULTS = 50


@dataclass
class Category:
    """One heading of the help center: an inbox's articles, or the general ones (`inbox_id` None)."""

    name: str
    inbox_id: int | None
    articles: list[Article] = field(default_factory=list)


def _brand(inbox: Inbox | None) -> dict[str, str]:
    """The help center's name and accent colour: the inbox's own (its widget colour), else the defaults."""
    color = inbox.settings.get("color") if inbox is not None else None
    return {
        "name": inbox.name if inbox is not None else "",
        "color": color if isinstance(color, str) and COLOR.match(color) else DEFAULT_COLOR,
    }


def categorise(articles: list[Article], inboxes: dict[int, Inbox], general: str) -> list[Category]:
    """Articles grouped by inbox, the general ones first, then the inboxes by name; titles sorted inside each."""
    found: dict[int | None, Category] = {}
    for article in articles:
        owner = inboxes.get(article.inbox_id) if article.inbox_id is not None else None
        slot = article.inbox_id if owner is not None else None
        if slot not in found:
            found[slot] = Category(owner.name if owner is not None else general, slot)
        found[slot].articles.append(article)
    for category in found.values():
        category.articles.sort(key=lambda row: row.title.casefold())
    return sorted(found.values(), key=lambda c: (c.inbox_id is not None, c.name.casefold()))


async def help_index(request: Request) -> Response:
    """`/help`: published articles by category, or those matching `q` (the widget's full-text search)."""
    locale = page_locale(request)
    request.state.locale = locale
    q = (request.query_params.get("q") or "").strip()[:MAX_QUERY]
    raw_inbox = request.query_params.get("inbox") or ""
    inbox_id = int(raw_inbox) if raw_inbox.isdigit() and len(raw_inbox) < 10 else None
    async with services(request).store.session() as session:
        inboxes = {row.id: row for row in (await session.execute(select(Inbox))).scalars() if row.id is not None}
        inbox = inboxes.get(inbox_id) if inbox_id is not None else None
        where: list[Any] = [col(Article.published).is_(True)]
        if inbox is not None:
            where.append(or_(col(Article.inbox_id).is_(None), col(Article.inbox_id) == inbox.id))
        if q:
            results = await search(session, q, where=where, limit=MAX_RESULTS)
            articles: list[Article] = []
        else:
            results = []
            articles = list((await session.execute(select(Article).where(*where))).scalars())
    # The reader's language first; articles written only in another language are listed after them.
    own = [row for row in articles if row.locale in ("", locale)]
    other = [row for row in articles if row.locale not in ("", locale)]
    general = translate(locale, "helpc.general")
    context = {
        "q": q,
        "inbox_param": inbox.id if inbox is not None else None,
        "brand": _brand(inbox),
        "results": results,
        "categories": categorise(own, inboxes, general),
        "other_languages": categorise(other, inboxes, general),
        "searched": bool(q),
    }
    return templates.TemplateResponse(request, "help_index.html", context, headers=PUBLIC_HEADERS)


async def sitemap(request: Request) -> Response:
    """`/help/sitemap.xml`: the help center and every published article, with when each last changed."""
    base = services(request).config.server.base_url.rstrip("/")
    async with services(request).store.session() as session:
        rows = list(
            (
                await session.execute(
                    select(Article.id, Article.updated_at)
                    .where(col(Article.published).is_(True))
                    .order_by(col(Article.id))
                )
            ).all()
        )
    urls = [f"  <url><loc>{escape(base)}/help</loc></url>"]
    for article_id, updated in rows:
        urls.append(
            f"  <url><loc>{escape(base)}/help/articles/{article_id}</loc><lastmod>{updated.date().isoformat()}</lastmod></url>"
        )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n' + "\n".join(urls) + "\n</urlset>\n"
    )
    return Response(body, media_type="application/xml", headers={"Cache-Control": "public, max-age=300"})


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
    async with services(request).store.session() as session:
        inbox = await session.get(Inbox, row.inbox_id) if row.inbox_id is not None else None
    context = {
        "article": row,
        "updated": long_date(request.state.locale, row.updated_at.date()),
        "brand": _brand(inbox),
        "category": inbox.name if inbox is not None else translate(request.state.locale, "helpc.general"),
        "inbox_param": inbox.id if inbox is not None else None,
    }
    return templates.TemplateResponse(request, "help_article.html", context, headers=PUBLIC_HEADERS)


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
    Route("/help", help_index),
    Route("/help/sitemap.xml", sitemap),
    Route("/help/articles/{article_id:int}", public_article),
    Route("/settings/selfservice", admin_page),  # listed before the generic /settings/{section}
]
