"""Server-rendered pages (Jinja2): setup, login/logout and the agent inbox shell."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
