"""Whole shipment journeys replayed through the HTTP endpoints, with the clock moved between news.

The fixtures are the examples in `examples/` (a Shopify order, fulfilment and fulfilment event; a
standard order and shipment), changed only where a journey needs it. Each test reads what the
buyer received, in order, and what the record says about what was not sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from notifier.clock import FakeClock
from notifier.models import PLANNED_ORDER, Message, MessageState, Order, Shipment
from notifier.transports.memory import MemoryTransport

from .conftest import EXAMPLES, parsed, post_shopify, services, shopify_order
from .test_webhooks_standard import post_standard

ORDER_ID = 5523487293612
FULFILMENT_ID = 4890034962604


def example(name: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    data.update(changes)
    return data


def fulfilment(**changes: Any) -> dict[str, Any]:
    return example("shopify-fulfillment.json", **changes)


def scan(status: str, happened_at: str, **changes: Any) -> dict[str, Any]:
    """A fulfilment event (one carrier scan) with a fresh id."""
    event_id = abs(hash((status, happened_at))) % 10**12
    return example(
        "shopify-fulfillment-event.json",
        id=event_id,
        status=status,
        happened_at=happened_at,
        created_at=happened_at,
        updated_at=happened_at,
        **changes,
    )


def post_fulfilment(client: FlaskClient, body: dict[str, Any], **headers: Any) -> Any:
    return post_shopify(client, body, topic="fulfillments/create", **headers)


def post_scan(client: FlaskClient, body: dict[str, Any], **headers: Any) -> Any:
    return post_shopify(client, body, topic="fulfillment_events/create", **headers)


def sent_kinds(app: Flask, mailbox: MemoryTransport) -> list[str]:
    """The kinds of the emails the buyer received, in the order they were handed over."""
    ids = [mail.message_id for mail in mailbox.sent]
    with services(app).sessions() as session:
        kinds = {m.rfc_message_id: m.kind for m in session.scalars(select(Message))}
    return [kinds[rfc_id] for rfc_id in ids]


def messages(app: Flask, kind: str | None = None) -> list[Message]:
    with services(app).sessions() as session:
        query = select(Message).order_by(*PLANNED_ORDER)
        if kind:
            query = query.where(Message.kind == kind)
        return list(session.scalars(query))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


pytestmark = pytest.mark.usefixtures("shopify_shop")


# --- a German buyer, through the standard format's cross-border milestones --------------------


@pytest.mark.usefixtures("standard_shop")
def test_german_buyer_follows_the_parcel_across_the_border_in_order(
    app: Flask,
    client: FlaskClient,
    clock: FakeClock,
    dispatch: Callable,
    mailbox: MemoryTransport,
) -> None:
    assert post_standard(client, clock, example("standard-order.json")).status_code == 200
    journey = [
        ("shipped", "2026-11-24T10:05:00+08:00", "Shenzhen", "CN"),
        ("in_transit", "2026-11-24T22:40:00+08:00", "Shenzhen hub", "CN"),
        ("departed_origin", "2026-11-25T03:10:00+08:00", "Hong Kong", "HK"),
        ("arrived_destination", "2026-11-26T06:05:00+01:00", "Frankfurt am Main", "DE"),
        ("out_for_delivery", "2026-11-28T08:02:00+01:00", "Köln", "DE"),
        ("delivered", "2026-11-28T13:47:00+01:00", "Köln", "DE"),
    ]
    for status, happened_at, location, country in journey:
        clock.set(max(clock.now(), at(happened_at)) + timedelta(minutes=2))
        news = example("standard-shipment.json")
        news["data"]["shipment"].update(
            status=status, occurred_at=happened_at, location=location, country_code=country
        )
        response = post_standard(client, clock, news)
        assert response.status_code == 200, response.json
        # Every milestone falls inside the buyer's day or waits for it: let the day come.
        clock.set(clock.now() + timedelta(hours=12))
        dispatch()

    assert sent_kinds(app, mailbox) == [
        "order_confirmation",
        "shipment_shipped",
        "departed_origin",
        "arrived_destination",
        "out_for_delivery",
        "delivered",
    ]
    assert {m.locale for m in messages(app)} == {"de"}
    subjects = [parsed(mail)["Subject"] for mail in mailbox.sent]
    assert all("2093" in subject for subject in subjects)
    body = parsed(mailbox.sent[1]).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "LP00612345678901" in body
    with services(app).sessions() as session:
        shipment = session.scalars(select(Shipment)).one()
    assert shipment.milestone == "delivered"
    assert [step["milestone"] for step in shipment.journey] == [s[0] for s in journey]
    # Delivered ends the journey: no reassurance is left waiting for a silence.
    assert [m.state for m in messages(app, "shipment_delayed")] == [MessageState.CANCELLED] * 4


# --- a Japanese buyer whose carrier reports out of order, twice ---------------------------------


def japanese_order() -> dict[str, Any]:
    order = shopify_order(customer_locale="ja", email="haruka@example.jp")
    order["shipping_address"].update(
        first_name="Haruka",
        last_name="Sato",
        name="Haruka Sato",
        address1="1-2-3 Shibuya",
        address2=None,
        city="Shibuya-ku",
        province="Tokyo",
        province_code="JP-13",
        zip="150-0002",
        country="Japan",
        country_code="JP",
    )
    return order


def test_late_out_for_delivery_after_delivered_twice_sends_one_delivered(
    app: Flask,
    client: FlaskClient,
    clock: FakeClock,
    dispatch: Callable,
    mailbox: MemoryTransport,
) -> None:
    post_shopify(client, japanese_order())
    clock.set(at("2026-11-24T16:05:00+08:00"))
    post_fulfilment(client, fulfilment())
    dispatch()
    assert sent_kinds(app, mailbox) == ["order_confirmation", "shipment_shipped"]

    clock.set(at("2026-11-27T10:42:00+09:00"))
    delivered = scan("delivered", "2026-11-27T10:40:00+09:00", city="Shibuya-ku", country="Japan")
    first = post_scan(client, delivered, webhook_id="wh-delivered")
    retry = post_scan(client, delivered, webhook_id="wh-delivered")
    twin = post_scan(client, delivered, webhook_id="wh-delivered-again")
    late = post_scan(client, scan("out_for_delivery", "2026-11-27T08:10:00+09:00"))
    dispatch()
    clock.advance(timedelta(days=1))
    dispatch()

    assert first.json["status"] == "accepted"
    assert retry.json["status"] == "duplicate"
    assert twin.json["detail"] == "shipment JD014600006281230704: nothing new"
    assert "older than what is known" in late.json["detail"]
    assert sent_kinds(app, mailbox) == ["order_confirmation", "shipment_shipped", "delivered"]
    assert messages(app, "out_for_delivery") == []
    delivered_mail = parsed(mailbox.sent[-1])
    assert delivered_mail["To"].addresses[0].addr_spec == "haruka@example.jp"
    assert messages(app, "delivered")[0].locale == "ja"


# --- an overnight burst in the buyer's timezone ---------------------------------------------


def test_overnight_burst_sends_only_the_news_that_is_still_true(
    app: Flask,
    client: FlaskClient,
    clock: FakeClock,
    dispatch: Callable,
    mailbox: MemoryTransport,
) -> None:
    post_shopify(client, shopify_order())
    dispatch()
    # 01:00 in Berlin: shipped waits for 09:00.
    clock.set(at("2026-11-26T01:00:00+01:00"))
    post_fulfilment(client, fulfilment(created_at="2026-11-26T01:00:00+01:00", updated_at=None))
    dispatch()
    [shipped] = messages(app, "shipment_shipped")
    assert shipped.due_at == at("2026-11-26T09:00:00+01:00")
    assert shipped.reason.startswith("01:00 Europe/Berlin is outside 09:00-21:00")

    # 07:30: out for delivery may be read from 07:00; it replaces the waiting shipped news.
    clock.set(at("2026-11-26T07:30:00+01:00"))
    post_scan(client, scan("out_for_delivery", "2026-11-26T07:29:00+01:00"))
    dispatch()
    # 08:40: delivered waits for 09:00.
    clock.set(at("2026-11-26T08:40:00+01:00"))
    post_scan(client, scan("delivered", "2026-11-26T08:38:00+01:00"))
    dispatch()
    assert sent_kinds(app, mailbox) == ["order_confirmation", "out_for_delivery"]
    clock.set(at("2026-11-26T09:00:00+01:00"))
    dispatch()

    assert sent_kinds(app, mailbox) == ["order_confirmation", "out_for_delivery", "delivered"]
    [shipped] = messages(app, "shipment_shipped")
    assert shipped.state is MessageState.SUPERSEDED
    assert shipped.reason == (
        "superseded by newer news: out_for_delivery at 2026-11-26T07:29:00+01:00"
    )
    # The one email that went out before delivery carries the tracking the buyer never got.
    text = parsed(mailbox.sent[1]).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "JD014600006281230704" in text


def test_a_burst_while_nothing_was_sent_yet_sends_the_last_news_only(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    post_shopify(client, shopify_order())
    dispatch()
    clock.set(at("2026-11-26T01:00:00+01:00"))
    post_fulfilment(client, fulfilment(created_at="2026-11-26T01:00:00+01:00", updated_at=None))
    clock.set(at("2026-11-26T06:10:00+01:00"))
    post_scan(client, scan("out_for_delivery", "2026-11-26T06:05:00+01:00"))
    clock.set(at("2026-11-26T06:50:00+01:00"))
    post_scan(client, scan("delivered", "2026-11-26T06:45:00+01:00"))
    clock.set(at("2026-11-26T09:00:00+01:00"))
    dispatch()

    assert sent_kinds(app, mailbox) == ["order_confirmation", "delivered"]
    states = {m.kind: m.state for m in messages(app) if m.kind != "shipment_delayed"}
    assert states == {
        "order_confirmation": MessageState.SENT,
        "shipment_shipped": MessageState.SUPERSEDED,
        "out_for_delivery": MessageState.SUPERSEDED,
        "delivered": MessageState.SENT,
        # The sample order says nothing about marketing email: no survey, and the record says so.
        "delivery_survey": MessageState.SUPPRESSED,
    }


def test_out_for_delivery_too_late_for_the_window_is_not_sent_the_next_day(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    post_shopify(client, shopify_order())
    dispatch()
    # Shipped late in the evening: it waits for 09:00, and must still go out then.
    clock.set(at("2026-11-26T21:20:00+01:00"))
    post_fulfilment(client, fulfilment(created_at="2026-11-26T21:20:00+01:00", updated_at=None))
    clock.set(at("2026-11-26T21:40:00+01:00"))
    response = post_scan(client, scan("out_for_delivery", "2026-11-26T21:35:00+01:00"))
    clock.set(at("2026-11-27T12:00:00+01:00"))
    dispatch()

    assert sent_kinds(app, mailbox) == ["order_confirmation", "shipment_shipped"]
    [late] = messages(app, "out_for_delivery")
    assert late.state is MessageState.CANCELLED
    assert late.reason == (
        "out_for_delivery on 2026-11-26 could only reach the buyer on 2026-11-27 "
        "(Europe/Berlin), when it would no longer be true"
    )
    assert "not sent" in response.json["detail"]


# --- cancellation --------------------------------------------------------------------------


def test_cancelled_order_sends_no_shipping_news_after_the_cancellation(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    post_shopify(client, shopify_order())
    dispatch()
    clock.set(at("2026-11-24T01:30:00+01:00"))
    post_fulfilment(client, fulfilment(created_at="2026-11-24T01:30:00+01:00", updated_at=None))
    clock.set(at("2026-11-24T07:00:00+01:00"))
    cancelled = shopify_order(cancelled_at="2026-11-24T07:00:00+01:00", cancel_reason="customer")
    response = post_shopify(client, cancelled, topic="orders/cancelled")
    clock.set(at("2026-11-25T11:00:00+01:00"))
    late = post_scan(client, scan("out_for_delivery", "2026-11-25T10:58:00+01:00"))
    clock.set(at("2026-11-25T15:00:00+01:00"))
    dispatch()

    assert "1 pending message(s) cancelled" in response.json["detail"]
    assert late.json["detail"].endswith("the order is cancelled; news recorded, not sent")
    assert sent_kinds(app, mailbox) == ["order_confirmation", "order_cancelled"]
    [shipped] = messages(app, "shipment_shipped")
    assert (shipped.state, shipped.reason) == (MessageState.CANCELLED, "order cancelled (customer)")


def test_a_withdrawn_fulfilment_cancels_its_waiting_news(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    post_shopify(client, shopify_order())
    dispatch()
    clock.set(at("2026-11-24T02:00:00+01:00"))
    post_fulfilment(client, fulfilment(created_at="2026-11-24T02:00:00+01:00", updated_at=None))
    clock.set(at("2026-11-24T03:00:00+01:00"))
    withdrawn = fulfilment(
        created_at="2026-11-24T02:00:00+01:00", updated_at="2026-11-24T03:00:00+01:00"
    )
    withdrawn["status"] = "cancelled"
    response = post_shopify(client, withdrawn, topic="fulfillments/update")
    clock.set(at("2026-11-24T12:00:00+01:00"))
    dispatch()

    assert response.json["detail"] == (
        "shipment JD014600006281230704: withdrawn; 1 pending message(s) cancelled"
    )
    assert sent_kinds(app, mailbox) == ["order_confirmation"]


# --- stalls ------------------------------------------------------------------------------------


def test_a_week_without_carrier_news_sends_one_reassurance(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    post_shopify(client, shopify_order())
    clock.set(at("2026-11-24T11:00:00+01:00"))
    post_fulfilment(client, fulfilment(created_at="2026-11-24T10:50:00+01:00", updated_at=None))
    post_scan(client, scan("carrier_picked_up", "2026-11-24T10:58:00+01:00"))
    dispatch()
    clock.advance(timedelta(days=6, hours=23))
    dispatch()
    assert sent_kinds(app, mailbox) == ["order_confirmation", "shipment_shipped"]

    clock.advance(timedelta(hours=1))
    dispatch()
    clock.advance(timedelta(days=14))
    dispatch()

    assert sent_kinds(app, mailbox) == [
        "order_confirmation",
        "shipment_shipped",
        "shipment_delayed",
    ]
    [delayed] = messages(app, "shipment_delayed")
    assert delayed.due_at == at("2026-12-01T11:00:00+01:00")
    assert delayed.reason == (
        "kept ready for a silence: sent only if the carrier reports nothing for 7 days, until "
        "2026-12-01 11:00 Europe/Berlin (11:00 Europe/Berlin is inside 10:00-20:00; sent at once)"
    )
    assert delayed.context["news"]["stalled"] is True


def test_no_reassurance_is_promised_for_a_carrier_that_never_reports(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    post_shopify(client, shopify_order())
    clock.set(at("2026-11-24T11:00:00+01:00"))
    response = post_fulfilment(
        client, fulfilment(created_at="2026-11-24T11:00:00+01:00", updated_at=None)
    )
    clock.advance(timedelta(days=30))
    dispatch()

    assert response.json["detail"].endswith("no carrier news yet, so no silence to watch")
    assert sent_kinds(app, mailbox) == ["order_confirmation", "shipment_shipped"]


def test_carrier_news_before_the_week_is_out_restarts_the_wait(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    with services(app).sessions.begin() as session:
        from notifier.models import Shop

        shop = session.scalars(select(Shop)).one()
        shop.settings = {"stall": {"days": 5}}
    post_shopify(client, shopify_order())
    clock.set(at("2026-11-24T11:00:00+01:00"))
    post_fulfilment(client, fulfilment(created_at="2026-11-24T10:50:00+01:00", updated_at=None))
    post_scan(client, scan("carrier_picked_up", "2026-11-24T10:58:00+01:00"))
    clock.set(at("2026-11-28T12:00:00+01:00"))
    response = post_scan(client, scan("in_transit", "2026-11-28T11:50:00+01:00"))
    clock.set(at("2026-11-29T12:00:00+01:00"))  # five days after shipping: the first wait is over
    dispatch()
    assert "shipment_delayed" not in sent_kinds(app, mailbox)
    clock.set(at("2026-12-03T12:00:00+01:00"))  # five days after the last news
    dispatch()

    assert "in_transit recorded; no buyer news" in response.json["detail"]
    assert sent_kinds(app, mailbox) == [
        "order_confirmation",
        "shipment_shipped",
        "shipment_delayed",
    ]
    first, second = messages(app, "shipment_delayed")
    assert first.state is MessageState.CANCELLED
    assert first.reason == "the carrier reported news on 2026-11-28"
    assert second.state is MessageState.SENT


# --- exceptions and split shipments ------------------------------------------------------------


@pytest.mark.usefixtures("standard_shop")
def test_a_lost_parcel_tells_the_buyer_and_flags_the_order(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    post_standard(client, clock, example("standard-order.json", type="order.paid"))
    news = example("standard-shipment.json")
    news["data"]["shipment"].update(
        status="exception",
        exception="lost",
        occurred_at="2026-11-23T09:30:00+01:00",
        note="Sendung verloren gegangen",
    )
    clock.advance(timedelta(minutes=1))
    response = post_standard(client, clock, news)
    dispatch()

    assert response.status_code == 200, response.json
    assert sent_kinds(app, mailbox) == ["order_confirmation", "shipment_exception"]
    with services(app).sessions() as session:
        order = session.scalars(select(Order).where(Order.external_id == "A-2093")).one()
    [flag] = order.flags
    assert (flag["flag"], flag["reason"], flag["shipment"]) == (
        "exception",
        "lost",
        "LP00612345678901",
    )
    # A lost parcel is not travelling: no reassurance is planned for its silence.
    assert messages(app, "shipment_delayed") == []


def test_split_shipments_are_separate_journeys(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    post_shopify(client, shopify_order())
    clock.set(at("2026-11-24T11:00:00+01:00"))
    post_fulfilment(client, fulfilment())
    second = fulfilment(
        id=4890034962605,
        tracking_company="Deutsche Post",
        tracking_number="RR123456785DE",
        tracking_numbers=["RR123456785DE"],
        tracking_url=None,
        tracking_urls=[],
    )
    post_fulfilment(client, second)
    dispatch()
    clock.set(at("2026-11-27T15:00:00+01:00"))
    post_scan(client, scan("delivered", "2026-11-27T14:00:00+01:00"))  # the first parcel only
    dispatch()

    assert sorted(sent_kinds(app, mailbox)) == [
        "delivered",
        "order_confirmation",
        "shipment_shipped",
        "shipment_shipped",
    ]
    with services(app).sessions() as session:
        parcels = {s.tracking_number: s.milestone for s in session.scalars(select(Shipment))}
    assert parcels == {"JD014600006281230704": "delivered", "RR123456785DE": "shipped"}
    assert messages(app, "delivered")[0].context["shipment"]["parcel_count"] == 2


def test_a_tracking_number_added_later_reaches_the_waiting_email(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, mailbox: MemoryTransport
) -> None:
    post_shopify(client, shopify_order())
    dispatch()
    clock.set(at("2026-11-24T02:00:00+01:00"))
    bare = fulfilment(
        created_at="2026-11-24T02:00:00+01:00",
        updated_at=None,
        tracking_number=None,
        tracking_numbers=[],
        tracking_url=None,
        tracking_urls=[],
    )
    post_fulfilment(client, bare)
    clock.set(at("2026-11-24T03:00:00+01:00"))
    tracked = fulfilment(
        created_at="2026-11-24T02:00:00+01:00", updated_at="2026-11-24T03:00:00+01:00"
    )
    response = post_shopify(client, tracked, topic="fulfillments/update")
    clock.set(at("2026-11-24T09:00:00+01:00"))
    dispatch()

    assert response.json["detail"] == "shipment JD014600006281230704: nothing new"
    text = parsed(mailbox.sent[-1]).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "JD014600006281230704" in text


# --- news the service cannot place -------------------------------------------------------------


def test_news_for_an_unknown_order_is_recorded_and_ignored(app: Flask, client: FlaskClient) -> None:
    response = post_fulfilment(client, fulfilment(order_id=999))

    assert response.status_code == 200
    assert response.json["status"] == "ignored"
    assert response.json["detail"] == "no order '999' is known for this shop yet"


@pytest.mark.parametrize(
    ("topic", "body", "field"),
    [
        ("fulfillments/create", {"id": 1, "status": "success"}, "order_id"),
        (
            "fulfillments/create",
            {"id": 1, "order_id": 2, "status": "success", "created_at": "yesterday"},
            "created_at",
        ),
        (
            "fulfillment_events/create",
            {"id": 1, "fulfillment_id": 2, "order_id": 3, "created_at": "2026-11-24T10:00:00Z"},
            "status",
        ),
        (
            "fulfillments/update",
            {
                "id": 1,
                "order_id": 2,
                "status": "success",
                "created_at": "2026-11-24T10:00:00Z",
                "tracking_numbers": ["x" * 101],
            },
            "tracking_numbers.0",
        ),
    ],
)
def test_bad_fulfilment_payloads_name_the_field(
    client: FlaskClient, topic: str, body: dict[str, Any], field: str
) -> None:
    response = post_shopify(client, body, topic=topic)

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json["errors"][0]["field"] == field


@pytest.mark.usefixtures("standard_shop")
@pytest.mark.parametrize(
    ("change", "status", "detail"),
    [
        ({"status": "teleported"}, 422, "Field 'data.shipment.status'"),
        ({"occurred_at": "2026-11-24T10:00:00"}, 422, "Field 'data.shipment.occurred_at'"),
        ({"exception": "eaten"}, 422, "Field 'data.shipment.exception'"),
        ({"country_code": "DEU"}, 422, "Field 'data.shipment.country_code'"),
    ],
)
def test_bad_standard_shipments_name_the_field(
    client: FlaskClient, clock: FakeClock, change: dict[str, Any], status: int, detail: str
) -> None:
    news = example("standard-shipment.json")
    news["data"]["shipment"].update(change)
    response = post_standard(client, clock, news)

    assert response.status_code == status
    assert response.json["detail"].startswith(detail)


@pytest.mark.usefixtures("standard_shop")
def test_standard_shipment_without_an_order_reference_is_refused(
    client: FlaskClient, clock: FakeClock
) -> None:
    news = example("standard-shipment.json")
    news["data"]["order"] = {}
    response = post_standard(client, clock, news)

    assert response.status_code == 422
    assert "give the order's id or number" in response.json["detail"]
