"""Buyer-local hours end to end: webhook in, due time and reason stored, nothing sent early."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from notifier.clock import FakeClock
from notifier.models import Message, Order, Platform, Shop
from notifier.transports.memory import MemoryTransport

from .conftest import STANDARD_SECRET, post_shopify, services, shopify_order
from .test_webhooks_standard import post_standard, standard_event, standard_order

pytestmark = pytest.mark.usefixtures("shopify_shop")


@pytest.fixture(autouse=True)
def daytime_confirmations(app: Flask, shopify_shop: Shop) -> None:
    """This shop holds even its confirmations for the buyer's daytime (a per-shop setting)."""
    with services(app).sessions.begin() as session:
        shop = session.scalars(select(Shop)).one()
        shop.settings = {"windows": {"order_confirmation": "09:00-21:00"}}


def order_in(country: str, region: str | None, **changes: Any) -> dict[str, Any]:
    order = shopify_order(**changes)
    order["shipping_address"].update(country_code=country, province_code=region)
    return order


def stored(app: Flask) -> tuple[Order, Message]:
    with services(app).sessions() as session:
        return session.scalars(select(Order)).one(), session.scalars(select(Message)).one()


def test_late_evening_in_berlin_waits_for_nine_and_nothing_leaves_before(
    app: Flask,
    client: FlaskClient,
    clock: FakeClock,
    dispatch: Callable,
    mailbox: MemoryTransport,
    runner: FlaskCliRunner,
) -> None:
    clock.set(datetime(2026, 11, 23, 22, 40, tzinfo=UTC))  # 23:40 in Berlin
    post_shopify(client, order_in("DE", None))
    order, message = stored(app)

    assert order.timezone_source == "country DE"
    assert message.due_at == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert message.reason == (
        "23:40 Europe/Berlin is outside 09:00-21:00; sent at the window's opening, "
        "09:00 Europe/Berlin on 2026-11-24"
    )
    sent_early = dispatch().handled
    clock.set(message.due_at - timedelta(seconds=1))
    sent_a_second_early = dispatch().handled
    clock.set(message.due_at)
    assert (sent_early, sent_a_second_early, dispatch().sent) == (0, 0, 1)
    timeline = runner.invoke(args=["notifier", "timeline", "#1001"]).output
    assert "due 2026-11-24T08:00:00+00:00 UTC / 2026-11-24 09:00 CET buyer time" in timeline
    assert "why: 23:40 Europe/Berlin is outside 09:00-21:00" in timeline


def test_arizona_keeps_its_own_hour(app: Flask, client: FlaskClient, clock: FakeClock) -> None:
    clock.set(datetime(2026, 7, 1, 14, 30, tzinfo=UTC))  # 07:30 in Phoenix, 10:30 in New York
    post_shopify(client, order_in("US", "AZ"))
    order, message = stored(app)

    assert (order.buyer_timezone, order.timezone_source) == (
        "America/Phoenix",
        "address US-AZ (Arizona)",
    )
    assert message.due_at == datetime(2026, 7, 1, 16, 0, tzinfo=UTC)


def test_a_us_order_without_a_state_waits_for_an_hour_good_everywhere(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    clock.set(datetime(2026, 11, 23, 13, 0, tzinfo=UTC))  # 08:00 New York, 03:00 Honolulu
    post_shopify(client, order_in("US", None))
    order, message = stored(app)

    assert len(order.buyer_zones) == 8
    assert "Pacific/Honolulu" in order.buyer_zones
    assert order.timezone_source.startswith("country US has 8 zones")
    assert message.due_at == datetime(2026, 11, 23, 19, 0, tzinfo=UTC)  # 09:00 Honolulu


@pytest.mark.parametrize(
    ("region", "zone", "due"),
    [
        ("AM", "America/Manaus", datetime(2026, 11, 24, 0, 30, tzinfo=UTC)),  # 20:30: at once
        ("SP", "America/Sao_Paulo", datetime(2026, 11, 24, 12, 0, tzinfo=UTC)),  # 21:30: tomorrow
    ],
)
def test_manaus_and_sao_paulo(
    app: Flask, client: FlaskClient, clock: FakeClock, region: str, zone: str, due: datetime
) -> None:
    clock.set(datetime(2026, 11, 24, 0, 30, tzinfo=UTC))
    post_shopify(client, order_in("BR", region))
    order, message = stored(app)

    assert order.buyer_timezone == zone
    assert message.due_at == due


def test_an_explicit_zone_from_the_storefront_wins(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    with services(app).sessions.begin() as session:
        session.add(
            Shop(
                slug="nord",
                platform=Platform.STANDARD,
                webhook_secrets=[STANDARD_SECRET],
                sender="Nord <hi@nord.example>",
                locale="en",
                timezone="UTC",
                settings={"windows": {"order_confirmation": "09:00-21:00"}},
                created_at=clock.now(),
            )
        )
    order = standard_order()
    order["buyer"]["timezone"] = "Asia/Tokyo"
    clock.set(datetime(2026, 11, 23, 15, 0, tzinfo=UTC))  # midnight in Tokyo
    post_standard(client, clock, standard_event(order=order), slug="nord")

    with services(app).sessions() as session:
        message = session.scalars(select(Message)).one()
        zone_source = session.scalars(select(Order.timezone_source)).one()
    assert zone_source == "storefront: Asia/Tokyo"
    assert message.due_at == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)  # 09:00 Tokyo
