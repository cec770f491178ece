"""Applies canonical events to an order's state and decides which messages that news calls for."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier import ledger, outbox, shipments, timezones
from notifier.events import (
    Event,
    OrderCancelled,
    OrderPaid,
    OrderPlaced,
    OrderRef,
    OrderSnapshot,
    ShipmentUpdated,
)
from notifier.kinds import ORDER_CANCELLED, ORDER_CONFIRMATION, Kind
from notifier.models import Message, Order, OrderStatus, Shop
from notifier.scheduling import plan_message


@dataclass
class Applied:
    """What one event did: the order it touched, a sentence for the record, messages planned."""

    order: Order | None
    detail: str
    planned: list[Message] = field(default_factory=list)


def apply(
    session: Session, shop: Shop, event: Event, *, now: datetime, locales: Collection[str]
) -> Applied:
    """Update the order and plan its messages in the caller's transaction."""
    if isinstance(event, ShipmentUpdated):
        order = find_order(session, shop, event.order)
        if order is None:
            return Applied(None, f"no order {_describe(event.order)} is known for this shop yet")
        outcome = shipments.apply(session, shop, order, event, now=now, locales=locales)
        return Applied(order, outcome.detail, outcome.planned)
    order = _upsert_order(session, shop, event.order, now)
    match event:
        case OrderPlaced() | OrderPaid():
            if order.status is OrderStatus.CANCELLED:
                return Applied(order, "order is cancelled; no confirmation planned")
            return _once(session, shop, order, ORDER_CONFIRMATION, now, locales)
        case OrderCancelled():
            if order.status is OrderStatus.CANCELLED:
                return Applied(order, "order was already cancelled")
            order.status = OrderStatus.CANCELLED
            order.cancelled_at = event.occurred_at
            why = f"order cancelled ({event.reason or 'no reason given'})"
            stopped = outbox.cancel_pending(session, order, why, now)
            told = _once(session, shop, order, ORDER_CANCELLED, now, locales)
            told.detail = f"order cancelled; {stopped} pending message(s) cancelled; {told.detail}"
            return told


def _once(
    session: Session,
    shop: Shop,
    order: Order,
    kind: Kind,
    now: datetime,
    locales: Collection[str],
) -> Applied:
    """Plan an order-level kind once per order."""
    planned = plan_message(
        session,
        shop=shop,
        order=order,
        kind=kind,
        dedupe_key=f"order:{order.id}:{kind.name}",
        earliest=now,
        now=now,
        locales=locales,
    )
    return Applied(order, planned.detail, [planned.message] if planned.message else [])


def find_order(session: Session, shop: Shop, ref: OrderRef) -> Order | None:
    """The order news refers to, by the storefront's id first, then by its number; locked."""
    for column, value in ((Order.external_id, ref.external_id), (Order.number, ref.number)):
        if value:
            found = session.scalar(
                select(Order)
                .where(Order.shop_id == shop.id, column == value)
                .order_by(Order.id)
                .limit(1)
                .with_for_update()
            )
            if found is not None:
                ledger.holding_order(session, found)
                return found
    return None


def _describe(ref: OrderRef) -> str:
    return " / ".join(repr(value) for value in (ref.external_id, ref.number) if value) or "(none)"


def _upsert_order(session: Session, shop: Shop, snapshot: OrderSnapshot, now: datetime) -> Order:
    # Locked: a cancellation and a payment of the same order must not both read "open".
    order = session.scalar(
        select(Order)
        .where(Order.shop_id == shop.id, Order.external_id == snapshot.external_id)
        .with_for_update()
    )
    created = order is None
    if order is None:
        order = Order(
            shop_id=shop.id,
            external_id=snapshot.external_id,
            status=OrderStatus.OPEN,
            created_at=now,
        )
        session.add(order)
    address = snapshot.shipping_address
    zones = timezones.resolve(
        explicit=snapshot.buyer.timezone,
        country_code=address.country_code if address else None,
        region_code=address.region_code if address else None,
        region_name=address.region if address else None,
        shop_default=shop.timezone,
    )
    order.number = snapshot.number
    order.buyer_email = snapshot.buyer.email
    order.buyer_name = snapshot.buyer.name
    order.buyer_locale_tag = snapshot.buyer.locale_tag
    order.buyer_timezone = zones.zone
    order.buyer_zones = list(zones.zones)
    order.timezone_source = zones.source
    order.currency = snapshot.currency
    order.total = snapshot.total
    order.placed_at = snapshot.placed_at
    order.details = _details(snapshot)
    order.updated_at = now
    session.flush()
    ledger.holding_order(session, order, created=created)
    return order


def _details(snapshot: OrderSnapshot) -> dict[str, Any]:
    """The snapshot as JSON: amounts as decimal strings, so nothing is lost to floats."""

    def plain(value: Any) -> Any:
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [plain(item) for item in value]
        return value

    details: dict[str, Any] = plain(asdict(snapshot))
    for item, source in zip(details["line_items"], snapshot.line_items, strict=True):
        item["line_total"] = str(source.unit_price * source.quantity)
    details["buyer_accepts_marketing"] = details.pop("buyer")["accepts_marketing"]
    return details
