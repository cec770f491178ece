"""Turns "this order should hear about X" into a scheduled outbox row: who, in what language, when."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from notifier import outbox, policies
from notifier.kinds import Kind, News
from notifier.locales import negotiate
from notifier.models import Message, MessageState, Order, Shipment, Shop
from notifier.planner import Plan, plan


@dataclass(frozen=True)
class Planned:
    """A message, or the sentence saying why there is none."""

    message: Message | None
    detail: str


def plan_message(
    session: Session,
    *,
    shop: Shop,
    order: Order,
    kind: Kind,
    dedupe_key: str,
    earliest: datetime,
    now: datetime,
    locales: Collection[str],
    shipment: Shipment | None = None,
    news: News | None = None,
    veto: Callable[[Plan], str | None] | None = None,
) -> Planned:
    """Schedule `kind` once per dedupe key, at the first moment its policy allows from `earliest`.

    `veto` may find the timing makes the message
    untrue: it is then kept in the record as cancelled, with the veto's reason.
    """
    if outbox.already_planned(session, dedupe_key):
        return Planned(None, f"{kind.name} already planned")
    if not order.buyer_email:
        return Planned(None, f"no buyer email on the order; {kind.name} not planned")
    policy = policies.for_shop(kind.name, shop.settings)
    if not policy.enabled:
        return Planned(None, f"{kind.name} is turned off for this shop")
    locale = negotiate(order.buyer_locale_tag, shop.locale, locales)
    address = order.details.get("shipping_address") or {}
    skip = policies.day_rule(policy, address.get("country_code"), address.get("region_code"))
    timing = plan(max(now, earliest + policy.delay), order.buyer_zones, policy.window, skip)
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
        context=kind.build_context(order, shop, shipment, news),
        now=now,
    )
    message.shipment_id = shipment.id if shipment else None
    if veto is not None and (objection := veto(timing)):
        outbox.end(session, message, MessageState.CANCELLED, objection, now)
        return Planned(message, f"{kind.name} not sent: {objection}")
    return Planned(
        message,
        f"{kind.name} planned for {message.due_at.isoformat(timespec='seconds')} ({locale.locale})",
    )
