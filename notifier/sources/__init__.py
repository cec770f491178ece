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

# Instants outside these years are typos or attacks, and would overflow on conversion to UTC.
EARLIEST_YEAR, LATEST_YEAR = 1970, 2100
# ISO 4217: three ASCII letters (str.upper() must not change the length, as it does for "ß").
CURRENCY = r"^[A-Za-z]{3}$"
Email = Annotated[str, Field(max_length=320)]
LocaleTag = Annotated[str, Field(max_length=35)]

# Money as storefronts send it: a decimal string or number, never negative, NaN or absurd.
Amount = Annotated[Decimal, Field(ge=0, lt=10**15, decimal_places=4, allow_inf_nan=False)]


class Payload(BaseModel):
    """Base of every payload model: unknown fields ignored, no NUL anywhere in a text."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: object) -> object:
        items = value if isinstance(value, list) else [value]
        if any(isinstance(item, str) and "\x00" in item for item in items):
            raise ValueError("must not contain a NUL character")
        if isinstance(value, datetime) and not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
            raise ValueError(f"must lie between {EARLIEST_YEAR} and {LATEST_YEAR}")
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
    value = optional_header(headers, name, max_length)
    if value is None:
        raise Problem(400, "Missing header", f"The {name} header is required.")
    return value


def optional_header(headers: Headers, name: str, max_length: int = 200) -> str | None:
    value = headers.get(name, "").strip()
    if not value:
        return None
    if len(value) > max_length or not value.isprintable():
        raise Problem(
            400,
            "Invalid header",
            f"The {name} header is malformed (at most {max_length} printable characters).",
        )
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
