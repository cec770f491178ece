"""Source adapters: each knows one dialect of the outside world and nothing of the database.

An adapter verifies a delivery (signature, freshness, identifiers) into an Envelope, then
translates its body into canonical events. Every refusal is a Problem with a precise detail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from werkzeug.datastructures import Headers as Headers

from notifier.problems import Problem

# Money as storefronts send it: a decimal string or number, never negative, NaN or absurd.
Amount = Annotated[Decimal, Field(ge=0, lt=10**15, decimal_places=4, allow_inf_nan=False)]


class Payload(BaseModel):
    """Base of every payload model: unknown fields ignored, no NUL anywhere in a text."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(text, str) and "\x00" in text for text in texts):
            raise ValueError("must not contain a NUL character")
        return value


@dataclass(frozen=True)
class Envelope:
    """What a verified delivery says about itself, before its body is read."""

    delivery_id: str
    event_id: str | None
    topic: str | None
    occurred_at: datetime | None
    headers: dict[str, str]
    verification: str


def headers_of_record(headers: Headers, names: tuple[str, ...]) -> dict[str, str]:
    """The request headers worth keeping as evidence, under their canonical names."""
    return {name: headers[name] for name in names if name in headers}


def required_header(headers: Headers, name: str, max_length: int = 200) -> str:
    value = headers.get(name, "").strip()
    if not value:
        raise Problem(400, "Missing header", f"The {name} header is required.")
    if len(value) > max_length or not value.isprintable():
        raise Problem(400, "Invalid header", f"The {name} header is malformed.")
    return value


def _field_path(location: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in location) or "(body)"


def schema_problem(error: ValidationError) -> Problem:
    """Turn pydantic's errors into a 400 (not JSON) or a 422 that names every bad field."""
    details = error.errors(include_url=False, include_input=False)
    if any(item["type"] == "json_invalid" for item in details):
        reason = details[0].get("ctx", {}).get("error", "invalid JSON")
        return Problem(400, "Malformed JSON", f"The body is not valid JSON: {reason}.")
    errors: list[dict[str, Any]] = [
        {"field": _field_path(item["loc"]), "message": item["msg"], "type": item["type"]}
        for item in details
    ]
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return Problem(
        422,
        "Invalid payload",
        f"Field '{first['field']}': {first['message']}{more}.",
        errors=errors,
    )
