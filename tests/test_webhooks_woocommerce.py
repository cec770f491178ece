"""POST /webhooks/woocommerce/<slug>: the ping, signatures, the status mapping, tracking meta, and
every refusal as problem+json. The body is WooCommerce's REST v3 order (examples/woocommerce-order.json)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from babel.numbers import format_currency
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from notifier.clock import FakeClock
from notifier.events import (
    Milestone,
    OrderCancelled,
    OrderPaid,
    OrderPlaced,
    OrderRef,
    Reached,
    ShipmentUpdated,
)
from notifier.models import (
    EventOutcome,
    InboundEvent,
    Message,
    MessageState,
    Order,
    OrderStatus,
    Platform,
    Shipment,
    Shop,
)
from notifier.problems import Problem
from notifier.sources import Envelope, Headers, woocommerce
from notifier.transports.memory import MemoryTransport

from .conftest import EXAMPLES, parsed, services

WOO_SECRET = "wc_kaffee_secret_0123456789abcdef"
NEW_SECRET = "wc_kaffee_rotated_fedcba9876543210"
USER_AGENT = "WooCommerce/9.4.2 Hookshot (WordPress/6.7.1)"

pytestmark = pytest.mark.usefixtures("woocommerce_shop")


# --- helpers ------------------------------------------------------------------------------


@pytest.fixture
def woocommerce_shop(app: Flask, clock: FakeClock) -> Shop:
    shop = Shop(
        slug="kaffee",
        platform=Platform.WOOCOMMERCE,
        domain=None,
        webhook_secrets=[WOO_SECRET],
        sender="Kaffeerösterei Nord <bestellung@kaffee.example>",
        support_email="hilfe@kaffee.example",
        locale="de",
        timezone="Europe/Berlin",
        return_policy_url=None,
        created_at=clock.now(),
    )
    with services(app).sessions.begin() as session:
        session.add(shop)
    return shop


def woo_order(*, tracking: bool = False, **changes: Any) -> dict[str, Any]:
    """The example order; without its tracking meta unless asked, so order tests stay orders."""
    order: dict[str, Any] = json.loads((EXAMPLES / "woocommerce-order.json").read_text())
    if not tracking:
        order["meta_data"] = [
            meta for meta in order["meta_data"] if meta["key"] != woocommerce.TRACKING_META
        ]
    order.update(changes)
    return order


def tracking_meta(*items: Any) -> dict[str, Any]:
    return {"id": 99001, "key": "_wc_shipment_tracking_items", "value": list(items)}


def woo_headers(
    body: bytes,
    *,
    topic: str = "order.updated",
    delivery_id: str | None = None,
    secret: str = WOO_SECRET,
) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    resource, _, event = topic.partition(".")
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-WC-Webhook-Source": "https://kaffee.example/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": base64.b64encode(digest).decode(),
        "X-WC-Webhook-ID": "17",
        "X-WC-Webhook-Delivery-ID": delivery_id or uuid.uuid4().hex,
    }


def post_woo(
    client: FlaskClient, order: dict[str, Any] | bytes, *, slug: str = "kaffee", **header_args: Any
) -> Any:
    body = order if isinstance(order, bytes) else json.dumps(order).encode()
    return client.post(
        f"/webhooks/woocommerce/{slug}", data=body, headers=woo_headers(body, **header_args)
    )


def count(app: Flask, model: type) -> int:
    with services(app).sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def assert_problem(response: Any, status: int, detail_part: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    problem: dict[str, Any] = response.json
    assert problem["status"] == status
    assert detail_part in problem["detail"]
    return problem


def translate(order: dict[str, Any] | bytes, topic: str = "order.updated") -> Any:
    body = order if isinstance(order, bytes) else json.dumps(order).encode()
    envelope = Envelope("d-1:0", None, topic, None, {}, "hmac-sha256 valid (secret 1 of 1)")
    return woocommerce.translate(envelope, body)


# --- orders through HTTP ------------------------------------------------------------------


def test_signed_paid_order_becomes_a_french_confirmation(
    app: Flask, client: FlaskClient, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    body = json.dumps(woo_order(status="processing", date_completed_gmt=None)).encode()
    response = client.post(
        "/webhooks/woocommerce/kaffee",
        data=body,
        headers=woo_headers(body, topic="order.created", delivery_id="5f2b9c0e" * 4),
    )

    assert response.status_code == 200
    receipt = response.json
    assert receipt["status"] == "accepted"
    assert receipt["delivery_id"].startswith("5f2b9c0e" * 4 + ":")
    assert receipt["received_at"] == "2026-11-23T09:00:00+00:00"
    assert receipt["detail"].startswith("order_confirmation planned for 2026-11-23T09:00:00")
    with services(app).sessions() as session:
        event = session.scalars(select(InboundEvent)).one()
        assert receipt["event_id"] == event.id
        assert event.body == body
        assert event.topic == "order.created"
        assert event.event_id is None
        assert event.headers["X-WC-Webhook-Delivery-ID"] == "5f2b9c0e" * 4
        assert event.headers["User-Agent"] == USER_AGENT
        assert set(event.headers) == set(woocommerce.RECORDED_HEADERS)
        assert event.verification == "hmac-sha256 valid (secret 1 of 1)"
        assert event.outcome is EventOutcome.APPLIED
        order = session.scalars(select(Order)).one()
        assert (order.external_id, order.number) == ("4827", "#4827")
        assert order.buyer_email == "camille.dubois@example.fr"
        assert order.buyer_locale_tag == "fr-FR"
        assert order.buyer_timezone == "Europe/Paris"
        assert order.total == Decimal("83.70")
        message = session.scalars(select(Message)).one()
        assert message.kind == "order_confirmation"
        assert message.locale == "fr"
        assert message.state is MessageState.SCHEDULED

    assert dispatch().sent == 1
    [mail] = mailbox.sent
    email = parsed(mail)
    assert email["Subject"] == "Commande #4827 confirmée – merci !"
    text = email.get_body(("plain",)).get_content()
    assert format_currency(Decimal("83.70"), "EUR", locale="fr") in text
    # Gross line totals (2 × 24.90), as a shop whose prices include tax showed them.
    assert f"× 2\u00a0: {format_currency(Decimal('49.80'), 'EUR', locale='fr')}" in text
    assert "Handfilter aus Porzellan & Papierfilter (100 Stk.)" in text
    assert "&amp;" not in text


@pytest.mark.parametrize(
    ("topic", "status", "outcome", "detail"),
    [
        ("order.created", "on-hold", EventOutcome.APPLIED, "order_confirmation planned for"),
        ("order.created", "processing", EventOutcome.APPLIED, "order_confirmation planned for"),
        ("order.updated", "processing", EventOutcome.APPLIED, "order_confirmation planned for"),
        ("order.updated", "completed", EventOutcome.APPLIED, "order_confirmation planned for"),
        ("order.updated", "cancelled", EventOutcome.APPLIED, "order cancelled; 0 pending"),
        (
            "order.updated",
            "refunded",
            EventOutcome.IGNORED,
            "order status 'refunded': the order was refunded; refunds are not news this "
            "service sends",
        ),
        (
            "order.created",
            "pending",
            EventOutcome.IGNORED,
            "order status 'pending': awaiting payment: the buyer has not finished checking out",
        ),
        (
            "order.updated",
            "failed",
            EventOutcome.IGNORED,
            "order status 'failed': the payment failed or was declined",
        ),
        ("order.updated", "trash", EventOutcome.IGNORED, "order status 'trash': the order is"),
        (
            "order.updated",
            "awaiting-shipment",
            EventOutcome.IGNORED,
            "order status 'awaiting-shipment' is not handled",
        ),
    ],
)
def test_each_status_maps_as_specified(
    app: Flask,
    client: FlaskClient,
    topic: str,
    status: str,
    outcome: EventOutcome,
    detail: str,
) -> None:
    paid = status in ("processing", "completed", "cancelled", "refunded", "trash")
    order = woo_order(status=status, date_paid_gmt="2026-11-23T08:41:37" if paid else None)
    response = post_woo(client, order, topic=topic)

    assert response.status_code == 200
    expected_status = "accepted" if outcome is EventOutcome.APPLIED else "ignored"
    assert response.json["status"] == expected_status
    assert response.json["detail"].startswith(detail)
    with services(app).sessions() as session:
        event = session.scalars(select(InboundEvent)).one()
        assert (event.topic, event.outcome) == (topic, outcome)
        assert event.outcome_detail == response.json["detail"]
        orders = session.scalars(select(Order)).all()
        kinds = list(session.scalars(select(Message.kind)))
    if outcome is EventOutcome.IGNORED:
        assert (orders, kinds, event.order_id) == ([], [], None)
    elif status == "cancelled":
        assert orders[0].status is OrderStatus.CANCELLED
        assert orders[0].cancelled_at == datetime(2026, 11, 23, 8, 55, 11, tzinfo=UTC)
        assert "order_confirmation" not in kinds
    else:
        assert orders[0].status is OrderStatus.OPEN
        assert kinds == ["order_confirmation"]


def test_created_then_updated_confirms_once_and_cancel_stops_it(
    app: Flask, client: FlaskClient
) -> None:
    post_woo(client, woo_order(status="on-hold", date_paid_gmt=None), topic="order.created")
    paid = post_woo(client, woo_order(status="processing"), topic="order.updated")
    assert paid.json["detail"] == "order_confirmation already planned"

    cancelled = post_woo(client, woo_order(status="cancelled"), topic="order.updated")
    assert cancelled.json["detail"].startswith("order cancelled; 1 pending message(s) cancelled")
    with services(app).sessions() as session:
        confirmation = session.scalars(
            select(Message).where(Message.kind == "order_confirmation")
        ).one()
        assert confirmation.state is MessageState.CANCELLED
    assert count(app, InboundEvent) == 3


def test_the_same_delivery_twice_changes_nothing(app: Flask, client: FlaskClient) -> None:
    order = woo_order(status="processing")
    first = post_woo(client, order, delivery_id="a1" * 16)
    again = post_woo(client, order, delivery_id="a1" * 16)

    assert again.status_code == 200
    assert again.json["status"] == "duplicate"
    assert again.json["detail"] == "already received; nothing changed"
    assert again.json["event_id"] == first.json["event_id"]
    assert count(app, InboundEvent) == 1
    assert count(app, Message) == 1


def test_one_delivery_id_for_two_orders_in_the_same_second_keeps_both(
    app: Flask, client: FlaskClient
) -> None:
    """WooCommerce's delivery id is wp_hash(webhook id . current second): it repeats."""
    first = post_woo(client, woo_order(status="processing"), delivery_id="b2" * 16)
    other = woo_order(status="processing", id=4828, number="4828")
    second = post_woo(client, other, delivery_id="b2" * 16)

    assert (first.json["status"], second.json["status"]) == ("accepted", "accepted")
    assert first.json["delivery_id"] != second.json["delivery_id"]
    assert count(app, Order) == 2
    assert count(app, Message) == 2


@pytest.mark.parametrize(
    ("topic", "body", "reason"),
    [
        (
            "product.updated",
            {"id": 512, "name": "Espresso Nocturne"},
            "only order topics are handled",
        ),
        (
            "customer.created",
            {"id": 118, "email": "x@example.org"},
            "only order topics are handled",
        ),
        (
            "order.deleted",
            {"id": 4827},
            "the order was moved to the trash; the delivery carries only its id",
        ),
        (
            "action.woocommerce_low_stock",
            {"action": "x", "arg": 1},
            "only order topics are handled",
        ),
    ],
)
def test_other_topics_are_recorded_and_ignored(
    app: Flask, client: FlaskClient, topic: str, body: dict[str, Any], reason: str
) -> None:
    response = post_woo(client, body, topic=topic)

    assert response.status_code == 200
    assert response.json["status"] == "ignored"
    assert response.json["detail"] == f"topic {topic!r} is not handled: {reason}"
    with services(app).sessions() as session:
        event = session.scalars(select(InboundEvent)).one()
        assert (event.topic, event.outcome) == (topic, EventOutcome.IGNORED)


# --- the ping and signatures --------------------------------------------------------------


def test_webhook_ping_is_answered_200_and_not_stored(app: Flask, client: FlaskClient) -> None:
    # As WooCommerce sends it on saving a webhook: form-encoded, no X-WC-* headers, unsigned.
    response = client.post(
        "/webhooks/woocommerce/kaffee",
        data=b"webhook_id=17",
        headers={"User-Agent": USER_AGENT, "Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 200
    assert response.json["status"] == "ignored"
    assert "ping" in response.json["detail"]
    assert count(app, InboundEvent) == 0


def test_ping_for_an_unknown_shop_is_404(client: FlaskClient) -> None:
    response = client.post("/webhooks/woocommerce/someone-else", data=b"webhook_id=17")

    assert_problem(response, 404, "'someone-else'")


def test_unsigned_order_is_401_and_stores_nothing(app: Flask, client: FlaskClient) -> None:
    body = json.dumps(woo_order()).encode()
    headers = woo_headers(body)
    del headers["X-WC-Webhook-Signature"]
    response = client.post("/webhooks/woocommerce/kaffee", data=body, headers=headers)

    assert_problem(response, 401, "The X-WC-Webhook-Signature header is required.")
    assert count(app, InboundEvent) == 0


def test_a_ping_shaped_body_with_a_topic_still_needs_a_signature(client: FlaskClient) -> None:
    headers = woo_headers(b"webhook_id=17")
    del headers["X-WC-Webhook-Signature"]
    response = client.post("/webhooks/woocommerce/kaffee", data=b"webhook_id=17", headers=headers)

    assert_problem(response, 401, "X-WC-Webhook-Signature header is required")


def test_wrong_signature_is_401_and_stores_nothing(app: Flask, client: FlaskClient) -> None:
    response = post_woo(client, woo_order(), secret="not_the_kaffee_secret_at_all")

    assert_problem(response, 401, "X-WC-Webhook-Signature does not match the body")
    assert count(app, InboundEvent) == 0
    assert count(app, Order) == 0


def test_a_signature_over_other_bytes_is_401(client: FlaskClient) -> None:
    body = json.dumps(woo_order()).encode()
    headers = woo_headers(body)
    response = client.post(
        "/webhooks/woocommerce/kaffee", data=body.replace(b"83.70", b"0.01"), headers=headers
    )

    assert_problem(response, 401, "does not match")


def test_a_rotated_secret_still_verifies(app: Flask, client: FlaskClient) -> None:
    with services(app).sessions.begin() as session:
        shop = session.scalars(select(Shop)).one()
        shop.webhook_secrets = [NEW_SECRET, *shop.webhook_secrets]
    old = post_woo(client, woo_order(status="processing"))
    new = post_woo(client, woo_order(status="processing"), secret=NEW_SECRET)

    assert (old.status_code, new.status_code) == (200, 200)
    with services(app).sessions() as session:
        verdicts = list(
            session.scalars(select(InboundEvent.verification).order_by(InboundEvent.id))
        )
    assert verdicts == ["hmac-sha256 valid (secret 2 of 2)", "hmac-sha256 valid (secret 1 of 2)"]


@pytest.mark.parametrize("header", ["X-WC-Webhook-Topic", "X-WC-Webhook-Delivery-ID"])
def test_a_signed_delivery_without_topic_or_delivery_id_is_400(
    app: Flask, client: FlaskClient, header: str
) -> None:
    body = json.dumps(woo_order()).encode()
    headers = woo_headers(body)
    del headers[header]
    response = client.post("/webhooks/woocommerce/kaffee", data=body, headers=headers)

    assert_problem(response, 400, f"The {header} header is required.")
    assert count(app, InboundEvent) == 0


# --- refusals -----------------------------------------------------------------------------


def test_unknown_shop_is_404(client: FlaskClient) -> None:
    assert_problem(
        post_woo(client, woo_order(), slug="nobody"),
        404,
        "No woocommerce shop has slug 'nobody'.",
    )


@pytest.mark.usefixtures("standard_shop")
def test_a_shop_of_another_platform_is_404(client: FlaskClient) -> None:
    assert_problem(post_woo(client, woo_order(), slug="atelier"), 404, "'atelier'")


def test_signed_garbage_is_400(app: Flask, client: FlaskClient) -> None:
    assert_problem(post_woo(client, b'{"id": 4827, "status": '), 400, "not valid JSON")
    assert count(app, InboundEvent) == 0


def test_schema_errors_are_422_naming_each_field(app: Flask, client: FlaskClient) -> None:
    order = woo_order(total="lots", currency="Euro")
    order["line_items"][1]["quantity"] = -1
    order["billing"]["email"] = ["camille@example.fr"]
    response = post_woo(client, order)

    problem = assert_problem(response, 422, "Field 'currency'")
    fields = {error["field"] for error in problem["errors"]}
    assert fields == {"currency", "total", "line_items.1.quantity", "billing.email"}
    assert count(app, InboundEvent) == 0


def test_missing_date_created_gmt_is_422(client: FlaskClient) -> None:
    order = woo_order()
    del order["date_created_gmt"]

    assert_problem(post_woo(client, order), 422, "Field 'date_created_gmt': Field required.")


@pytest.mark.parametrize("body", [b"[]", b"null", b'"order"', b"{}", b"webhook_id=17"])
def test_a_signed_order_topic_that_is_not_an_order_is_4xx(client: FlaskClient, body: bytes) -> None:
    response = post_woo(client, body)

    assert response.status_code in (400, 422)
    assert response.mimetype == "application/problem+json"


def test_nul_and_oversized_text_are_422(client: FlaskClient) -> None:
    order = woo_order()
    order["line_items"][0]["name"] = "Espresso\x00"
    order["shipping"]["city"] = "L" * 201

    problem = assert_problem(post_woo(client, order), 422, "Field")
    assert {error["field"] for error in problem["errors"]} == {
        "line_items.0.name",
        "shipping.city",
    }


def test_a_malformed_tracking_item_is_422_naming_its_path(client: FlaskClient) -> None:
    order = woo_order()
    order["meta_data"].append(tracking_meta({"tracking_number": {"no": "object"}}))
    index = len(order["meta_data"]) - 1

    problem = assert_problem(post_woo(client, order), 422, "Field")
    assert [error["field"] for error in problem["errors"]] == [
        f"meta_data.{index}._wc_shipment_tracking_items.value.0.tracking_number"
    ]


def test_values_the_database_could_hold_only_just_are_stored(
    app: Flask, client: FlaskClient
) -> None:
    order = woo_order(tracking=True, id="9" * 64, number="N" * 63)
    order["meta_data"].append(
        tracking_meta(
            {
                "custom_tracking_provider": "C" * 200,
                "custom_tracking_link": "https://t.example/" + "x" * 1982,
                "tracking_number": "7" * 100,
                "tracking_id": "i" * 200,
            }
        )
    )
    response = post_woo(client, order)

    assert response.status_code == 200, response.json
    with services(app).sessions() as session:
        assert session.scalars(select(Order.number)).one() == "#" + "N" * 63


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("number", "N" * 64),
        ("date_created_gmt", "0001-01-01T00:00:00+01:00"),
        ("date_paid_gmt", "9999-12-31T23:59:59-05:00"),
    ],
)
def test_values_the_database_could_not_hold_are_refused_by_name(
    client: FlaskClient, field: str, value: str
) -> None:
    assert_problem(post_woo(client, woo_order(**{field: value})), 422, f"Field '{field}'")


# --- translate(), unit by unit ------------------------------------------------------------


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
ORDER_FIELDS = [
    "id", "number", "status", "currency", "date_created_gmt", "date_modified_gmt",
    "date_paid_gmt", "prices_include_tax", "total", "shipping_total", "billing", "shipping",
    "line_items", "meta_data",
]  # fmt: skip
ITEM_FIELDS = ["name", "parent_name", "quantity", "subtotal", "subtotal_tax", "price", "sku"]
TRACKING_FIELDS = [
    "tracking_provider", "custom_tracking_provider", "custom_tracking_link", "tracking_number",
    "date_shipped", "tracking_id",
]  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    where=st.sampled_from(["order", "item", "tracking", "tracking value"]),
    field=st.integers(min_value=0, max_value=100),
    value=json_values,
)
def test_any_value_anywhere_is_news_or_a_4xx_problem(where: str, field: int, value: Any) -> None:
    order = woo_order(tracking=True)
    if where == "order":
        order[ORDER_FIELDS[field % len(ORDER_FIELDS)]] = value
    elif where == "item":
        order["line_items"][0][ITEM_FIELDS[field % len(ITEM_FIELDS)]] = value
    elif where == "tracking":
        order["meta_data"][-1]["value"][0][TRACKING_FIELDS[field % len(TRACKING_FIELDS)]] = value
    else:
        order["meta_data"][-1]["value"] = value
    assert outcome(order) in ("news", "ignored", "problem 400", "problem 422")


def outcome(order: dict[str, Any]) -> str:
    """What translate() made of an order, in a word; anything but a Problem propagates."""
    try:
        translation = translate(order)
    except Problem as problem:
        return f"problem {problem.status}" if problem.detail else "a problem without detail"
    if translation.events:
        return "news"
    return "ignored" if translation.ignored_because else "nothing, and no reason"


@pytest.mark.parametrize(
    ("topic", "status", "paid_at", "expected"),
    [
        ("order.created", "on-hold", None, OrderPlaced),
        ("order.created", "on-hold", "2026-11-23T08:41:37", OrderPaid),
        ("order.created", "processing", "2026-11-23T08:41:37", OrderPaid),
        ("order.updated", "on-hold", None, OrderPlaced),
        ("order.updated", "processing", None, OrderPaid),  # Cash on delivery: paid later
        ("order.updated", "completed", "2026-11-23T08:41:37", OrderPaid),
        ("order.updated", "partial-shipped", "2026-11-23T08:41:37", OrderPaid),
        ("order.updated", "awaiting-shipment", "2026-11-23T08:41:37", OrderPaid),  # a plugin's
        ("order.restored", "processing", "2026-11-23T08:41:37", OrderPaid),
        ("order.updated", "cancelled", None, OrderCancelled),
    ],
)
def test_translate_maps_status_to_the_order_event(
    topic: str, status: str, paid_at: str | None, expected: type
) -> None:
    translation = translate(woo_order(status=status, date_paid_gmt=paid_at), topic)

    assert translation.ignored_because is None
    assert [type(event) for event in translation.events] == [expected]
    assert translation.topic == topic


def test_cancelled_order_is_only_a_cancellation_whatever_its_tracking_says() -> None:
    translation = translate(woo_order(status="cancelled", tracking=True))

    [event] = translation.events
    assert isinstance(event, OrderCancelled)
    assert event.reason is None
    assert event.occurred_at == datetime(2026, 11, 23, 8, 55, 11, tzinfo=UTC)


def test_naive_gmt_times_are_read_as_utc_and_local_times_ignored() -> None:
    order = woo_order(
        date_created="2026-11-23T03:41:05",  # site time (here New York): never read
        date_modified_gmt=None,
    )
    [event] = translate(order).events

    assert event.order.placed_at == datetime(2026, 11, 23, 8, 41, 5, tzinfo=UTC)
    # Without date_modified_gmt the order's creation is when it happened.
    assert event.occurred_at == event.order.placed_at


def test_snapshot_amounts_are_what_the_buyer_saw() -> None:
    [event] = translate(woo_order()).events
    snapshot = event.order

    assert snapshot.currency == "EUR"
    # prices_include_tax: gross lines, shipping and discount; total_tax as the tax line.
    assert [item.unit_price for item in snapshot.line_items] == [
        Decimal("24.90"),
        Decimal("29.00"),
    ]
    assert (snapshot.subtotal, snapshot.shipping, snapshot.discount, snapshot.tax) == (
        Decimal("78.80"),
        Decimal("9.90"),
        Decimal("5.00"),
        Decimal("8.25"),
    )
    assert snapshot.total == Decimal("83.70")
    espresso, dripper = snapshot.line_items
    assert (espresso.title, espresso.variant, espresso.quantity, espresso.sku) == (
        "Espresso Nocturne",
        "1 kg, Ganze Bohne",
        2,
        "ESP-NOC-1000-B",
    )
    assert (dripper.title, dripper.variant) == (
        "Handfilter aus Porzellan & Papierfilter (100 Stk.)",
        None,
    )
    assert snapshot.status_url is None
    address = snapshot.shipping_address
    assert address is not None
    assert address.lines == ("14 rue de la République", "Bâtiment B, 3e étage")
    assert (address.postal_code, address.city, address.country_code) == ("69002", "Lyon", "FR")
    assert snapshot.buyer.name == "Camille Dubois"


def test_net_prices_and_an_unrounded_price_float() -> None:
    order = woo_order(
        prices_include_tax=False,
        shipping={
            "first_name": "Ana",
            "last_name": "Lima",
            "address_1": "Rua Augusta 10",
            "city": "São Paulo",
            "state": "SP",
            "postcode": "01305-000",
            "country": "br",
        },
    )
    order["line_items"][0].update(subtotal="10.00", subtotal_tax="0.00", quantity=3)
    order["line_items"][1].update(subtotal=None, price=3.3333333333333335)
    [event] = translate(order).events
    snapshot = event.order

    assert [item.unit_price for item in snapshot.line_items] == [
        Decimal("3.3333"),
        Decimal("3.3333"),
    ]
    assert (snapshot.shipping, snapshot.discount) == (Decimal("8.25"), Decimal("4.17"))
    assert snapshot.buyer.name == "Ana Lima"
    assert snapshot.shipping_address is not None
    assert (snapshot.shipping_address.region_code, snapshot.shipping_address.country_code) == (
        "SP",
        "BR",
    )


def test_a_state_that_is_free_text_is_a_region_name() -> None:
    order = woo_order()
    order["shipping"].update(country="GB", state="Greater London", city="London")
    [event] = translate(order).events

    address = event.order.shipping_address
    assert (address.region, address.region_code) == ("Greater London", None)


def test_no_shipping_address_and_no_billing_name() -> None:
    empty = dict.fromkeys(("first_name", "last_name", "address_1", "city", "country"), "")
    order = woo_order(shipping=empty, billing={**empty, "email": ""})
    [event] = translate(order).events

    assert event.order.shipping_address is None
    assert event.order.buyer.email is None
    assert event.order.buyer.name is None


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ([{"id": 1, "key": "wpml_language", "value": "pt-br"}], "pt-br"),
        ([{"id": 1, "key": "trp_language", "value": "de_AT"}], "de-AT"),
        ([{"id": 1, "key": "wpml_language", "value": ""}], None),
        ([{"id": 1, "key": "wpml_language", "value": {"code": "fr"}}], None),
        ([{"id": 1, "key": "trp_language", "value": "<script>"}], None),
        ([{"id": 1, "key": "pll_language", "value": "es"}], None),
        ([], None),
    ],
)
def test_the_buyer_language_comes_from_a_multilingual_plugin(
    meta: list[dict[str, Any]], expected: str | None
) -> None:
    [event] = translate(woo_order(meta_data=meta)).events

    assert event.order.buyer.locale_tag == expected


def test_meta_this_service_does_not_read_may_hold_any_json() -> None:
    odd: list[Any] = [None, 0, 3.5, True, "text\x00with NUL", [1, [2]], {"a": {"b": None}}]
    meta = [{"id": n, "key": f"_plugin_{n}", "value": value} for n, value in enumerate(odd)]
    meta.append({"id": 99, "value": "no key at all"})
    meta.append({"id": 98, "key": ["not", "a", "string"], "value": 1})
    translation = translate(woo_order(meta_data=meta))

    assert [type(event) for event in translation.events] == [OrderPaid]


def test_tracking_items_become_one_shipment_news_each() -> None:
    order = woo_order(tracking=True)
    shipped_day = datetime(2026, 11, 23, tzinfo=UTC)
    order["meta_data"][-1]["value"] += [
        {  # A custom provider: its own name and link win.
            "tracking_provider": "",
            "custom_tracking_provider": "Kurierdienst Rhein",
            "custom_tracking_link": "https://track.rhein-kurier.example/?id=RK-77",
            "tracking_number": "RK-77",
            "date_shipped": 1795478400,
            "tracking_id": "9a1f",
        },
        {  # An older writer: no tracking_id, a bare date.
            "tracking_provider": "usps",
            "custom_tracking_provider": False,
            "custom_tracking_link": False,
            "tracking_number": "9400 1000 0000 0000 0000 00",
            "date_shipped": "2026-11-24",
        },
        {  # An unknown slug: a readable name and no guessed link; no ship date.
            "tracking_provider": "speedy-parcel-gr",
            "tracking_number": 123456789,
        },
        {"tracking_provider": "dhl", "tracking_number": ""},  # nothing names this parcel
        {  # A link that is no web link never reaches an email.
            "custom_tracking_provider": "Trickster",
            "custom_tracking_link": "javascript:alert(1)",
            "tracking_number": "T-1",
        },
    ]
    translation = translate(order)

    paid, *shipments = translation.events
    assert isinstance(paid, OrderPaid)
    assert all(isinstance(news, ShipmentUpdated) for news in shipments)
    ref = OrderRef(external_id="4827", number="#4827")
    assert [
        (
            news.order,
            news.shipment_id,
            news.as_of,
            news.reached,
            news.carrier,
            news.tracking_number,
            news.tracking_url,
            news.destination_country,
        )
        for news in shipments
    ] == [
        (
            ref,
            "cb3ae1e39fb94991222b96c59cb586a5",
            shipped_day,
            (Reached(Milestone.SHIPPED, shipped_day),),
            "Deutsche Post DHL",
            "00340434161094042557",
            "https://www.dhl.de/de/privatkunden/pakete-empfangen/verfolgen.html"
            "?piececode=00340434161094042557",
            "FR",
        ),
        (
            ref,
            "9a1f",
            datetime(2026, 11, 24, tzinfo=UTC),
            (Reached(Milestone.SHIPPED, datetime(2026, 11, 24, tzinfo=UTC)),),
            "Kurierdienst Rhein",
            "RK-77",
            "https://track.rhein-kurier.example/?id=RK-77",
            "FR",
        ),
        (
            ref,
            "9400 1000 0000 0000 0000 00",
            datetime(2026, 11, 24, tzinfo=UTC),
            (Reached(Milestone.SHIPPED, datetime(2026, 11, 24, tzinfo=UTC)),),
            "USPS",
            "9400 1000 0000 0000 0000 00",
            "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400%201000%200000%200000%200000%2000",
            "FR",
        ),
        (
            ref,
            "123456789",
            datetime(2026, 11, 23, 8, 55, 10, tzinfo=UTC),  # date_completed_gmt stands in
            (Reached(Milestone.SHIPPED, datetime(2026, 11, 23, 8, 55, 10, tzinfo=UTC)),),
            "Speedy Parcel Gr",
            "123456789",
            None,
            "FR",
        ),
        (
            ref,
            "T-1",
            datetime(2026, 11, 23, 8, 55, 10, tzinfo=UTC),
            (Reached(Milestone.SHIPPED, datetime(2026, 11, 23, 8, 55, 10, tzinfo=UTC)),),
            "Trickster",
            "T-1",
            None,
            "FR",
        ),
    ]


@pytest.mark.parametrize(
    "value",
    [
        # A PHP array with a gap (an item deleted) is a JSON object.
        {"1": {"tracking_provider": "ups", "tracking_number": "1Z999", "tracking_id": "u1"}},
        [
            {"tracking_provider": "ups", "tracking_number": "1Z999", "tracking_id": "u1"},
            {"tracking_provider": "ups", "tracking_number": "1Z999", "tracking_id": "u1"},
        ],
    ],
)
def test_sparse_or_repeated_tracking_items(value: Any) -> None:
    order = woo_order()
    order["meta_data"].append({"id": 7, "key": "_wc_shipment_tracking_items", "value": value})
    _, news = translate(order).events

    assert (news.shipment_id, news.carrier, news.tracking_url) == (
        "u1",
        "UPS",
        "https://www.ups.com/track?tracknum=1Z999",
    )


@pytest.mark.parametrize("value", ["", None, False, []])
def test_empty_tracking_meta_is_no_news(value: Any) -> None:
    order = woo_order()
    order["meta_data"].append({"id": 7, "key": "_wc_shipment_tracking_items", "value": value})

    assert [type(event) for event in translate(order).events] == [OrderPaid]


@pytest.mark.parametrize("date_shipped", ["0", "soon", "99999999999999999999", -5, True])
def test_an_unreadable_ship_date_falls_back_to_the_order(date_shipped: Any) -> None:
    order = woo_order()
    order["meta_data"].append(
        tracking_meta({"tracking_number": "X1", "date_shipped": date_shipped})
    )
    _, news = translate(order).events

    assert news.as_of == datetime(2026, 11, 23, 8, 55, 10, tzinfo=UTC)


def test_verify_unit_rules() -> None:
    body = json.dumps(woo_order()).encode()
    envelope = woocommerce.verify(
        Headers(woo_headers(body, delivery_id="c3" * 16)),
        body,
        ["other-secret-xxxxxxx", WOO_SECRET],
    )
    assert envelope.topic == "order.updated"
    assert envelope.event_id is None
    assert envelope.occurred_at is None
    assert envelope.delivery_id == "c3" * 16 + ":" + hashlib.sha256(body).hexdigest()[:16]
    assert envelope.verification == "hmac-sha256 valid (secret 2 of 2)"

    ping = woocommerce.verify(Headers({"User-Agent": USER_AGENT}), b"webhook_id=42\n", [WOO_SECRET])
    assert (ping.topic, ping.delivery_id, ping.verification) == (
        None,
        "ping-42",
        "unsigned ping; nothing stored",
    )
    with pytest.raises(Problem) as refused:
        woocommerce.verify(Headers({}), b"webhook_id=42&x=1", [WOO_SECRET])
    assert refused.value.status == 401


# --- shipping news end to end (depends on the shipment journey being rewritten) -------------


def test_end_to_end_tracking_item_plans_a_shipment_shipped_email(
    app: Flask, client: FlaskClient, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    """A completed order carrying Shipment Tracking meta: confirmation and "shipped" both planned.

    This is the one test that relies on notifier/journey.py handling ShipmentUpdated.
    """
    response = post_woo(client, woo_order(tracking=True), topic="order.updated")

    assert response.status_code == 200, response.json
    assert response.json["status"] == "accepted"
    with services(app).sessions() as session:
        shipment = session.scalars(select(Shipment)).one()
        assert shipment.external_id == "cb3ae1e39fb94991222b96c59cb586a5"
        assert shipment.carrier == "Deutsche Post DHL"
        assert shipment.tracking_number == "00340434161094042557"
        assert shipment.tracking_url is not None
        assert shipment.milestone == Milestone.SHIPPED
        kinds = sorted(session.scalars(select(Message.kind)))
    assert {"order_confirmation", "shipment_shipped"} <= set(kinds), kinds

    # The same order again (a later edit) re-sends the same tracking: nothing new is planned.
    again = post_woo(client, woo_order(tracking=True, date_modified_gmt="2026-11-23T09:30:00"))
    assert again.json["status"] == "accepted"
    with services(app).sessions() as session:
        assert sorted(session.scalars(select(Message.kind))) == kinds

    dispatch()
    texts = [parsed(mail).get_body(("plain",)).get_content() for mail in mailbox.sent]
    assert any("00340434161094042557" in text for text in texts)
