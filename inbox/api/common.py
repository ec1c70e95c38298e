"""Request models shared by the API modules: strict JSON bodies and query strings that refuse unknown keys."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.requests import Request

from inbox.errors import NotFound
from inbox.read.queries import MAX_ID


class Body(BaseModel):
    """A JSON body: unknown fields are refused and types are not coerced (`"5"` is not an id)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    def given(self) -> dict[str, Any]:
        """Only the fields the client sent (so `null` can mean "clear" and absent "leave alone")."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class Query(BaseModel):
    """Query parameters: unknown ones are refused; an empty value (`?status=`) counts as absent."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _drop_blank(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {name: value for name, value in data.items() if value != ""}
        return data


Id = Annotated[int, Field(ge=1, le=MAX_ID)]


def path_id(request: Request, name: str, noun: str) -> int:
    """An integer id from the path; one beyond any stored id is a plain 404."""
    value: int = request.path_params[name]
    if not 1 <= value <= MAX_ID:
        raise NotFound(f"{noun} {value} not found")
    return value
