"""The visitors' side of self-service answers and proactive messages: HTTP endpoints the widget calls.

Every request is authorised like a widget upload — `?key=<inbox public key>` and the welcome's upload token
as `Authorization: Bearer` — by the webchat channel (`gate`, wired in `inbox.app`), and rate-limited per
visitor and per address. Visitors only ever see published articles of their inbox (or global ones).

    GET  /widget/answers?key=&q=&locale=          search (or, without q, suggested articles)
    GET  /widget/answers/{id}?key=                one article (counted as a view)
    POST /widget/answers/{id}/feedback?key=       {"helpful": bool} — helpful counts as a deflection
    GET  /widget/proactive?key=&url=              the greetings that may show on this page for this visitor
    POST /widget/proactive/{id}/shown?key=        the widget showed it
    POST /widget/proactive/{id}/reply?key=        {"greeting_id"} — open the conversation with the greeting
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from pydantic import StringConstraints
from sqlalchemy import func, update
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from channels.base import Identity, InboxInfo
from inbox.errors import Conflict, InboxError, NotFound
from inbox.http.routing import error_body, parse_body
from inbox.http.schema import Body
from inbox.http.services import services
from inbox.selfserve import content, search
from inbox.selfserve.store import (
    Kind,
    public_article_view,
    public_rule_view,
    record,
    start_from_greeting,
    visible_to_visitors,
)
from inbox.store.models import Article, ProactiveRule, SelfServeEvent

Gate = Callable[[Request], Awaitable[tuple[InboxInfo, str, Identity] | Response]]
SUGGESTED = 5
RESULTS = 8


class Feedback(Body):
    helpful: bool


class Reply(Body):
    greeting_id: Annotated[str, StringConstraints(pattern=r"^[\w-]{1,64}$")]


class Limiter:
    """At most `rate` requests per `per` seconds for each key (a sliding window kept in memory)."""

    def __init__(self, rate: int, per: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.per, self.clock = rate, per, clock
        self._hits: dict[str, deque[float]] = {}

    def take(self, key: str) -> float | None:
        """None when allowed (and counted); otherwise the seconds to wait. A rate of 0 allows everything."""
        if self.rate <= 0:
            return None
        now = self.clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.per:
            hits.popleft()
        if len(hits) >= self.rate:
            return hits[0] + self.per - now
        hits.append(now)
        if len(self._hits) > 20_000:  # bound memory under a spray of keys: forget idle ones
            for stale in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.per]:
                del self._hits[stale]
        return None


def _error(status: int, code: str, detail: str, retry_after: float | None = None) -> JSONResponse:
    headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else None
    return JSONResponse(error_body(code, detail), status_code=status, headers=headers)


class WidgetAnswers:
    """The widget's self-service endpoints, authorised by `gate`."""

    def __init__(self, gate: Gate, *, per_visitor_per_minute: int = 60, per_ip_per_minute: int = 300) -> None:
        self.gate = gate
        self.visitor_limit = Limiter(per_visitor_per_minute, 60.0)
        self.ip_limit = Limiter(per_ip_per_minute, 60.0)
        self.routes: list[BaseRoute] = [
            Route("/widget/answers", self._guard(self.answers), methods=["GET"]),
            Route("/widget/answers/{article_id:int}", self._guard(self.article), methods=["GET"]),
            Route("/widget/answers/{article_id:int}/feedback", self._guard(self.feedback), methods=["POST"]),
            Route("/widget/proactive", self._guard(self.proactive), methods=["GET"]),
            Route("/widget/proactive/{rule_id:int}/shown", self._guard(self.shown), methods=["POST"]),
            Route("/widget/proactive/{rule_id:int}/reply", self._guard(self.reply), methods=["POST"]),
        ]

    def _guard(self, handler: Callable[[Request, InboxInfo, str, Identity], Awaitable[Response]]) -> Any:
        async def endpoint(request: Request) -> Response:
            allowed = await self.gate(request)
            if isinstance(allowed, Response):
                return allowed
            inbox, visitor, sender = allowed
            ip = request.client.host if request.client else ""
            retry = self.visitor_limit.take(f"{inbox.id}:{visitor}") or self.ip_limit.take(ip)
            if retry is not None:
                return _error(429, "rate_limited", "too many requests; wait a moment", retry)
            try:
                return await handler(request, inbox, visitor, sender)
            except InboxError as exc:
                return _error(exc.status, exc.code, exc.detail)

        endpoint.__doc__ = handler.__doc__  # the OpenAPI document's summary
        return endpoint

    # ── answers ─────────────────────────────────────────────────────────────────────────────
    async def answers(self, request: Request, inbox: InboxInfo, visitor: str, sender: Identity) -> Response:
        """Widget: search published articles (no `q`: the most viewed)."""
        query = request.query_params.get("q", "")[:200].strip()
        where = visible_to_visitors(inbox.id, content.language(request.query_params.get("locale")))
        store = services(request).store
        if not query:
            async with store.session() as session:
                statement = (
                    select(Article).where(*where).order_by(col(Article.views).desc(), col(Article.id)).limit(SUGGESTED)
                )
                rows = list((await session.execute(statement)).scalars())
            return JSONResponse({"query": "", "items": [public_article_view(row) for row in rows]})
        async with store.transaction() as tx:
            rows = await search.search(tx, query, where=where, limit=RESULTS)
            if request.query_params.get("count") != "0":  # suggestions while typing are not searches
                kind = Kind.SEARCH if rows else Kind.SEARCH_EMPTY
                await record(tx, kind, inbox.id, visitor, query=query.lower(), hits=len(rows))
        return JSONResponse({"query": query, "items": [public_article_view(row) for row in rows]})

    async def _published(self, request: Request, inbox: InboxInfo) -> Article:
        article_id: int = request.path_params["article_id"]
        async with services(request).store.session() as session:
            rows = await session.execute(
                select(Article).where(col(Article.id) == article_id, *visible_to_visitors(inbox.id, ""))
            )
            row: Article | None = rows.scalar_one_or_none()
        if row is None:
            raise NotFound(f"article {article_id} not found")
        return row

    async def article(self, request: Request, inbox: InboxInfo, visitor: str, sender: Identity) -> Response:
        """Widget: one published article (counted as a view)."""
        row = await self._published(request, inbox)
        async with services(request).store.transaction() as tx:
            await tx.execute(update(Article).where(col(Article.id) == row.id).values(views=Article.views + 1))
            await record(tx, Kind.VIEW, inbox.id, visitor, article_id=row.id)
        return JSONResponse(public_article_view(row))

    async def feedback(self, request: Request, inbox: InboxInfo, visitor: str, sender: Identity) -> Response:
        """Widget: whether an article answered the question (helpful counts as a deflection)."""
        row = await self._published(request, inbox)
        body = await parse_body(request, Feedback)
        async with services(request).store.transaction() as tx:
            kind = Kind.DEFLECTED if body.helpful else Kind.NOT_DEFLECTED
            await record(tx, kind, inbox.id, visitor, article_id=row.id)
        return JSONResponse({"recorded": kind})

    # ── proactive messages ──────────────────────────────────────────────────────────────────
    async def proactive(self, request: Request, inbox: InboxInfo, visitor: str, sender: Identity) -> Response:
        """Widget: the proactive greetings that may show on this page for this visitor."""
        url = request.query_params.get("url", "")[:2000]
        async with services(request).store.session() as session:
            rules = list(
                (
                    await session.execute(
                        select(ProactiveRule)
                        .where(col(ProactiveRule.inbox_id) == inbox.id, col(ProactiveRule.enabled).is_(True))
                        .order_by(col(ProactiveRule.id))
                    )
                ).scalars()
            )
            shown: dict[Any, Any] = dict(
                (
                    await session.execute(
                        select(SelfServeEvent.rule_id, func.count())
                        .where(
                            col(SelfServeEvent.inbox_id) == inbox.id,
                            col(SelfServeEvent.visitor) == visitor,
                            col(SelfServeEvent.kind) == Kind.PROACTIVE_SHOWN,
                        )
                        .group_by(col(SelfServeEvent.rule_id))
                    )
                ).all()
            )
        eligible = [
            rule
            for rule in rules
            if content.url_matches(rule.url_pattern, url) and shown.get(rule.id, 0) < rule.max_per_visitor
        ]
        online = await services(request).host.agents_online(inbox.id) if eligible else False
        return JSONResponse(
            {"agents_online": online, "items": [public_rule_view(rule) for rule in eligible]},
            headers={"Cache-Control": "no-store"},
        )

    async def _rule(self, request: Request, inbox: InboxInfo) -> ProactiveRule:
        rule_id: int = request.path_params["rule_id"]
        async with services(request).store.session() as session:
            rule: ProactiveRule | None = await session.get(ProactiveRule, rule_id)
        if rule is None or rule.inbox_id != inbox.id or not rule.enabled:
            raise NotFound(f"proactive rule {rule_id} not found")
        return rule

    async def shown(self, request: Request, inbox: InboxInfo, visitor: str, sender: Identity) -> Response:
        """Widget: a proactive greeting was shown."""
        rule = await self._rule(request, inbox)
        async with services(request).store.transaction() as tx:
            await record(tx, Kind.PROACTIVE_SHOWN, inbox.id, visitor, rule_id=rule.id)
        return JSONResponse({"recorded": Kind.PROACTIVE_SHOWN})

    async def reply(self, request: Request, inbox: InboxInfo, visitor: str, sender: Identity) -> Response:
        """Widget: the visitor answers a proactive greeting; opens the conversation with it."""
        rule = await self._rule(request, inbox)
        body = await parse_body(request, Reply)
        async with services(request).store.session() as session:
            shown = await session.execute(
                select(SelfServeEvent.id)
                .where(
                    col(SelfServeEvent.inbox_id) == inbox.id,
                    col(SelfServeEvent.visitor) == visitor,
                    col(SelfServeEvent.kind) == Kind.PROACTIVE_SHOWN,
                    col(SelfServeEvent.rule_id) == rule.id,
                )
                .limit(1)
            )
        if shown.first() is None:  # no conversations opened by greetings nobody was shown
            raise Conflict(f"proactive rule {rule.id} was not shown to this visitor")
        started = await start_from_greeting(
            services(request).service, rule, thread_key=visitor, sender=sender, greeting_id=body.greeting_id
        )
        return JSONResponse(
            {"conversation_id": started.conversation_id, "message_id": started.message_id},
            status_code=201 if started.created else 200,
        )
