"""The documented generic format for any storefront, signed the Standard Webhooks way."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

import pytz
from pydantic import AwareDatetime, Field, ValidationError, field_validator
from standardwebhooks import Webhook

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
    Envelope,
    Headers,
    Payload,
    headers_of_record,
    parse,
    required_header,
    schema_problem,
)

NAME = "standard"
RECORDED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature", "User-Agent")
SECRET_PREFIX = "whsec_"  # noqa: S105 - a format marker, not a secret


def check_secret(secret: str) -> None:
    """Refuse a secret that is not `whsec_` followed by base64, before it is ever stored."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a Standard Webhooks secret starts with 'whsec_'")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as error:
        raise ValueError("the part after 'whsec_' is not base64") from error
    if len(key) < 16:
        raise ValueError("the secret key is shorter than 16 bytes")


def verify(
    headers: Headers,
    body: bytes,
    secrets: Sequence[str],
    now: datetime,
    tolerance: timedelta,
) -> Envelope:
    """Check freshness against the injected clock, then each `v1` signature (never the wall clock)."""
    delivery_id = required_header(headers, "webhook-id")
    stamp = required_header(headers, "webhook-timestamp", max_length=20)
    signatures = headers.get("webhook-signature", "").split()
    if not signatures:
        raise Problem(401, "Missing signature", "The webhook-signature header is required.")
    try:
        sent_at = datetime.fromtimestamp(int(stamp), UTC)
    except (ValueError, OverflowError, OSError) as error:
        raise Problem(
            401, "Invalid timestamp", "webhook-timestamp is not a Unix time in seconds."
        ) from error
    if abs(now - sent_at) > tolerance:
        raise Problem(
            401,
            "Stale timestamp",
            f"webhook-timestamp {stamp} is more than {int(tolerance.total_seconds())} s "
            "away from the current time; sign each delivery when it is sent.",
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Problem(400, "Malformed body", "The body is not UTF-8 text.") from error
    offered = [sig.removeprefix("v1,").encode() for sig in signatures if sig.startswith("v1,")]
    for position, secret in enumerate(secrets, start=1):
        expected = Webhook(secret).sign(delivery_id, sent_at, text).removeprefix("v1,").encode()
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return Envelope(
                delivery_id=delivery_id,
                event_id=None,
                topic=None,
                occurred_at=sent_at,
                headers=headers_of_record(headers, RECORDED_HEADERS),
                verification=f"standard-webhooks v1 valid (secret {position} of {len(secrets)})",
            )
    raise Problem(
        401, "Invalid signature", "No v1 signature in webhook-signature matches this delivery."
    )


Short = Annotated[str, Field(min_length=1, max_length=200)]
Optional200 = Annotated[str | None, Field(max_length=200)]


class StandardBuyer(Payload):
    email: Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
    name: Optional200 = None
    locale: Annotated[str | None, Field(max_length=35, description="BCP 47, e.g. pt-BR")] = None
    timezone: Annotated[
        str | None, Field(max_length=64, description="IANA, e.g. Europe/Berlin")
    ] = None
    accepts_marketing: Annotated[
        bool | None,
        Field(
            description="true: agreed to marketing email (the delivery survey counts as such); "
            "false: refused it; absent: never asked"
        ),
    ] = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None and value not in pytz.all_timezones_set:
            raise ValueError(f"unknown IANA timezone {value!r}")
        return value


class StandardLineItem(Payload):
    title: Annotated[str, Field(min_length=1, max_length=1000)]
    quantity: Annotated[int, Field(ge=0, le=1_000_000)]
    unit_price: Amount
    variant: Optional200 = None
    sku: Optional200 = None


class StandardAddress(Payload):
    name: Optional200 = None
    lines: Annotated[list[Short], Field(max_length=5, default_factory=list)]
    city: Optional200 = None
    region: Optional200 = None
    region_code: Annotated[str | None, Field(max_length=10, description="ISO 3166-2 suffix")] = None
    postal_code: Annotated[str | None, Field(max_length=20)] = None
    country: Optional200 = None
    country_code: Annotated[
        str | None, Field(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2")
    ] = None


class StandardOrder(Payload):
    id: Annotated[str, Field(min_length=1, max_length=64, description="the storefront's id")]
    number: Annotated[str, Field(min_length=1, max_length=64, description="as the buyer sees it")]
    placed_at: AwareDatetime
    currency: Annotated[str, Field(pattern=CURRENCY, description="ISO 4217")]
    total: Amount
    subtotal: Amount | None = None
    shipping: Amount | None = None
    tax: Amount | None = None
    discount: Amount | None = None
    buyer: StandardBuyer
    line_items: Annotated[list[StandardLineItem], Field(max_length=1000, default_factory=list)]
    shipping_address: StandardAddress | None = None
    status_url: Annotated[str | None, Field(max_length=2000)] = None
    cancel_reason: Optional200 = None


class StandardOrderData(Payload):
    order: StandardOrder


class StandardEvent(Payload):
    """One delivery: `type` says what happened, `timestamp` when, `data` to what."""

    type: Literal["order.placed", "order.paid", "order.cancelled"]
    timestamp: AwareDatetime
    data: StandardOrderData


class _TypeOnly(Payload):
    type: Annotated[str, Field(max_length=100)]


class StandardOrderRef(Payload):
    id: Annotated[str | None, Field(min_length=1, max_length=64)] = None
    number: Annotated[str | None, Field(min_length=1, max_length=64)] = None


class StandardExpected(Payload):
    earliest: date
    latest: date | None = None


class StandardShipment(Payload):
    id: Annotated[str, Field(min_length=1, max_length=200, description="your id for the parcel")]
    status: Annotated[
        Milestone, Field(description="the milestone reached: shipped, in_transit, ... delivered")
    ]
    occurred_at: Annotated[AwareDatetime, Field(description="the carrier's time of the news")]
    carrier: Optional200 = None
    tracking_number: Annotated[str | None, Field(max_length=100)] = None
    tracking_url: Annotated[str | None, Field(max_length=2000)] = None
    location: Optional200 = None
    country_code: Annotated[str | None, Field(pattern=r"^[A-Za-z]{2}$")] = None
    exception: ExceptionReason | None = None
    note: Annotated[str | None, Field(max_length=1000)] = None
    expected_delivery: StandardExpected | None = None
    origin_country: Annotated[str | None, Field(pattern=r"^[A-Za-z]{2}$")] = None
    destination_country: Annotated[str | None, Field(pattern=r"^[A-Za-z]{2}$")] = None


class StandardShipmentData(Payload):
    order: StandardOrderRef
    shipment: StandardShipment


class StandardShipmentEvent(Payload):
    type: Literal["shipment.updated"]
    timestamp: AwareDatetime
    data: StandardShipmentData


ORDER_TYPES = ("order.placed", "order.paid", "order.cancelled")
SHIPMENT_TYPE = "shipment.updated"
EVENT_TYPES = (*ORDER_TYPES, SHIPMENT_TYPE)


def translate(envelope: Envelope, body: bytes) -> Translation:
    try:
        event_type = parse(_TypeOnly, body).type
    except ValidationError as error:
        raise schema_problem(error) from error
    if event_type not in EVENT_TYPES:
        return Translation(topic=event_type, ignored_because=f"type {event_type!r} is not handled")
    try:
        if event_type == SHIPMENT_TYPE:
            news = parse(StandardShipmentEvent, body)
            return Translation(topic=event_type, events=(_shipment(news.data),))
        event = parse(StandardEvent, body)
    except ValidationError as error:
        raise schema_problem(error) from error
    return Translation(topic=event_type, events=(_event(event),))


def _upper(code: str | None) -> str | None:
    return code.upper() if code else None


def _shipment(data: StandardShipmentData) -> ShipmentUpdated:
    if not (data.order.id or data.order.number):
        raise Problem(
            422,
            "Invalid payload",
            "Field 'data.order': give the order's id or number, so the news finds its order.",
        )
    parcel = data.shipment
    expected = parcel.expected_delivery
    return ShipmentUpdated(
        order=OrderRef(external_id=data.order.id, number=data.order.number),
        shipment_id=parcel.id,
        as_of=parcel.occurred_at,
        reached=(
            Reached(
                parcel.status,
                parcel.occurred_at,
                location=parcel.location,
                country_code=_upper(parcel.country_code),
                exception=parcel.exception,
                note=parcel.note,
            ),
        ),
        carrier=parcel.carrier,
        tracking_number=parcel.tracking_number,
        tracking_url=parcel.tracking_url,
        expected=DateRange(expected.earliest, expected.latest or expected.earliest)
        if expected
        else None,
        origin_country=_upper(parcel.origin_country),
        destination_country=_upper(parcel.destination_country),
    )


def _event(event: StandardEvent) -> Event:
    order = event.data.order
    snapshot = OrderSnapshot(
        external_id=order.id,
        number=order.number,
        placed_at=order.placed_at,
        buyer=Buyer(
            email=order.buyer.email,
            name=order.buyer.name,
            locale_tag=order.buyer.locale,
            timezone=order.buyer.timezone,
            accepts_marketing=order.buyer.accepts_marketing,
        ),
        currency=order.currency.upper(),
        total=order.total,
        subtotal=order.subtotal,
        shipping=order.shipping,
        tax=order.tax,
        discount=order.discount,
        line_items=tuple(
            LineItem(item.title, item.quantity, item.unit_price, item.variant, item.sku)
            for item in order.line_items
        ),
        shipping_address=_address(order.shipping_address),
        status_url=order.status_url,
    )
    if event.type == "order.placed":
        return OrderPlaced(snapshot, event.timestamp)
    if event.type == "order.paid":
        return OrderPaid(snapshot, event.timestamp)
    return OrderCancelled(snapshot, event.timestamp, order.cancel_reason)


def _address(address: StandardAddress | None) -> Address | None:
    if address is None:
        return None
    return Address(
        name=address.name,
        lines=tuple(address.lines),
        city=address.city,
        region=address.region,
        region_code=address.region_code,
        postal_code=address.postal_code,
        country=address.country,
        country_code=address.country_code.upper() if address.country_code else None,
    )
