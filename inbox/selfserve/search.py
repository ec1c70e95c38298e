"""Full-text search over articles: SQLite FTS5 (bm25) or PostgreSQL `tsvector` (ts_rank), same answers.

Both indexes are made by the `selfserve_1` migration. The caller's visibility filter (`where`) goes into
the same query, so ranking never hides a visible match behind invisible ones. A query with no usable words
answers nothing; the words are passed as a bound parameter, never spliced into SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import column, table, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox.selfserve import content
from inbox.store.models import Article

_FTS = table("article_fts", column("rowid"))


async def search(session: AsyncSession, query: str, *, where: Sequence[Any], limit: int) -> list[Article]:
    """Articles matching any word of `query` (as a prefix) that also satisfy `where`, best first."""
    words = content.terms(query)
    if not words:
        return []
    if session.get_bind().dialect.name == "postgresql":
        statement = (
            select(Article)
            .where(text("article.search @@ to_tsquery('simple', :q)"), *where)
            .order_by(text("ts_rank(article.search, to_tsquery('simple', :q)) DESC"), col(Article.id))
            .params(q=content.tsquery(words))
        )
    else:
        statement = (
            select(Article)
            .join(_FTS, _FTS.c.rowid == col(Article.id))
            .where(text("article_fts MATCH :q"), *where)
            .order_by(text("bm25(article_fts, 5.0, 1.0)"), col(Article.id))
            .params(q=content.fts5_query(words))
        )
    return list((await session.execute(statement.limit(limit))).scalars())
