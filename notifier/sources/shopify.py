"""Shopify: HMAC over the raw body, topic and ids in headers, orders in the REST webhook shape."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AwareDatetime, BeforeValidator, Field, ValidationError

from notifier.events import (
    Address,
    Buyer,
    DateRange,
    Event,
    ExceptionReason,
    LineItem,
    Milestone,
    OrderCancelled,
    OrderPaid,
    OrderPlaced,
    OrderRef,
    OrderSnapshot,
    Reached,
    ShipmentUpdated,
    Translation,
)
from notifier.problems import Problem
from notifier.sources import (
    CURRENCY,
    Amount,
    Email,
    Envelope,
    Headers,
    LocaleTag,
    Payload,
    headers_of_record,
    optional_header,
    parse,
    required_header,
    schema_problem,
)

NAME = "shopify"
RECORDED_HEADERS = (
    "X-Shopify-Topic",
    "X-Shopify-Shop-Domain",
    "X-Shopify-Webhook-Id",
    "X-Shopify-Event-Id",
    "X-Shopify-Triggered-At",
    "X-Shopify-API-Version",
    "X-Shopify-Hmac-Sha256",
)
ORDER_TOPICS = ("orders/create", "orders/paid", "orders/cancelled")
FULFILLMENT_TOPICS = ("fulfillments/create", "fulfillments/update")
FULFILLMENT_EVENT_TOPIC = "fulfillment_events/create"
# Shopify's shipment_status and fulfilment event status values (REST, lower case). Label and
# confirmation statuses say nothing the fulfilment itself did not; `failure` is a carrier failure.
SHIPMENT_STATUS: dict[str, tuple[Milestone, ExceptionReason | None] | None] = {
    "label_printed": None,
    "label_purchased": None,
    "confirmed": None,
    "carrier_picked_up": (Milestone.IN_TRANSIT, None),
    "in_transit": (Milestone.IN_TRANSIT, None),
    "out_for_delivery": (Milestone.OUT_FOR_DELIVERY, None),
    "attempted_delivery": (Milestone.DELIVERY_FAILED, None),
    "ready_for_pickup": (Milestone.READY_FOR_PICKUP, None),
    "picked_up": (Milestone.DELIVERED, None),
    "delivered": (Milestone.DELIVERED, None),
    "delayed": (Milestone.DELAYED, None),
    "failure": (Milestone.EXCEPTION, ExceptionReason.OTHER),
}


def shop_domain(headers: Headers) -> str:
    return required_header(headers, "X-Shopify-Shop-Domain", max_length=255).lower()


def verify(headers: Headers, body: bytes, secrets: Sequence[str]) -> Envelope:
    """Check the HMAC against each of the shop's secrets (several while one is being rotated)."""
    given = headers.get("X-Shopify-Hmac-Sha256", "").strip()
    if not given:
        raise Problem(401, "Missing signature", "The X-Shopify-Hmac-Sha256 header is required.")
    for position, secret in enumerate(secrets, start=1):
        digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        if hmac.compare_digest(base64.b64encode(digest), given.encode("ascii", "replace")):
            return Envelope(
                delivery_id=required_header(headers, "X-Shopify-Webhook-Id"),
                event_id=optional_header(headers, "X-Shopify-Event-Id"),
                topic=required_header(headers, "X-Shopify-Topic", max_length=100),
                occurred_at=_parse_triggered_at(headers.get("X-Shopify-Triggered-At")),
                headers=headers_of_record(headers, RECORDED_HEADERS),
                verification=f"hmac-sha256 valid (secret {position} of {len(secrets)})",
            )
    raise Problem(
        401, "Invalid signature", "X-Shopify-Hmac-Sha256 does not match the body for this shop."
    )


def _parse_triggered_at(value: str | None) -> datetime | None:
    """Shopify's timestamp is unsigned and may carry nanoseconds; keep it only as a hint."""
    if not value:
        return None
    head, _, fraction = value.strip().removesuffix("Z").partition(".")
    digits = "".join(ch for ch in fraction if ch.isdigit())[:6]
    try:
        parsed = datetime.fromisoformat(head + (f".{digits}" if digits else "") + "+00:00")
    except ValueError:
        return None
    return parsed


def _blank_to_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


Text = Annotated[Annotated[str, Field(max_length=1000)] | None, BeforeValidator(_blank_to_none)]
OptionalEmail = Annotated[Email | None, BeforeValidator(_blank_to_none)]
Id = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)]


class _Money(Payload):
    amount: Amount
    currency_code: str = Field(pattern=CURRENCY)


class _MoneySet(Payload):
    shop_money: _Money
    presentment_money: _Money


class _LineItem(Payload):
    title: str = Field(max_length=1000)
    variant_title: Text = None
    sku: Text = None
    quantity: int = Field(ge=0, le=1_000_000)
    price: Amount
    price_set: _MoneySet | None = None


class _Address(Payload):
    name: Text = None
    first_name: Text = None
    last_name: Text = None
    address1: Text = None
    address2: Text = None
    city: Text = None
    province: Text = None
    province_code: Text = None
    zip: Text = None
    country: Text = None
    country_code: Text = None


class _MarketingConsent(Payload):
    state: Text = None  # subscribed, not_subscribed, unsubscribed, pending, redacted, invalid


class _Customer(Payload):
    first_name: Text = None
    last_name: Text = None
    email: OptionalEmail = None
    email_marketing_consent: _MarketingConsent | None = None


class ShopifyOrder(Payload):
    id: Id = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=64)
    email: OptionalEmail = None
    contact_email: OptionalEmail = None
    customer_locale: Annotated[LocaleTag | None, BeforeValidator(_blank_to_none)] = None
    created_at: AwareDatetime
    cancelled_at: AwareDatetime | None = None
    cancel_reason: Text = None
    currency: str = Field(pattern=CURRENCY)
    total_price: Amount
    subtotal_price: Amount | None = None
    total_tax: Amount | None = None
    total_discounts: Amount | None = None
    total_price_set: _MoneySet | None = None
    subtotal_price_set: _MoneySet | None = None
    total_tax_set: _MoneySet | None = None
    total_discounts_set: _MoneySet | None = None
    total_shipping_price_set: _MoneySet | None = None
    line_items: list[_LineItem] = Field(default_factory=list, max_length=1000)
    shipping_address: _Address | None = None
    billing_address: _Address | None = None
    customer: _Customer | None = None
    buyer_accepts_marketing: bool | None = None
    order_status_url: Text = None


def translate(envelope: Envelope, body: bytes) -> Translation:
    topic = envelope.topic or ""
    try:
        if topic in ORDER_TOPICS:
            order = parse(ShopifyOrder, body)
            return Translation(topic=topic, events=(_event(topic, order, envelope),))
        if topic in FULFILLMENT_TOPICS:
            fulfillment = parse(ShopifyFulfillment, body)
            return Translation(topic=topic, events=(_fulfillment_news(fulfillment),))
        if topic == FULFILLMENT_EVENT_TOPIC:
            event = parse(ShopifyFulfillmentEvent, body)
            return Translation(topic=topic, events=(_fulfillment_event_news(event),))
    except ValidationError as error:
        raise schema_problem(error) from error
    return Translation(topic=topic, ignored_because=f"topic {topic!r} is not handled")


def _event(topic: str, order: ShopifyOrder, envelope: Envelope) -> Event:
    snapshot = _snapshot(order)
    occurred_at = envelope.occurred_at or order.created_at
    if topic == "orders/create":
        return OrderPlaced(snapshot, occurred_at)
    if topic == "orders/paid":
        return OrderPaid(snapshot, occurred_at)
    return OrderCancelled(snapshot, order.cancelled_at or occurred_at, order.cancel_reason)


def _presented(plain: Amount | None, money_set: _MoneySet | None) -> Decimal | None:
    """The amount in the buyer's (presentment) currency when Shopify gives it."""
    return money_set.presentment_money.amount if money_set else plain


def _snapshot(order: ShopifyOrder) -> OrderSnapshot:
    currency = (
        order.total_price_set.presentment_money.currency_code
        if order.total_price_set
        else order.currency
    )
    total = _presented(order.total_price, order.total_price_set)
    assert total is not None
    return OrderSnapshot(
        external_id=order.id,
        number=order.name,
        placed_at=order.created_at,
        buyer=Buyer(
            email=order.email
            or order.contact_email
            or (order.customer.email if order.customer else None),
            name=_buyer_name(order),
            locale_tag=order.customer_locale,
            accepts_marketing=_accepts_marketing(order),
        ),
        currency=currency.upper(),
        total=total,
        subtotal=_presented(order.subtotal_price, order.subtotal_price_set),
        shipping=_presented(None, order.total_shipping_price_set),
        tax=_presented(order.total_tax, order.total_tax_set),
        discount=_presented(order.total_discounts, order.total_discounts_set),
        line_items=tuple(
            LineItem(
                title=item.title,
                quantity=item.quantity,
                unit_price=_presented(item.price, item.price_set) or item.price,
                variant=item.variant_title,
                sku=item.sku,
            )
            for item in order.line_items
        ),
        shipping_address=_address(order.shipping_address),
        status_url=order.order_status_url,
    )


def _join(*parts: str | None) -> str | None:
    joined = " ".join(part for part in parts if part)
    return joined[:200] or None


def _buyer_name(order: ShopifyOrder) -> str | None:
    for person in (order.customer, order.shipping_address, order.billing_address):
        if person and (name := _join(person.first_name, person.last_name)):
            return name
    return None


def _address(address: _Address | None) -> Address | None:
    if address is None:
        return None
    return Address(
        name=address.name or _join(address.first_name, address.last_name),
        lines=tuple(line for line in (address.address1, address.address2) if line),
        city=address.city,
        region=address.province,
        region_code=address.province_code,
        postal_code=address.zip,
        country=address.country,
        country_code=address.country_code.upper() if address.country_code else None,
    )


ShipmentStatus = Annotated[str | None, Field(max_length=40), BeforeValidator(_blank_to_none)]


class ShopifyFulfillment(Payload):
    """A fulfilment as `fulfillments/create` and `fulfillments/update` send it: one parcel."""

    id: Id = Field(min_length=1, max_length=64)
    order_id: Id = Field(min_length=1, max_length=64)
    status: str = Field(max_length=40)
    shipment_status: ShipmentStatus = None
    created_at: AwareDatetime
    updated_at: AwareDatetime | None = None
    tracking_company: Text = None
    tracking_number: Text = None
    tracking_numbers: list[Annotated[str, Field(max_length=100)]] = Field(
        default_factory=list, max_length=100
    )
    tracking_url: Text = None
    tracking_urls: list[Annotated[str, Field(max_length=2000)]] = Field(
        default_factory=list, max_length=100
    )


class ShopifyFulfillmentEvent(Payload):
    """One carrier scan as `fulfillment_events/create` sends it."""

    id: Id = Field(min_length=1, max_length=64)
    fulfillment_id: Id = Field(min_length=1, max_length=64)
    order_id: Id = Field(min_length=1, max_length=64)
    status: str = Field(min_length=1, max_length=40)
    message: Text = None
    happened_at: AwareDatetime | None = None
    created_at: AwareDatetime
    city: Text = None
    province: Text = None
    country: Text = None
    estimated_delivery_at: AwareDatetime | None = None


def _status(
    value: str | None, at: datetime, location: str | None, note: str | None
) -> list[Reached]:
    """The milestone a Shopify status names; unknown statuses are news for the record only."""
    mapped = SHIPMENT_STATUS.get(value or "", (Milestone.IN_TRANSIT, None)) if value else None
    if mapped is None:
        return []
    milestone, exception = mapped
    return [Reached(milestone, at, location=location, exception=exception, note=note)]


def _fulfillment_news(fulfillment: ShopifyFulfillment) -> ShipmentUpdated:
    as_of = fulfillment.updated_at or fulfillment.created_at
    reached: list[Reached] = []
    if fulfillment.status == "cancelled":
        reached.append(Reached(Milestone.CANCELLED, as_of))
    elif fulfillment.status == "success":
        reached.append(Reached(Milestone.SHIPPED, fulfillment.created_at))
        reached += _status(fulfillment.shipment_status, as_of, None, None)
    numbers = [fulfillment.tracking_number, *fulfillment.tracking_numbers]
    urls = [fulfillment.tracking_url, *fulfillment.tracking_urls]
    return ShipmentUpdated(
        order=OrderRef(external_id=fulfillment.order_id),
        shipment_id=fulfillment.id,
        as_of=as_of,
        reached=tuple(reached),
        carrier=fulfillment.tracking_company,
        tracking_number=next((number for number in numbers if number), None),
        tracking_url=next((url for url in urls if url), None),
    )


def _fulfillment_event_news(event: ShopifyFulfillmentEvent) -> ShipmentUpdated:
    at = event.happened_at or event.created_at
    location = _join_commas(event.city, event.province, event.country)
    expected = None
    if event.estimated_delivery_at is not None:
        day = event.estimated_delivery_at.date()
        expected = DateRange(day, day)
    return ShipmentUpdated(
        order=OrderRef(external_id=event.order_id),
        shipment_id=event.fulfillment_id,
        as_of=at,
        reached=tuple(_status(event.status, at, location, event.message)),
        expected=expected,
    )


def _join_commas(*parts: str | None) -> str | None:
    return ", ".join(part for part in parts if part)[:200] or None


def _accepts_marketing(order: ShopifyOrder) -> bool | None:
    """The customer's email consent; an unticked checkbox is "never asked", not a refusal."""
    consent = order.customer.email_marketing_consent if order.customer else None
    if consent is not None and consent.state == "subscribed":
        return True
    if consent is not None and consent.state == "unsubscribed":
        return False
    return True if order.buyer_accepts_marketing else None
