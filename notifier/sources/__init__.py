"""Source adapters: each knows one dialect of the outside world and nothing of the database.

An adapter verifies a delivery (signature, freshness, identifiers) into an Envelope, then
translates its body into canonical events. Every refusal is a Problem with a precise detail.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
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
    """Base of every payload model: unknown fields ignored; read bodies with `parse`."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


Parsed = TypeVar("Parsed", bound=Payload)
NUL_MESSAGE = "must not contain a NUL character"
YEARS_MESSAGE = f"must lie between {EARLIEST_YEAR} and {LATEST_YEAR}"


def parse(model: type[Parsed], body: bytes | str) -> Parsed:
    """The body as `model`, with no NUL in any text it keeps and no instant outside the years.

    Checked once over the parsed result rather than by a validator on every field (which was
    half of a webhook's validation time). A NUL can only arrive escaped (JSON forbids it raw),
    so texts are only searched when the body holds `\\u0000`; instants always are.
    """
    escaped_nul = b"\\u0000" in body if isinstance(body, bytes) else "\\u0000" in body
    try:
        parsed = model.model_validate_json(body)
    except ValidationError as error:
        if escaped_nul:  # refused anyway: name every NUL too, so one answer lists all faults
            _raise_with_nuls(model, body, error)
        raise
    found = _unstorable(parsed, escaped_nul)
    if found is not None:
        inside_out, value, message = found
        raise _invalid(model, [(tuple(reversed(inside_out)), value, message)], [])
    return parsed


def _invalid(
    model: type[Payload],
    faults: Sequence[tuple[tuple[int | str, ...], object, str]],
    others: list[Any],
) -> ValidationError:
    errors = [*others]
    errors += [
        {"type": "value_error", "loc": loc, "input": value, "ctx": {"error": ValueError(why)}}
        for loc, value, why in faults
    ]
    return ValidationError.from_exception_data(model.__name__, errors)


def _raise_with_nuls(model: type[Payload], body: bytes | str, error: ValidationError) -> None:
    try:
        data = json.loads(body)
    except ValueError:
        return  # not JSON at all: pydantic's answer says so
    others = [
        {key: item[key] for key in ("type", "loc", "input", "ctx") if key in item}
        for item in error.errors(include_url=False)
    ]
    faulty = {tuple(item["loc"]) for item in others}
    nuls = [(loc, text, NUL_MESSAGE) for loc, text in _nul_texts(data, ()) if loc not in faulty]
    if nuls:
        raise _invalid(model, nuls, others) from None


def _nul_texts(
    data: object, loc: tuple[int | str, ...]
) -> Iterator[tuple[tuple[int | str, ...], str]]:
    if isinstance(data, str):
        if "\x00" in data:
            yield loc, data
    elif isinstance(data, dict):
        for key, item in data.items():
            yield from _nul_texts(item, (*loc, key))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from _nul_texts(item, (*loc, index))


def _unstorable(value: object, texts: bool) -> tuple[list[int | str], object, str] | None:
    """The first kept value that cannot be stored: its location (innermost first), it, why."""
    kind = type(value)
    if kind is str:
        return ([], value, NUL_MESSAGE) if texts and "\x00" in value else None  # type: ignore[operator]
    if kind in _LEAVES or value is None:
        return None
    if isinstance(value, datetime):
        return None if EARLIEST_YEAR <= value.year <= LATEST_YEAR else ([], value, YEARS_MESSAGE)
    if isinstance(value, BaseModel):
        named: Any = value.__dict__.items()
    elif isinstance(value, list | tuple):
        named = enumerate(value)
    elif isinstance(value, dict):
        named = value.items()
    else:
        return None
    for key, item in named:
        found = _unstorable(item, texts)
        if found is not None:
            found[0].append(_alias(value, key))
            return found
    return None


_LEAVES = frozenset({int, float, bool, Decimal, date})


def _alias(container: object, key: int | str) -> int | str:
    """The name pydantic reports a field by (its alias, if it has one)."""
    if isinstance(container, BaseModel) and isinstance(key, str):
        field = type(container).model_fields.get(key)
        if field is not None and field.alias:
            return field.alias
    return key


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
