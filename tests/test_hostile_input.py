"""Whatever arrives, the answer is a 2xx or a precise 4xx problem, never a 500, never a trace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifier import create_app

from .conftest import post_shopify, shopify_order

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "id", "name", "email", "customer_locale", "created_at", "currency", "total_price",
    "line_items", "shipping_address", "customer", "total_price_set", "cancelled_at",
]  # fmt: skip


def assert_answer_is_clean(response: Any) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400:
        assert response.mimetype == "application/problem+json"
        assert response.json["detail"]
        assert "Traceback" not in response.get_data(as_text=True)


@pytest.mark.usefixtures("shopify_shop")
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(field=st.sampled_from(FIELDS), value=json_values)
def test_any_value_in_any_field_is_answered_cleanly(
    client: FlaskClient, field: str, value: Any
) -> None:
    order = shopify_order()
    order[field] = value

    assert_answer_is_clean(post_shopify(client, order))


@pytest.mark.usefixtures("shopify_shop")
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=st.binary(max_size=300))
def test_any_signed_bytes_are_answered_cleanly(client: FlaskClient, body: bytes) -> None:
    assert_answer_is_clean(post_shopify(client, body))


@pytest.mark.usefixtures("shopify_shop")
@pytest.mark.parametrize(
    "body",
    [
        b'{"a":' * 10 + b"1" + b"}" * 10,  # ten levels deep
        b"[" * 5000 + b"]" * 5000,  # deeper than any parser should recurse
        b"\x00\x01\x02",
        '{"name": "\u202e#1001\u200b"}'.encode(),
        json.dumps(shopify_order(total_price="1e400")).encode(),
        json.dumps(shopify_order(total_price="NaN")).encode(),
        json.dumps(shopify_order(total_price=-5)).encode(),
        json.dumps(shopify_order(id="9" * 500)).encode(),
        json.dumps(shopify_order(created_at="yesterday")).encode(),
        json.dumps(shopify_order(created_at="2026-11-23T10:00:00")).encode(),  # no offset
    ],
)
def test_named_hostile_bodies(client: FlaskClient, body: bytes) -> None:
    response = post_shopify(client, body)

    assert_answer_is_clean(response)
    assert response.status_code in (400, 422)


@pytest.mark.usefixtures("shopify_shop")
def test_html_in_buyer_fields_is_escaped_in_the_email(
    client: FlaskClient, dispatch: Any, mailbox: Any
) -> None:
    order = shopify_order()
    order["line_items"][0]["title"] = "<script>alert(1)</script>Lamp"
    order["customer"]["last_name"] = "<b>Schmidt</b>"
    post_shopify(client, order)
    dispatch()

    from email import message_from_bytes, policy

    [mail] = mailbox.sent
    html = message_from_bytes(mail.raw, policy=policy.default).get_body(("html",)).get_content()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;Lamp" in html
    assert "<b>Schmidt</b>" not in html


def test_a_database_that_is_down_answers_503_and_asks_for_a_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFIER_INSTANCE_PATH", str(tmp_path))
    app: Flask = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2",
            "MAIL_URL": "memory://down",
        }
    )

    response = post_shopify(app.test_client(), shopify_order())

    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "30"
    assert (
        response.json["detail"] == "The database is unavailable; nothing was stored. Retry later."
    )


@pytest.mark.usefixtures("shopify_shop")
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "a" * 390 + "@example.org"}, "email"),
        ({"customer_locale": "de-" + "x" * 40}, "customer_locale"),
        ({"currency": "ßßß"}, "currency"),
        ({"created_at": "0001-01-01T00:00:00+14:00"}, "created_at"),
        ({"created_at": "9999-12-31T23:00:00-05:00"}, "created_at"),
    ],
)
def test_values_the_database_could_not_hold_are_refused_by_name(
    client: FlaskClient, changes: dict[str, Any], field: str
) -> None:
    response = post_shopify(client, shopify_order(**changes))

    assert_answer_is_clean(response)
    assert response.status_code == 422
    assert field in {error["field"] for error in response.json["errors"]}


@pytest.mark.usefixtures("shopify_shop")
def test_an_overlong_event_id_header_is_a_400(client: FlaskClient) -> None:
    response = post_shopify(client, shopify_order(), event_id="e" * 300)

    assert_answer_is_clean(response)
    assert response.status_code == 400
    assert "X-Shopify-Event-Id" in response.json["detail"]


@pytest.mark.usefixtures("shopify_shop")
def test_a_locale_of_astral_characters_is_stored_not_a_500(
    client: FlaskClient, dispatch: Any, mailbox: Any
) -> None:
    response = post_shopify(client, shopify_order(customer_locale="\U000f0000" * 35))

    assert response.status_code == 200
    assert dispatch().sent == 1


@pytest.mark.usefixtures("shopify_shop")
@pytest.mark.parametrize(
    "first_name", ["علی\u200cرضا", "Kim 👩\u200d💻", "Hoch\u00adzeit", "\u200fדנה"]
)
def test_names_with_joiners_and_marks_still_get_their_email(
    client: FlaskClient, dispatch: Any, mailbox: Any, first_name: str
) -> None:
    order = shopify_order()
    order["customer"]["first_name"] = first_name
    post_shopify(client, order)

    assert dispatch().sent == 1
    [mail] = mailbox.sent
    from email import message_from_bytes, policy

    assert first_name in str(message_from_bytes(mail.raw, policy=policy.default)["To"])


@pytest.mark.usefixtures("shopify_shop")
@pytest.mark.parametrize("override", ["\u202e", "\u2066", "\u2028"])
def test_names_that_reorder_or_break_headers_fail_visibly(
    client: FlaskClient, dispatch: Any, mailbox: Any, override: str
) -> None:
    order = shopify_order()
    order["customer"]["first_name"] = f"Anna{override}moc.live"
    post_shopify(client, order)

    assert dispatch().failed == 1
    assert mailbox.sent == []
