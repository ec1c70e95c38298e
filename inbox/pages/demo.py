"""`GET /demo` (development mode only): a page that embeds the chat widget of the first webchat inbox.

Creates a "Website" webchat inbox when there is none, so `make run` shows the customer side next to the
agent inbox. Registered by `inbox.app` only when `server.development` is true.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from inbox.http.services import services
from inbox.store.engine import Store
from inbox.store.models import Inbox

WEBCHAT = "webchat"
TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"


async def first_webchat_inbox(store: Store) -> Inbox:
    """The oldest webchat inbox, created with default widget settings when there is none."""
    async with store.session() as session:
        found = (
            await session.execute(select(Inbox).where(col(Inbox.channel) == WEBCHAT).order_by(col(Inbox.id)).limit(1))
        ).scalar_one_or_none()
    if found is not None:
        return found
    async with store.transaction() as tx:
        inbox = Inbox(
            name="Website",
            channel=WEBCHAT,
            settings={"greeting": "", "prechat": "optional", "reply_time": "hours"},
            public_key=secrets.token_urlsafe(16),
            secret=secrets.token_urlsafe(32),
        )
        tx.add(inbox)
    return inbox


async def demo_page(request: Request) -> Response:
    inbox = await first_webchat_inbox(services(request).store)
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape())
    page = environment.get_template("demo.html").render(
        inbox=inbox, base=services(request).config.server.base_url, locale=request.query_params.get("locale", "")
    )
    return HTMLResponse(page)


routes: list[BaseRoute] = [Route("/demo", demo_page, methods=["GET"])]
