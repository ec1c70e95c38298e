"""HTTP API of self-service answers and proactive rules: every agent reads, admins write.

Agents see global articles and those of the inboxes they belong to; rules likewise per inbox. Writes are
reference data (no events): the widget reads them on its next request.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response

from inbox.clock import utcnow
from inbox.errors import Invalid, NotFound
from inbox.http.routing import Api, admin, caller, json, parse_body, parse_query
from inbox.http.schema import Body, Changes, Id, provided
from inbox.http.services import services
from inbox.read import access
from inbox.selfserve import content, search
from inbox.selfserve.store import article_view, rule_view, visible_to_agents
from inbox.store.models import Article, Inbox, ProactiveRule

api = Api()

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Markdown = Annotated[str, StringConstraints(min_length=1, max_length=50_000)]
Locale = Annotated[str, StringConstraints(pattern=r"^([a-z]{2,3})?$")]
Greeting = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Pattern = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
Seconds = Annotated[int, Field(ge=0, le=86_400)]
Times = Annotated[int, Field(ge=1, le=1000)]


class ArticleBody(Body):
    title: Title
    body: Markdown
    inbox_id: Id | None = None
    locale: Locale = ""
    published: bool = False


class ArticleUpdate(Changes):
    nullable = frozenset({"inbox_id"})

    title: Title | None = None
    body: Markdown | None = None
    inbox_id: Id | None = None
    locale: Locale | None = None
    published: bool | None = None


class ArticleQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    q: Annotated[str, StringConstraints(max_length=200)] = ""
    inbox_id: Id | None = None
    published: bool | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50


class RuleBody(Body):
    inbox_id: Id
    message: Greeting
    url_pattern: Pattern = ""
    min_seconds_on_page: Seconds = 0
    returning_only: bool = False
    agents_online_only: bool = False
    max_per_visitor: Times = 1
    enabled: bool = True


class RuleUpdate(Changes):
    message: Greeting | None = None
    url_pattern: Pattern | None = None
    min_seconds_on_page: Seconds | None = None
    returning_only: bool | None = None
    agents_online_only: bool | None = None
    max_per_visitor: Times | None = None
    enabled: bool | None = None


async def _inbox(session: AsyncSession, inbox_id: int, *, webchat: bool = False) -> Inbox:
    inbox = await session.get(Inbox, inbox_id)
    if inbox is None:
        raise Invalid(f"inbox_id: inbox {inbox_id} does not exist")
    if webchat and inbox.channel != "webchat":
        raise Invalid(f"inbox_id: inbox {inbox_id} is not a webchat inbox")
    return inbox


async def _article(request: Request, session: AsyncSession) -> Article:
    article_id: int = request.path_params["article_id"]
    row = await session.get(Article, article_id)
    agent = (await caller(request)).agent
    if row is None or (
        row.inbox_id is not None and not await access.may_see_inbox(services(request).store, agent, row.inbox_id)
    ):
        raise NotFound(f"article {article_id} not found")
    return row


# ── articles ────────────────────────────────────────────────────────────────────────────────
@api.route("GET", "/api/v1/articles", summary="List or search articles", tag="articles", query=ArticleQuery)
async def list_articles(request: Request) -> Response:
    agent = (await caller(request)).agent
    query = parse_query(request, ArticleQuery)
    where = visible_to_agents(await access.inbox_ids(services(request).store, agent))
    if query.inbox_id is not None:
        where.append((col(Article.inbox_id) == query.inbox_id) | col(Article.inbox_id).is_(None))
    if query.published is not None:
        where.append(col(Article.published).is_(query.published))
    async with services(request).store.session() as session:
        if query.q.strip():
            rows = await search.search(session, query.q, where=where, limit=query.limit)
        else:
            statement = select(Article).where(*where).order_by(col(Article.title), col(Article.id)).limit(query.limit)
            rows = list((await session.execute(statement)).scalars())
    return json({"items": [article_view(row, with_body=False) for row in rows]})


@api.route(
    "POST", "/api/v1/articles", summary="Create an article", tag="articles", body=ArticleBody, status=201, auth="admin"
)
async def create_article(request: Request) -> Response:
    await admin(request)
    body = await parse_body(request, ArticleBody)
    async with services(request).store.transaction() as tx:
        if body.inbox_id is not None:
            await _inbox(tx, body.inbox_id)
        row = Article(**body.model_dump(), html=content.render_markdown(body.body))
        tx.add(row)
        await tx.flush()
        view = article_view(row)
    return json(view, 201)


@api.route("GET", "/api/v1/articles/{article_id:int}", summary="Get an article", tag="articles")
async def get_article(request: Request) -> Response:
    async with services(request).store.session() as session:
        return json(article_view(await _article(request, session)))


@api.route(
    "PATCH",
    "/api/v1/articles/{article_id:int}",
    summary="Update an article",
    tag="articles",
    body=ArticleUpdate,
    auth="admin",
)
async def update_article(request: Request) -> Response:
    await admin(request)
    changes = provided(await parse_body(request, ArticleUpdate), nullable=frozenset({"inbox_id"}))
    async with services(request).store.transaction() as tx:
        row = await _article(request, tx)
        if changes.get("inbox_id") is not None:
            await _inbox(tx, changes["inbox_id"])
        for name, value in changes.items():
            setattr(row, name, value)
        if "body" in changes:
            row.html = content.render_markdown(row.body)
        row.updated_at = utcnow()
        await tx.flush()
        view = article_view(row)
    return json(view)


@api.route(
    "DELETE", "/api/v1/articles/{article_id:int}", summary="Delete an article", tag="articles", status=204, auth="admin"
)
async def delete_article(request: Request) -> Response:
    await admin(request)
    async with services(request).store.transaction() as tx:
        await tx.delete(await _article(request, tx))
    return Response(status_code=204)


# ── proactive rules ─────────────────────────────────────────────────────────────────────────
async def _rule(request: Request, session: AsyncSession) -> ProactiveRule:
    rule_id: int = request.path_params["rule_id"]
    row = await session.get(ProactiveRule, rule_id)
    agent = (await caller(request)).agent
    if row is None or not await access.may_see_inbox(services(request).store, agent, row.inbox_id):
        raise NotFound(f"proactive rule {rule_id} not found")
    return row


@api.route("GET", "/api/v1/proactive_rules", summary="List proactive message rules", tag="proactive")
async def list_rules(request: Request) -> Response:
    agent = (await caller(request)).agent
    visible = await access.inbox_ids(services(request).store, agent)
    statement = select(ProactiveRule).order_by(col(ProactiveRule.inbox_id), col(ProactiveRule.id))
    if visible is not None:
        statement = statement.where(col(ProactiveRule.inbox_id).in_(visible))
    async with services(request).store.session() as session:
        rows = list((await session.execute(statement)).scalars())
    return json({"items": [rule_view(row) for row in rows]})


@api.route(
    "POST",
    "/api/v1/proactive_rules",
    summary="Create a proactive message rule",
    tag="proactive",
    body=RuleBody,
    status=201,
    auth="admin",
)
async def create_rule(request: Request) -> Response:
    await admin(request)
    body = await parse_body(request, RuleBody)
    async with services(request).store.transaction() as tx:
        await _inbox(tx, body.inbox_id, webchat=True)
        row = ProactiveRule(**body.model_dump())
        tx.add(row)
        await tx.flush()
        view = rule_view(row)
    return json(view, 201)


@api.route("GET", "/api/v1/proactive_rules/{rule_id:int}", summary="Get a proactive message rule", tag="proactive")
async def get_rule(request: Request) -> Response:
    async with services(request).store.session() as session:
        return json(rule_view(await _rule(request, session)))


@api.route(
    "PATCH",
    "/api/v1/proactive_rules/{rule_id:int}",
    summary="Update a proactive message rule",
    tag="proactive",
    body=RuleUpdate,
    auth="admin",
)
async def update_rule(request: Request) -> Response:
    await admin(request)
    changes: dict[str, Any] = provided(await parse_body(request, RuleUpdate))
    async with services(request).store.transaction() as tx:
        row = await _rule(request, tx)
        for name, value in changes.items():
            setattr(row, name, value)
        await tx.flush()
        view = rule_view(row)
    return json(view)


@api.route(
    "DELETE",
    "/api/v1/proactive_rules/{rule_id:int}",
    summary="Delete a proactive message rule",
    tag="proactive",
    status=204,
    auth="admin",
)
async def delete_rule(request: Request) -> Response:
    await admin(request)
    async with services(request).store.transaction() as tx:
        await tx.delete(await _rule(request, tx))
    return Response(status_code=204)
