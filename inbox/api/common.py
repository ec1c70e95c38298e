"""Request models shared by the API modules: strict JSON bodies and query strings that refuse unknown keys."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request

from inbox.errors import NotFound
from inbox.http.schema import Body as Body
from inbox.http.schema import Changes as Changes
from inbox.http.schema import Id as Id
from inbox.read.queries import MAX_ID


class Query(BaseModel):
    """Query parameters: unknown ones are refused (repeated and empty ones by `parse_query`)."""

    model_config = ConfigDict(extra="forbid")


def path_id(request: Request, name: str, noun: str) -> int:
    """An integer id from the path; one beyond any stored id is a plain 404."""
    value: int = request.path_params[name]
    if not 1 <= value <= MAX_ID:
        raise NotFound(f"{noun} {value} not found")
    return value
