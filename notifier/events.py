"""The canonical events: the only vocabulary downstream of the source adapters."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal


@dataclass(frozen=True)
class LineItem:
    title: str
    quantity: int
    unit_price: Decimal
    variant: str | None = None
    sku: str | None = None


@dataclass(frozen=True)
class Address:
    name: str | None = None
    lines: tuple[str, ...] = ()
    city: str | None = None
    region: str | None = None
    region_code: str | None = None
    postal_code: str | None = None
    country: str | None = None
    country_code: str | None = None


@dataclass(frozen=True)
class Buyer:
    email: str | None
    name: str | None = None
    locale_tag: str | None = None
    timezone: str | None = None
    # Marketing email (the survey counts as such): True agreed, False refused, None never asked.
    accepts_marketing: bool | None = None


@dataclass(frozen=True)
class OrderSnapshot:
    """An order as its storefront last described it, in the currency the buyer paid in."""

    external_id: str
    number: str
    placed_at: datetime
    buyer: Buyer
    currency: str
    total: Decimal
    subtotal: Decimal | None = None
    shipping: Decimal | None = None
    tax: Decimal | None = None
    discount: Decimal | None = None
    line_items: tuple[LineItem, ...] = ()
    shipping_address: Address | None = None
    status_url: str | None = None


@dataclass(frozen=True)
class OrderPlaced:
    order: OrderSnapshot
    occurred_at: datetime


@dataclass(frozen=True)
class OrderPaid:
    order: OrderSnapshot
    occurred_at: datetime


@dataclass(frozen=True)
class OrderCancelled:
    order: OrderSnapshot
    occurred_at: datetime
    reason: str | None = None


class Milestone(enum.StrEnum):
    """Where a parcel is, in words no carrier or platform owns. Adapters map into these."""

    SHIPPED = "shipped"  # handed to the carrier with (usually) a tracking number
    IN_TRANSIT = "in_transit"  # moving; news for the record and the stall timer, not for the buyer
    DEPARTED_ORIGIN = "departed_origin"  # left the seller's country
    ARRIVED_DESTINATION = "arrived_destination"  # entered the buyer's country
    CUSTOMS_ACTION = "customs_action"  # held by customs; the buyer must act (duties, documents)
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERY_FAILED = "delivery_failed"  # an attempt failed; the carrier usually tries again
    READY_FOR_PICKUP = "ready_for_pickup"
    DELIVERED = "delivered"
    DELAYED = "delayed"  # the carrier itself says it will be late
    EXCEPTION = "exception"  # lost, damaged, returned to sender, refused: agents must look
    CANCELLED = "cancelled"  # the shipment (not the order) was withdrawn by the seller


class ExceptionReason(enum.StrEnum):
    LOST = "lost"
    DAMAGED = "damaged"
    RETURNED_TO_SENDER = "returned_to_sender"
    REFUSED = "refused"
    ADDRESS_ISSUE = "address_issue"
    CUSTOMS_HELD = "customs_held"
    OTHER = "other"


@dataclass(frozen=True)
class OrderRef:
    """How shipment news names its order: the storefront's id, the buyer-facing number, or both."""

    external_id: str | None = None
    number: str | None = None


@dataclass(frozen=True)
class DateRange:
    earliest: date
    latest: date


@dataclass(frozen=True)
class Reached:
    """A milestone the carrier reports, at the carrier's own time."""

    milestone: Milestone
    at: datetime
    location: str | None = None
    country_code: str | None = None  # ISO 3166-1 alpha-2
    exception: ExceptionReason | None = None
    note: str | None = None  # the carrier's own words, for agents


@dataclass(frozen=True)
class ShipmentUpdated:
    """What one delivery says about one parcel.

    `reached` lists the milestones in carrier time order; its last entry is the news, the others
    the journey so far. `as_of` is the carrier time of the newest information in the delivery: a
    delivery older than what is already known is recorded and ignored. Fields left None keep
    what an earlier delivery said.
    """

    order: OrderRef
    shipment_id: str  # the source's id for the parcel: a fulfilment id, a tracking id
    as_of: datetime
    reached: tuple[Reached, ...] = ()
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    expected: DateRange | None = None
    origin_country: str | None = None
    destination_country: str | None = None


Event = OrderPlaced | OrderPaid | OrderCancelled | ShipmentUpdated


@dataclass(frozen=True)
class Translation:
    """What an adapter made of one delivery: events to apply, or why there are none."""

    topic: str
    events: tuple[Event, ...] = field(default=())
    ignored_because: str | None = None
