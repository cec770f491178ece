"""What every payload must hold to be stored, checked once over the parsed body: no NUL in a
text the model keeps, no instant outside 1970-2100, each refusal naming its field.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from notifier.sources import parse, schema_problem
from notifier.sources.shopify import ShopifyOrder

from .conftest import shopify_order


def refusal(body: bytes) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as raised:
        parse(ShopifyOrder, body)
    problem = schema_problem(raised.value)
    assert problem.status == 422
    assert problem.errors is not None
    return problem.errors


def test_a_nul_in_a_kept_text_is_refused_by_its_path() -> None:
    order = shopify_order()
    order["line_items"][0]["title"] = "Lamp\x00"
    errors = refusal(json.dumps(order).encode())
    assert errors == [
        {
            "field": "line_items.0.title",
            "message": "Value error, must not contain a NUL character",
            "type": "value_error",
        }
    ]


def test_a_nul_in_a_field_the_model_ignores_is_stored_as_sent() -> None:
    order = shopify_order(note="gift\x00wrap")  # Shopify's note: not read, kept in the raw body
    parsed = parse(ShopifyOrder, json.dumps(order).encode())
    assert parsed.name == order["name"]


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul() -> None:
    order = shopify_order()
    order["line_items"][0]["title"] = "Lamp \\u0000 edition"
    parsed = parse(ShopifyOrder, json.dumps(order).encode())
    assert parsed.line_items[0].title == "Lamp \\u0000 edition"


@pytest.mark.parametrize("instant", ["1969-12-31T23:59:59Z", "2101-01-01T00:00:00Z"])
def test_an_instant_outside_the_years_is_refused_by_its_path(instant: str) -> None:
    errors = refusal(json.dumps(shopify_order(created_at=instant)).encode())
    assert [(error["field"], error["message"]) for error in errors] == [
        ("created_at", "Value error, must lie between 1970 and 2100")
    ]


def test_a_nul_beside_other_faults_is_named_with_them_once() -> None:
    order = shopify_order(currency="EURO")
    order["line_items"][0]["title"] = "Lamp\x00"
    order["line_items"][1]["sku"] = "S" * 1001 + "\x00"  # too long and a NUL: one error
    fields = sorted(error["field"] for error in refusal(json.dumps(order).encode()))
    assert fields == ["currency", "line_items.0.title", "line_items.1.sku"]
