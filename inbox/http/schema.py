"""Shared pieces of the admin API's request bodies: strict models that refuse unknown fields, and the
partial-update helper that tells "left out" from "set to null"."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from inbox.errors import Invalid
from inbox.read.queries import MAX_ID


def decimal_up_to(limit: int, *, leading_zeros: bool = True) -> str:
    """A regex matching exactly the decimal numbers from 0 (1 without leading zeros) to `limit`.

    With `leading_zeros`, numbers may be zero-padded up to the width of `limit` (`007`), as a path may be."""
    digits = str(limit)
    width = len(digits)
    if leading_zeros:
        options = [f"[0-9]{{1,{width - 1}}}"] if width > 1 else []
    else:
        options = [f"[1-9][0-9]{{0,{width - 2}}}"] if width > 1 else []
    for i, digit in enumerate(digits):
        low = 1 if i == 0 and not leading_zeros else 0
        if int(digit) > low:
            rest = width - i - 1
            options.append(digits[:i] + f"[{low}-{int(digit) - 1}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    options.append(digits)
    return "(?:" + "|".join(options) + ")"


# Every id in a body or a query: a number a stored row can have (PostgreSQL ids are 32-bit), else a 422
# naming the field — never an OverflowError or a driver error further down. Paths get the same bound from
# the `int` convertor (inbox.http.routing.IdConvertor).
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# The document states what the directory checks (inbox.admin.directory): an address, a password of 10 or more.
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=320),
    Field(json_schema_extra={"pattern": r"^[^@\s]+@[^@\s]+$"}),
]
Password = Annotated[str, StringConstraints(max_length=1024), Field(json_schema_extra={"minLength": 10})]


class Body(BaseModel):
    """A JSON body: unknown fields and loose types (\"1\" for 1) are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)

    def given(self) -> dict[str, Any]:
        """Only the fields the client sent (so `null` can mean "clear" and absent "leave alone")."""
        return {name: getattr(self, name) for name in self.model_fields_set}


def _changes_schema(schema: dict[str, Any], model: Any) -> None:
    """What the document says of a partial update: at least one field, and `null` only where it clears."""
    schema["minProperties"] = 1
    nullable: frozenset[str] = getattr(model, "nullable", frozenset())
    for name, prop in schema.get("properties", {}).items():
        options = prop.get("anyOf")
        if name in nullable or not isinstance(options, list):
            continue
        kept = [option for option in options if option != {"type": "null"}]
        prop.pop("default", None)
        if len(kept) == 1:
            prop.pop("anyOf")
            prop.update(kept[0])
        else:
            prop["anyOf"] = kept


class Changes(Body):
    """A partial update (PATCH): the fields left out stay; `null` is refused except in `nullable`."""

    model_config = ConfigDict(json_schema_extra=_changes_schema)
    nullable: ClassVar[frozenset[str]] = frozenset()


def provided(body: BaseModel, *, nullable: frozenset[str] | None = None) -> dict[str, Any]:
    """The fields the client sent; null is refused where the field cannot be empty."""
    allowed: frozenset[str] = getattr(body, "nullable", frozenset()) if nullable is None else nullable
    data: dict[str, Any] = {}
    for name in sorted(body.model_fields_set):
        value = getattr(body, name)
        if value is None and name not in allowed:
            raise Invalid(f"body.{name}: must not be null")
        data[name] = value
    if not data:
        raise Invalid("body: nothing to change")
    return data
