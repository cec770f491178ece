"""POST /webhooks/standard/<slug>: Standard Webhooks signatures (checked against the reference
`standardwebhooks` package), freshness by the injected clock, and every refusal as problem+json."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from email import message_from_bytes, policy
from html import unescape
from typing import Any

import pytest
from babel.numbers import format_currency
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from standardwebhooks import Webhook

from notifier.clock import FakeClock
from notifier.models import (
    EventOutcome,
    InboundEvent,
    Message,
    MessageState,
    Order,
    OrderStatus,
)
from notifier.transports.memory import MemoryTransport

from .conftest import STANDARD_SECRET, services

pytestmark = pytest.mark.usefixtures("standard_shop")

OTHER_SECRET = "whsec_" + "c29tZW9uZS1lbHNlcy1zZWNyZXQta2V5LTMyYnl0ZXM="


# --- helpers ------------------------------------------------------------------------------


def standard_order(**changes: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "id": "ord_7Hq2",
        "number": "A-2041",
        "placed_at": "2026-11-23T09:58:12+01:00",
        "currency": "CHF",
        "total": "1234.50",
        "subtotal": "1180.00",
        "shipping": "25.00",
        "tax": "29.50",
        "discount": "0",
        "buyer": {
            "email": "lea.meier@example.ch",
            "name": "Lea Meier",
            "locale": "de-CH",
            "timezone": "Europe/Zurich",
        },
        "line_items": [
            {
                "title": "Wool throw",
                "quantity": 2,
                "unit_price": "590.00",
                "variant": "Moss",
                "sku": "THR-MS",
            }
        ],
        "shipping_address": {
            "name": "Lea Meier",
            "lines": ["Bahnhofstrasse 1"],
            "city": "Zürich",
            "region": "Zürich",
            "region_code": "ZH",
            "postal_code": "8001",
            "country": "Switzerland",
            "country_code": "ch",
        },
        "status_url": "https://atelier.example/orders/ord_7Hq2",
        "cancel_reason": None,
    }
    order.update(changes)
    return order


def standard_event(
    event_type: str = "order.placed", order: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "type": event_type,
        "timestamp": "2026-11-23T08:59:30+00:00",
        "data": {"order": order if order is not None else standard_order()},
    }


def signed_headers(
    body: str,
    *,
    at: datetime,
    msg_id: str | None = None,
    secret: str = STANDARD_SECRET,
) -> dict[str, str]:
    """Headers signed by the reference implementation, not by the code under test."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
    }


def post_standard(
    client: FlaskClient,
    clock: FakeClock,
    event: dict[str, Any] | None = None,
    *,
    slug: str = "atelier",
    at: datetime | None = None,
    msg_id: str | None = None,
    secret: str = STANDARD_SECRET,
    **header_changes: str,
) -> Any:
    body = json.dumps(event if event is not None else standard_event())
    headers = signed_headers(body, at=at or clock.now(), msg_id=msg_id, secret=secret)
    headers.update(header_changes)
    return client.post(f"/webhooks/standard/{slug}", data=body.encode(), headers=headers)


def count(app: Flask, model: type) -> int:
    with services(app).sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def assert_problem(response: Any, status: int, title: str | None = None) -> dict[str, Any]:
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    problem: dict[str, Any] = response.json
    assert problem["status"] == status
    assert isinstance(problem["title"], str)
    assert problem["title"]
    assert isinstance(problem["detail"], str)
    assert problem["detail"]
    if title is not None:
        assert problem["title"] == title
    return problem


# --- accepted deliveries ------------------------------------------------------------------


def test_signed_order_is_stored_and_a_confirmation_scheduled(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    body = json.dumps(standard_event())
    headers = signed_headers(body, at=clock.now(), msg_id="msg_first")
    response = client.post("/webhooks/standard/atelier", data=body.encode(), headers=headers)

    assert response.status_code == 200
    assert response.json["status"] == "accepted"
    assert response.json["delivery_id"] == "msg_first"
    with services(app).sessions() as session:
        event = session.scalars(select(InboundEvent)).one()
        assert event.source == "standard"
        assert event.topic == "order.placed"
        assert event.body == body.encode()
        assert event.headers["webhook-id"] == "msg_first"
        assert event.headers["webhook-signature"] == headers["webhook-signature"]
        assert event.verification == "standard-webhooks v1 valid (secret 1 of 1)"
        assert event.outcome is EventOutcome.APPLIED
        assert event.occurred_at == clock.now()
        order = session.scalars(select(Order)).one()
        assert event.order_id == order.id
        assert order.external_id == "ord_7Hq2"
        assert order.number == "A-2041"
        assert order.currency == "CHF"
        assert order.total == Decimal("1234.50")
        assert order.buyer_email == "lea.meier@example.ch"
        assert order.buyer_locale_tag == "de-CH"
        assert (order.buyer_timezone, order.timezone_source) == (
            "Europe/Zurich",
            "storefront: Europe/Zurich",
        )
        message = session.scalars(select(Message)).one()
        assert message.kind == "order_confirmation"
        assert message.state is MessageState.SCHEDULED
        assert message.caused_by_event_id == event.id
        assert message.recipient == "lea.meier@example.ch"
        assert message.timezone == "Europe/Zurich"
        assert message.due_at == clock.now()
        assert (message.locale, message.locale_reason) == (
            "de",
            "buyer locale 'de-CH' is served by de",
        )


def test_without_a_buyer_timezone_the_address_decides(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    order = standard_order(buyer={"email": "lea.meier@example.ch", "name": "Lea Meier"})
    post_standard(client, clock, standard_event(order=order))

    with services(app).sessions() as session:
        stored = session.scalars(select(Order)).one()
    assert (stored.buyer_timezone, stored.timezone_source) == ("Europe/Zurich", "country CH")


def test_without_a_timezone_or_an_address_the_shop_default_is_used(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    order = standard_order(buyer={"email": "lea.meier@example.ch", "name": "Lea Meier"})
    order["shipping_address"] = None
    response = post_standard(client, clock, standard_event(order=order))

    assert response.status_code == 200
    with services(app).sessions() as session:
        stored = session.scalars(select(Order)).one()
        message = session.scalars(select(Message)).one()
    assert (stored.buyer_timezone, stored.timezone_source) == (
        "Europe/Berlin",
        "shop default Europe/Berlin",
    )
    # The shop `atelier` defaults to German, which has a catalog.
    assert (message.locale, message.locale_reason) == (
        "de",
        "the order names no buyer locale; the shop default 'de' is served by de",
    )


def test_dispatch_sends_a_german_confirmation(
    client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    assert post_standard(client, clock).status_code == 200

    assert dispatch().sent == 1

    [mail] = mailbox.sent
    assert mail.recipients == ("lea.meier@example.ch",)
    parsed = message_from_bytes(mail.raw, policy=policy.default)
    assert parsed["Subject"] == "Bestellung A-2041 bestätigt – vielen Dank!"
    assert parsed["To"].addresses[0].addr_spec == "lea.meier@example.ch"
    assert parsed["To"].addresses[0].display_name == "Lea Meier"
    assert parsed["From"].addresses[0].addr_spec == "hello@atelier.example"
    text = parsed.get_body(("plain",)).get_content()
    total = format_currency(Decimal("1234.50"), "CHF", locale="de")
    assert f"Gesamtsumme: {total}" in text
    assert "Guten Tag Lea Meier," in text
    assert "Schweiz" in text  # the country named in the reader's language, from `ch`
    html = parsed.get_body(("html",)).get_content()
    assert 'lang="de"' in html
    assert total in unescape(html)


def test_cancellation_stops_the_pending_confirmation(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    post_standard(client, clock, standard_event("order.placed"))
    cancelled = standard_event("order.cancelled", standard_order(cancel_reason="out of stock"))
    response = post_standard(client, clock, cancelled)

    assert response.status_code == 200
    assert response.json["detail"] == (
        "order cancelled; 1 pending message(s) cancelled; "
        "order_cancelled planned for 2026-11-23T09:00:00+00:00 (de)"
    )
    assert dispatch().sent == 1
    [mail] = mailbox.sent
    assert message_from_bytes(mail.raw, policy=policy.default)["Subject"] == (
        "Ihre Bestellung A-2041 wurde storniert"
    )
    with services(app).sessions() as session:
        assert session.scalars(select(Order)).one().status is OrderStatus.CANCELLED
        confirmation = session.scalars(
            select(Message).where(Message.kind == "order_confirmation")
        ).one()
    assert confirmation.state is MessageState.CANCELLED
    assert confirmation.reason == "order cancelled (out of stock)"


def test_the_same_webhook_id_twice_is_a_duplicate(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    first = post_standard(client, clock, msg_id="msg_dup")
    clock.advance(timedelta(seconds=30))
    again = post_standard(client, clock, msg_id="msg_dup")

    assert first.json["status"] == "accepted"
    assert again.status_code == 200
    assert again.json["status"] == "duplicate"
    assert again.json["event_id"] == first.json["event_id"]
    assert count(app, InboundEvent) == 1
    assert count(app, Order) == 1
    assert count(app, Message) == 1


def test_paid_after_placed_plans_nothing_new(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    post_standard(client, clock, standard_event("order.placed"))
    paid = post_standard(client, clock, standard_event("order.paid"))

    assert paid.json["status"] == "accepted"
    assert paid.json["detail"] == "order_confirmation already planned"
    assert count(app, InboundEvent) == 2
    assert count(app, Message) == 1


def test_unknown_type_is_recorded_and_ignored(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    response = post_standard(client, clock, standard_event("order.refunded"))

    assert response.status_code == 200
    assert response.json["status"] == "ignored"
    with services(app).sessions() as session:
        event = session.scalars(select(InboundEvent)).one()
    assert event.outcome is EventOutcome.IGNORED
    assert event.topic == "order.refunded"
    assert event.outcome_detail == "type 'order.refunded' is not handled"
    assert event.order_id is None
    assert count(app, Order) == 0
    assert count(app, Message) == 0


# --- timestamps against the injected clock ------------------------------------------------


def test_a_delivery_older_than_the_tolerance_is_stale(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    body = json.dumps(standard_event())
    headers = signed_headers(body, at=clock.now())
    clock.advance(timedelta(seconds=301))
    response = client.post("/webhooks/standard/atelier", data=body.encode(), headers=headers)

    problem = assert_problem(response, 401, "Stale timestamp")
    assert headers["webhook-timestamp"] in problem["detail"]
    assert count(app, InboundEvent) == 0


def test_a_delivery_from_beyond_the_tolerance_in_the_future_is_refused(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    response = post_standard(client, clock, at=clock.now() + timedelta(seconds=301))

    assert_problem(response, 401, "Stale timestamp")
    assert count(app, InboundEvent) == 0


@pytest.mark.parametrize("offset", [-299, -300, 299, 300])
def test_a_timestamp_within_the_tolerance_passes(
    client: FlaskClient, clock: FakeClock, offset: int
) -> None:
    response = post_standard(client, clock, at=clock.now() + timedelta(seconds=offset))

    assert response.status_code == 200
    assert response.json["status"] == "accepted"


@pytest.mark.parametrize("stamp", ["abc", "1795424400.5", "1.7954244e9", "0x6AFE2F10", "-"])
def test_a_timestamp_that_is_not_integer_seconds_is_401(
    app: Flask, client: FlaskClient, clock: FakeClock, stamp: str
) -> None:
    response = post_standard(client, clock, **{"webhook-timestamp": stamp})

    assert_problem(response, 401, "Invalid timestamp")
    assert count(app, InboundEvent) == 0


# --- signatures ---------------------------------------------------------------------------


def test_a_signature_made_with_another_secret_is_401(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    response = post_standard(client, clock, secret=OTHER_SECRET)

    assert_problem(response, 401, "Invalid signature")
    assert count(app, InboundEvent) == 0


def test_a_signature_over_another_body_is_401(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    body = json.dumps(standard_event())
    headers = signed_headers(body, at=clock.now())
    tampered = body.replace("1234.50", "1.00")
    assert tampered != body
    response = client.post("/webhooks/standard/atelier", data=tampered.encode(), headers=headers)

    assert_problem(response, 401, "Invalid signature")
    assert count(app, InboundEvent) == 0


@pytest.mark.parametrize(
    "signature",
    [
        "garbage",
        "v1",
        "v1,",
        ",",
        "v1,!!!not base64!!!",
        "v2,AAAA",
        "v1a,AAAA",
        "v1,AAAA v1,BBBB",
        "\u00e9\u00e8",
    ],
)
def test_a_malformed_signature_header_is_401_not_500(
    app: Flask, client: FlaskClient, clock: FakeClock, signature: str
) -> None:
    response = post_standard(client, clock, **{"webhook-signature": signature})

    assert_problem(response, 401)
    assert count(app, InboundEvent) == 0


def test_an_empty_signature_header_is_401(client: FlaskClient, clock: FakeClock) -> None:
    assert_problem(post_standard(client, clock, **{"webhook-signature": " "}), 401)


def test_one_valid_signature_among_several_is_enough(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    body = json.dumps(standard_event())
    headers = signed_headers(body, at=clock.now(), msg_id="msg_many")
    valid = headers["webhook-signature"]
    wrong = Webhook(OTHER_SECRET).sign("msg_many", clock.now(), body)
    assert wrong != valid
    headers["webhook-signature"] = f"v1,bm9wZQ== {wrong} v2,{valid[3:]} garbage {valid}"

    response = client.post("/webhooks/standard/atelier", data=body.encode(), headers=headers)

    assert response.status_code == 200
    assert response.json["status"] == "accepted"
    assert count(app, InboundEvent) == 1


def test_the_signature_only_counts_with_its_v1_prefix(
    client: FlaskClient, clock: FakeClock
) -> None:
    body = json.dumps(standard_event())
    headers = signed_headers(body, at=clock.now())
    headers["webhook-signature"] = "v2," + headers["webhook-signature"].removeprefix("v1,")

    response = client.post("/webhooks/standard/atelier", data=body.encode(), headers=headers)

    assert_problem(response, 401, "Invalid signature")


def test_a_rotated_secret_still_verifies(app: Flask, client: FlaskClient, clock: FakeClock) -> None:
    with services(app).sessions.begin() as session:
        from notifier.models import Shop

        shop = session.scalars(select(Shop).where(Shop.slug == "atelier")).one()
        shop.webhook_secrets = [OTHER_SECRET, *shop.webhook_secrets]

    old = post_standard(client, clock, secret=STANDARD_SECRET)
    new = post_standard(client, clock, secret=OTHER_SECRET)

    assert (old.status_code, new.status_code) == (200, 200)
    with services(app).sessions() as session:
        verdicts = list(
            session.scalars(select(InboundEvent.verification).order_by(InboundEvent.id))
        )
    assert verdicts == [
        "standard-webhooks v1 valid (secret 2 of 2)",
        "standard-webhooks v1 valid (secret 1 of 2)",
    ]


# --- headers and body ---------------------------------------------------------------------


def test_a_missing_webhook_id_is_400(app: Flask, client: FlaskClient, clock: FakeClock) -> None:
    body = json.dumps(standard_event())
    headers = signed_headers(body, at=clock.now())
    del headers["webhook-id"]

    response = client.post("/webhooks/standard/atelier", data=body.encode(), headers=headers)

    problem = assert_problem(response, 400)
    assert "webhook-id" in problem["detail"]
    assert count(app, InboundEvent) == 0


def test_a_missing_timestamp_is_400(client: FlaskClient, clock: FakeClock) -> None:
    body = json.dumps(standard_event())
    headers = signed_headers(body, at=clock.now())
    del headers["webhook-timestamp"]

    response = client.post("/webhooks/standard/atelier", data=body.encode(), headers=headers)

    assert "webhook-timestamp" in assert_problem(response, 400)["detail"]


def test_a_body_of_invalid_utf8_is_a_4xx_problem(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    # The reference signer only signs text, so no valid signature exists for these bytes.
    body = b'{"type": "order.placed", "data": "\xff\xfe\xc3("}'
    headers = signed_headers("irrelevant", at=clock.now())

    response = client.post("/webhooks/standard/atelier", data=body, headers=headers)

    assert 400 <= response.status_code < 500
    assert_problem(response, response.status_code)
    assert count(app, InboundEvent) == 0


def test_signed_text_that_is_not_json_is_400(client: FlaskClient, clock: FakeClock) -> None:
    body = "{not json"
    headers = signed_headers(body, at=clock.now())

    response = client.post("/webhooks/standard/atelier", data=body.encode(), headers=headers)

    assert "not valid JSON" in assert_problem(response, 400, "Malformed JSON")["detail"]


def test_schema_errors_are_422_naming_each_field(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    order = standard_order(buyer={"name": "Lea Meier"}, total="lots")
    order["line_items"][0]["quantity"] = -1

    response = post_standard(client, clock, standard_event(order=order))

    problem = assert_problem(response, 422, "Invalid payload")
    fields = {error["field"] for error in problem["errors"]}
    assert fields == {
        "data.order.buyer.email",
        "data.order.total",
        "data.order.line_items.0.quantity",
    }
    assert count(app, InboundEvent) == 0
    assert count(app, Order) == 0


def test_a_missing_buyer_email_is_422(client: FlaskClient, clock: FakeClock) -> None:
    order = standard_order(buyer={"name": "Lea Meier", "locale": "de"})

    problem = assert_problem(post_standard(client, clock, standard_event(order=order)), 422)

    assert [error["field"] for error in problem["errors"]] == ["data.order.buyer.email"]
    assert "Field 'data.order.buyer.email'" in problem["detail"]


def test_an_unknown_buyer_timezone_is_422(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    buyer = {"email": "lea.meier@example.ch", "timezone": "Mars/Olympus_Mons"}
    order = standard_order(buyer=buyer)

    problem = assert_problem(post_standard(client, clock, standard_event(order=order)), 422)

    assert [error["field"] for error in problem["errors"]] == ["data.order.buyer.timezone"]
    assert "Mars/Olympus_Mons" in problem["errors"][0]["message"]
    assert count(app, InboundEvent) == 0


@pytest.mark.parametrize("body", [[], None, "order", {}, {"type": 5}])
def test_json_that_is_not_an_event_is_422(client: FlaskClient, clock: FakeClock, body: Any) -> None:
    raw = json.dumps(body)
    headers = signed_headers(raw, at=clock.now())

    response = client.post("/webhooks/standard/atelier", data=raw.encode(), headers=headers)

    assert_problem(response, 422, "Invalid payload")


@pytest.mark.parametrize(
    ("where", "value"),
    [("name", "Lea\x00Meier"), ("number", "A-\x002041"), ("id", "ord\x00")],
)
def test_a_nul_character_in_the_order_is_refused_by_name(
    client: FlaskClient, clock: FakeClock, where: str, value: str
) -> None:
    order = standard_order()
    if where == "name":
        order["buyer"]["name"] = value
    else:
        order[where] = value

    response = post_standard(client, clock, standard_event(order=order))

    problem = assert_problem(response, 422)
    field = "data.order.buyer.name" if where == "name" else f"data.order.{where}"
    assert [error["field"] for error in problem["errors"]] == [field]


# --- shops and slugs ----------------------------------------------------------------------


def test_an_unknown_slug_is_404(app: Flask, client: FlaskClient, clock: FakeClock) -> None:
    response = post_standard(client, clock, slug="nobody")

    assert "'nobody'" in assert_problem(response, 404, "Unknown shop")["detail"]
    assert count(app, InboundEvent) == 0


@pytest.mark.parametrize(
    "slug", ["Atelier", "ATELIER", "atelier_x", "at.elier", "-atelier", "a" * 65]
)
def test_a_slug_that_cannot_exist_is_a_404_problem(
    client: FlaskClient, clock: FakeClock, slug: str
) -> None:
    assert_problem(post_standard(client, clock, slug=slug), 404, "Unknown shop")


@pytest.mark.parametrize("slug", ["atelier%0A", "atelier%00", "%C3%A4telier", "atelier%20"])
def test_an_encoded_slug_with_control_or_other_characters_is_404(
    client: FlaskClient, clock: FakeClock, slug: str
) -> None:
    assert_problem(post_standard(client, clock, slug=slug), 404, "Unknown shop")


def test_a_shopify_shop_gets_no_standard_deliveries(
    app: Flask, client: FlaskClient, clock: FakeClock, shopify_shop: Any
) -> None:
    response = post_standard(client, clock, slug="lumen")

    assert "'lumen'" in assert_problem(response, 404, "Unknown shop")["detail"]
    assert count(app, InboundEvent) == 0


def test_only_post_is_allowed(client: FlaskClient) -> None:
    response = client.get("/webhooks/standard/atelier")

    assert_problem(response, 405)
    assert "POST" in response.headers["Allow"]
