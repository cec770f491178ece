"""The message kinds: each entry states its policy and builds its template context, nothing more.

Rendering, queueing and sending live elsewhere and are the same for every kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from email.utils import parseaddr
from typing import Any

from notifier.models import Order, Shipment, Shop

Context = dict[str, Any]
# What happened, as journey.py records it in a shipment's journey: {"milestone", "at", ...}.
News = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    name: str  # also its template folder and its policy's key in notifier.policies
    transactional: bool
    build_context: Callable[[Order, Shop, Shipment | None, News | None], Context]


def shop_context(shop: Shop) -> Context:
    display_name, address = parseaddr(shop.sender)
    return {
        "name": display_name or shop.slug,
        "support_email": shop.support_email or address,
        "return_policy_url": shop.return_policy_url,
    }


def _positive(amount: str | None) -> str | None:
    return amount if amount is not None and Decimal(amount) > 0 else None


def order_context(
    order: Order, shop: Shop, shipment: Shipment | None = None, news: News | None = None
) -> Context:
    """Everything a template may say about an order, as plain JSON (it is stored with the message)."""
    details = order.details
    return {
        "shop": shop_context(shop),
        "buyer": {"name": order.buyer_name},
        "order": {
            "number": order.number,
            "placed_at": order.placed_at.isoformat(),
            **{
                key: details.get(key)
                for key in ("currency", "total", "subtotal", "shipping", "tax")
            },
            "discount": _positive(details.get("discount")),
            "status_url": details.get("status_url"),
            "line_items": details.get("line_items", []),
            "item_count": sum(item["quantity"] for item in details.get("line_items", [])),
        },
        "shipping_address": details.get("shipping_address"),
    }


def cancellation_context(
    order: Order, shop: Shop, shipment: Shipment | None = None, news: News | None = None
) -> Context:
    cancelled_at = order.cancelled_at.isoformat() if order.cancelled_at else None
    return {**order_context(order, shop), "cancellation": {"at": cancelled_at}}


def shipment_context(
    order: Order, shop: Shop, shipment: Shipment | None = None, news: News | None = None
) -> Context:
    """The order, the parcel (carrier, tracking, expected dates, journey so far) and the news."""
    assert shipment is not None, "a shipment kind is always planned for a shipment"
    expected = (
        {
            "earliest": shipment.expected_earliest.isoformat(),
            "latest": (shipment.expected_latest or shipment.expected_earliest).isoformat(),
        }
        if shipment.expected_earliest
        else None
    )
    return {
        **order_context(order, shop),
        "shipment": {
            "carrier": shipment.carrier,
            "tracking_number": shipment.tracking_number,
            "tracking_url": shipment.tracking_url,
            "expected": expected,
            "journey": [step for step in shipment.journey if step["milestone"] in JOURNEY_STEPS],
            "last_heard_at": shipment.last_heard_at.isoformat(),
            "parcel_count": max(len(order.shipments), 1),
        },
        "news": news or {},
    }


# The milestones worth showing a buyer as "the journey so far", in the order a parcel passes them.
JOURNEY_STEPS = (
    "shipped",
    "departed_origin",
    "arrived_destination",
    "customs_action",
    "out_for_delivery",
    "delivery_failed",
    "ready_for_pickup",
    "delivered",
)


def survey_context(
    order: Order, shop: Shop, shipment: Shipment | None = None, news: News | None = None
) -> Context:
    """The order and when it arrived; the answer links are signed when the email is built."""
    return {**order_context(order, shop), "survey": {"delivered_at": (news or {}).get("at")}}


ORDER_CONFIRMATION = Kind("order_confirmation", transactional=True, build_context=order_context)
ORDER_CANCELLED = Kind("order_cancelled", transactional=True, build_context=cancellation_context)
SHIPMENT_KINDS = (
    "shipment_shipped",
    "departed_origin",
    "arrived_destination",
    "customs_action",
    "out_for_delivery",
    "delivery_failed",
    "ready_for_pickup",
    "delivered",
    "shipment_exception",
    "shipment_delayed",
)

# Marketing in the law's eyes: needs consent, carries an unsubscribe, honours the opt-out.
DELIVERY_SURVEY = Kind("delivery_survey", transactional=False, build_context=survey_context)
# To the shop's support address, not the buyer: its context is built by notifier.survey.
SURVEY_ALERT = Kind("survey_alert", transactional=True, build_context=order_context)

# Kinds whose templates exist; journeys may only plan these.
KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        ORDER_CONFIRMATION,
        ORDER_CANCELLED,
        DELIVERY_SURVEY,
        SURVEY_ALERT,
        *(
            Kind(name, transactional=True, build_context=shipment_context)
            for name in SHIPMENT_KINDS
        ),
    )
}
