"""Applies canonical events to an order's state and decides which messages that news calls for."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier import outbox, policies, timezones
from notifier.events import Event, OrderCancelled, OrderPaid, OrderPlaced, OrderSnapshot
from notifier.kinds import ORDER_CONFIRMATION, Kind
from notifier.locales import negotiate
from notifier.models import Message, Order, OrderStatus, Shop
from notifier.planner import plan


@dataclass
class Applied:
    """What one event did: the order it touched, a sentence for the record, messages planned."""

    order: Order
    detail: str
    planned: list[Message] = field(default_factory=list)


def apply(
    session: Session, shop: Shop, event: Event, *, now: datetime, locales: Collection[str]
) -> Applied:
    """Update the order and plan its messages in the caller's transaction."""
    order = _upsert_order(session, shop, event.order, now)
    match event:
        case OrderPlaced() | OrderPaid():
            if order.status is OrderStatus.CANCELLED:
                return Applied(order, "order is cancelled; no confirmation planned")
            return _plan_once(session, shop, order, ORDER_CONFIRMATION, now, now, locales)
        case OrderCancelled():
            if order.status is OrderStatus.CANCELLED:
                return Applied(order, "order was already cancelled")
            order.status = OrderStatus.CANCELLED
            order.cancelled_at = event.occurred_at
            why = f"order cancelled ({event.reason or 'no reason given'})"
            stopped = outbox.cancel_pending(session, order, why, now)
            return Applied(order, f"order cancelled; {stopped} pending message(s) cancelled")


def _plan_once(
    session: Session,
    shop: Shop,
    order: Order,
    kind: Kind,
    since: datetime,
    now: datetime,
    locales: Collection[str],
) -> Applied:
    """Plan `kind` once per order: at the first moment its policy allows after `since`."""
    dedupe_key = f"order:{order.id}:{kind.name}"
    if outbox.already_planned(session, dedupe_key):
        return Applied(order, f"{kind.name} already planned")
    if not order.buyer_email:
        return Applied(order, f"no buyer email on the order; {kind.name} not planned")
    policy = policies.for_shop(kind.name, shop.settings)
    if not policy.enabled:
        return Applied(order, f"{kind.name} is turned off for this shop")
    locale = negotiate(order.buyer_locale_tag, shop.locale, locales)
    address = order.details.get("shipping_address") or {}
    skip = policies.day_rule(policy, address.get("country_code"), address.get("region_code"))
    timing = plan(max(now, since + policy.delay), order.buyer_zones, policy.window, skip)
    message = outbox.schedule(
        session,
        shop=shop,
        order=order,
        kind=kind,
        dedupe_key=dedupe_key,
        recipient=outbox.Recipient(order.buyer_email, order.buyer_name),
        locale=locale,
        timezone=order.buyer_timezone,
        plan=timing,
        context=kind.build_context(order, shop),
        now=now,
    )
    detail = f"{kind.name} planned for {message.due_at.isoformat()} ({locale.locale})"
    return Applied(order, detail, [message])


def _upsert_order(session: Session, shop: Shop, snapshot: OrderSnapshot, now: datetime) -> Order:
    # Locked: a cancellation and a payment of the same order must not both read "open".
    order = session.scalar(
        select(Order)
        .where(Order.shop_id == shop.id, Order.external_id == snapshot.external_id)
        .with_for_update()
    )
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
    details.pop("buyer")
    return details
