"""The canonical events: the only vocabulary downstream of the source adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
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


Event = OrderPlaced | OrderPaid | OrderCancelled


@dataclass(frozen=True)
class Translation:
    """What an adapter made of one delivery: events to apply, or why there are none."""

    topic: str
    events: tuple[Event, ...] = field(default=())
    ignored_because: str | None = None
