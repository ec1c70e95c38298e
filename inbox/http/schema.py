"""Shared pieces of the admin API's request bodies: strict models that refuse unknown fields, and the
partial-update helper that tells "left out" from "set to null"."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints

from inbox.errors import Invalid

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Email = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=320)]
Password = Annotated[str, StringConstraints(max_length=1024)]


class Body(BaseModel):
    """A JSON body: unknown fields and loose types (\"1\" for 1) are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


def provided(body: BaseModel, *, nullable: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The fields the client sent; null is refused where the field cannot be empty."""
    data: dict[str, Any] = {}
    for name in sorted(body.model_fields_set):
        value = getattr(body, name)
        if value is None and name not in nullable:
            raise Invalid(f"body.{name}: must not be null")
        data[name] = value
    if not data:
        raise Invalid("body: nothing to change")
    return data
