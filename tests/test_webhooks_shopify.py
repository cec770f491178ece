"""POST /webhooks/shopify: verify, store, dedupe, apply, plan; every refusal is problem+json."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from email import message_from_bytes, policy
from html import unescape

import pytest
from babel.numbers import format_currency
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from notifier.models import EventOutcome, InboundEvent, Message, MessageState, Order, OrderStatus
from notifier.transports.memory import MemoryTransport

from .conftest import parsed, post_shopify, services, shopify_headers, shopify_order

pytestmark = pytest.mark.usefixtures("shopify_shop")


def count(app: Flask, model: type) -> int:
    with services(app).sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_signed_order_becomes_a_german_confirmation(
    app: Flask, client: FlaskClient, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    body = json.dumps(shopify_order()).encode()
    response = client.post(
        "/webhooks/shopify",
        data=body,
        headers=shopify_headers(body, webhook_id="wh-1", event_id="ev-1"),
    )

    assert response.status_code == 200
    assert response.json["status"] == "accepted"
    with services(app).sessions() as session:
        event = session.scalars(select(InboundEvent)).one()
        assert event.body == body
        assert event.headers["X-Shopify-Webhook-Id"] == "wh-1"
        assert event.verification.startswith("hmac-sha256 valid")
        assert event.outcome is EventOutcome.APPLIED
        message = session.scalars(select(Message)).one()
        assert message.kind == "order_confirmation"
        assert message.locale == "de"
        assert message.state is MessageState.SCHEDULED
        assert message.reason == "immediate kind: sent at once"

    outcome = dispatch()

    assert outcome.sent == 1
    [mail] = mailbox.sent
    parsed = message_from_bytes(mail.raw, policy=policy.default)
    assert parsed["Subject"] == "Bestellung #1001 bestätigt – vielen Dank!"
    assert parsed["To"].addresses[0].addr_spec == "anna.schmidt@example.org"
    text = parsed.get_body(("plain",)).get_content()
    # The buyer paid in EUR (presentment currency), not the shop's CNY.
    total = format_currency(Decimal("1234.56"), "EUR", locale="de")
    assert total == "1.234,56\xa0€"
    assert f"Gesamtsumme: {total}" in text
    assert "Guten Tag Anna Schmidt," in text
    assert "Deutschland" in text
    html = parsed.get_body(("html",)).get_content()
    assert '<html lang="de" dir="ltr">' in html
    assert total in unescape(html)


def test_the_same_delivery_twice_changes_nothing(
    app: Flask, client: FlaskClient, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    order = shopify_order()
    first = post_shopify(client, order, webhook_id="wh-1")
    dispatch()
    again = post_shopify(client, order, webhook_id="wh-1")

    assert again.status_code == 200
    assert again.json["status"] == "duplicate"
    assert again.json["event_id"] == first.json["event_id"]
    assert dispatch().sent == 0
    assert len(mailbox.sent) == 1
    assert count(app, InboundEvent) == 1
    assert count(app, Message) == 1


def test_same_event_id_under_a_new_webhook_id_is_a_duplicate(
    app: Flask, client: FlaskClient
) -> None:
    post_shopify(client, shopify_order(), webhook_id="wh-1", event_id="ev-7")
    again = post_shopify(client, shopify_order(), webhook_id="wh-2", event_id="ev-7")

    assert again.json["status"] == "duplicate"
    assert count(app, InboundEvent) == 1


def test_paid_after_create_confirms_only_once(
    app: Flask, client: FlaskClient, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    post_shopify(client, shopify_order(), topic="orders/create")
    paid = post_shopify(client, shopify_order(), topic="orders/paid")

    assert paid.json["status"] == "accepted"
    assert paid.json["detail"] == "order_confirmation already planned"
    dispatch()
    assert len(mailbox.sent) == 1
    assert count(app, InboundEvent) == 2


def test_cancellation_stops_what_is_pending_and_later_news(
    app: Flask, client: FlaskClient, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    cancelled = shopify_order(cancelled_at="2026-11-23T10:20:00+08:00", cancel_reason="customer")
    post_shopify(client, shopify_order(), topic="orders/create")
    response = post_shopify(client, cancelled, topic="orders/cancelled")

    assert response.json["detail"] == (
        "order cancelled; 1 pending message(s) cancelled; "
        "order_cancelled planned for 2026-11-23T09:00:00+00:00 (de)"
    )
    assert dispatch().sent == 1
    [sent] = mailbox.sent
    assert parsed(sent)["Subject"] == "Ihre Bestellung #1001 wurde storniert"
    with services(app).sessions() as session:
        order = session.scalars(select(Order)).one()
        assert order.status is OrderStatus.CANCELLED
        states = {m.kind: (m.state, m.reason) for m in session.scalars(select(Message))}
    assert states["order_confirmation"] == (MessageState.CANCELLED, "order cancelled (customer)")
    assert states["order_cancelled"][0] is MessageState.SENT
    late = post_shopify(client, shopify_order(), topic="orders/paid")
    assert late.json["detail"] == "order is cancelled; no confirmation planned"


def test_unhandled_topic_is_recorded_and_ignored(app: Flask, client: FlaskClient) -> None:
    response = post_shopify(client, {"id": 1}, topic="products/update")

    assert response.status_code == 200
    assert response.json["status"] == "ignored"
    with services(app).sessions() as session:
        event = session.scalars(select(InboundEvent)).one()
        assert event.outcome is EventOutcome.IGNORED
        assert event.topic == "products/update"
        assert event.outcome_detail == "topic 'products/update' is not handled"


def test_a_rotated_secret_still_verifies(app: Flask, client: FlaskClient) -> None:
    with services(app).sessions.begin() as session:
        from notifier.models import Shop

        shop = session.scalars(select(Shop)).one()
        shop.webhook_secrets = ["shpss_new_secret_abcdefghijkl", *shop.webhook_secrets]
    old = post_shopify(client, shopify_order())
    new = post_shopify(client, shopify_order(), secret="shpss_new_secret_abcdefghijkl")

    assert old.status_code == 200
    assert new.status_code == 200
    with services(app).sessions() as session:
        verdicts = list(
            session.scalars(select(InboundEvent.verification).order_by(InboundEvent.id))
        )
    assert verdicts == ["hmac-sha256 valid (secret 2 of 2)", "hmac-sha256 valid (secret 1 of 2)"]


def test_order_without_email_plans_nothing(app: Flask, client: FlaskClient) -> None:
    order = shopify_order(email=None, contact_email="", customer=None)
    response = post_shopify(client, order)

    assert response.json["status"] == "accepted"
    assert response.json["detail"] == "no buyer email on the order; order_confirmation not planned"
    assert count(app, Message) == 0


@pytest.mark.parametrize(
    ("tag", "expected", "reason"),
    [
        ("de-AT", "de", "buyer locale 'de-AT' is served by de"),
        ("pt-BR", "pt_BR", "buyer locale 'pt-BR' is served by pt_BR"),
        (
            "ru-RU",
            "en",
            "buyer locale 'ru-RU' has no catalog; the shop default 'en' is served by en",
        ),
        (
            "klingon!",
            "en",
            "buyer locale 'klingon!' has no catalog; the shop default 'en' is served by en",
        ),
        (None, "en", "the order names no buyer locale; the shop default 'en' is served by en"),
    ],
)
def test_the_locale_and_its_reason_are_stored(
    app: Flask, client: FlaskClient, tag: str | None, expected: str, reason: str
) -> None:
    post_shopify(client, shopify_order(customer_locale=tag))

    with services(app).sessions() as session:
        message = session.scalars(select(Message)).one()
    assert (message.locale, message.locale_reason) == (expected, reason)


# --- refusals -----------------------------------------------------------------------------


def assert_problem(response, status: int, detail_part: str) -> dict:
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    problem = response.json
    assert problem["status"] == status
    assert detail_part in problem["detail"]
    return problem


def test_wrong_signature_is_401_and_stores_nothing(app: Flask, client: FlaskClient) -> None:
    response = post_shopify(client, shopify_order(), secret="shpss_not_the_secret_at_all")

    assert_problem(response, 401, "X-Shopify-Hmac-Sha256 does not match")
    assert count(app, InboundEvent) == 0


def test_missing_signature_is_401(client: FlaskClient) -> None:
    body = json.dumps(shopify_order()).encode()
    headers = shopify_headers(body)
    del headers["X-Shopify-Hmac-Sha256"]

    assert_problem(client.post("/webhooks/shopify", data=body, headers=headers), 401, "required")


def test_unknown_shop_is_404(client: FlaskClient) -> None:
    response = post_shopify(client, shopify_order(), domain="someone-else.myshopify.com")

    assert_problem(response, 404, "'someone-else.myshopify.com'")


def test_missing_shop_header_is_400(client: FlaskClient) -> None:
    body = json.dumps(shopify_order()).encode()
    headers = shopify_headers(body)
    del headers["X-Shopify-Shop-Domain"]

    assert_problem(
        client.post("/webhooks/shopify", data=body, headers=headers), 400, "X-Shopify-Shop-Domain"
    )


def test_body_over_one_mebibyte_is_413(app: Flask, client: FlaskClient) -> None:
    body = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    response = client.post("/webhooks/shopify", data=body, headers=shopify_headers(body))

    assert_problem(response, 413, "larger than this endpoint accepts")
    assert count(app, InboundEvent) == 0


def test_signed_garbage_is_400(client: FlaskClient) -> None:
    response = post_shopify(client, b"{not json")

    assert_problem(response, 400, "not valid JSON")


def test_schema_errors_are_422_naming_each_field(app: Flask, client: FlaskClient) -> None:
    order = shopify_order(total_price="lots")
    order["line_items"][1]["quantity"] = -1
    response = post_shopify(client, order)

    problem = assert_problem(response, 422, "Field 'total_price'")
    fields = {error["field"] for error in problem["errors"]}
    assert fields == {"total_price", "line_items.1.quantity"}
    assert count(app, InboundEvent) == 0


@pytest.mark.parametrize("body", [b"[]", b"null", b'"order"', b"{}"])
def test_json_that_is_not_an_order_is_422(client: FlaskClient, body: bytes) -> None:
    assert_problem(post_shopify(client, body), 422, "Field")


def test_unknown_paths_and_methods_are_problems(client: FlaskClient) -> None:
    assert_problem(client.get("/webhooks/nowhere"), 404, "")
    response = client.get("/webhooks/shopify")
    assert_problem(response, 405, "")
    assert "POST" in response.headers["Allow"]
