"""Full-text search over articles: SQLite FTS5 (bm25) or PostgreSQL `tsvector` (ts_rank), same answers.

Both indexes are made by the `selfserve_1` migration. Callers give the visibility filter; this module only
ranks. A query with no usable words answers nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from inbox.models import Article
from inbox.selfserve import content


async def ranked_ids(session: AsyncSession, query: str, *, limit: int) -> list[int]:
    """Ids of articles matching any word of `query` (as a prefix), best first; at most `limit * 5`."""
    words = content.terms(query)
    if not words:
        return []
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        sql = text(
            "SELECT id FROM article WHERE search @@ to_tsquery('simple', :q) "
            "ORDER BY ts_rank(search, to_tsquery('simple', :q)) DESC, id LIMIT :n"
        )
        params: dict[str, Any] = {"q": content.tsquery(words), "n": limit * 5}
    else:
        sql = text(
            "SELECT rowid FROM article_fts WHERE article_fts MATCH :q "
            "ORDER BY bm25(article_fts, 5.0, 1.0), rowid LIMIT :n"
        )
        params = {"q": content.fts5_query(words), "n": limit * 5}
    return [int(row[0]) for row in (await session.execute(sql, params)).all()]


async def search(session: AsyncSession, query: str, *, where: Sequence[Any], limit: int) -> list[Article]:
    """Articles matching `query` that also satisfy `where`, best first, at most `limit`."""
    ids = await ranked_ids(session, query, limit=limit)
    if not ids:
        return []
    rows = (await session.execute(select(Article).where(col(Article.id).in_(ids), *where))).scalars()
    by_id = {row.id: row for row in rows}
    return [by_id[article_id] for article_id in ids if article_id in by_id][:limit]
