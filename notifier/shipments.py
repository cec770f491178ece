"""One parcel's journey: news ordered by the carrier's clock, never stale, never contradictory.

Each delivery of shipment news is applied to the parcel's state in the caller's transaction:
news older than what is known is recorded and ignored; news already known changes nothing; news
that would move the parcel backwards (a hub scan after "out for delivery") is kept for the record
but not sent; newer news supersedes older messages still waiting for the buyer's window; and while
the parcel travels, a reassurance is kept ready for the day the carrier falls silent.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal

import pytz
from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier import outbox, policies, survey
from notifier.events import Milestone, Reached, ShipmentUpdated
from notifier.kinds import KINDS, News
from notifier.models import Message, MessageState, Order, OrderStatus, Shipment, Shop
from notifier.planner import Plan
from notifier.scheduling import Planned, plan_message

# How far along a parcel is. News that would lower the stage is not sent; None: says nothing
# about progress (a delay, an exception), so it is always news.
STAGES: dict[Milestone, int | None] = {
    Milestone.SHIPPED: 1,
    Milestone.IN_TRANSIT: 1,
    Milestone.DEPARTED_ORIGIN: 2,
    Milestone.ARRIVED_DESTINATION: 3,
    Milestone.CUSTOMS_ACTION: 3,
    Milestone.OUT_FOR_DELIVERY: 4,
    Milestone.DELIVERY_FAILED: 4,
    Milestone.READY_FOR_PICKUP: 4,
    Milestone.DELIVERED: 5,
    Milestone.DELAYED: None,
    Milestone.EXCEPTION: None,
    Milestone.CANCELLED: None,
}
# The message each milestone calls for; in-transit scans and withdrawals call for none.
KIND_FOR: dict[Milestone, str] = {
    Milestone.SHIPPED: "shipment_shipped",
    Milestone.DEPARTED_ORIGIN: "departed_origin",
    Milestone.ARRIVED_DESTINATION: "arrived_destination",
    Milestone.CUSTOMS_ACTION: "customs_action",
    Milestone.OUT_FOR_DELIVERY: "out_for_delivery",
    Milestone.DELIVERY_FAILED: "delivery_failed",
    Milestone.READY_FOR_PICKUP: "ready_for_pickup",
    Milestone.DELIVERED: "delivered",
    Milestone.DELAYED: "shipment_delayed",
    Milestone.EXCEPTION: "shipment_exception",
}
# Reached once per parcel whatever the carrier repeats; the others may recur (a second attempt).
ONCE = frozenset(
    {
        Milestone.SHIPPED,
        Milestone.DEPARTED_ORIGIN,
        Milestone.ARRIVED_DESTINATION,
        Milestone.READY_FOR_PICKUP,
        Milestone.DELIVERED,
    }
)
# After these the parcel is not travelling, so no reassurance is kept ready for a silence.
AT_REST = frozenset({Milestone.DELIVERED, Milestone.EXCEPTION, Milestone.CANCELLED})
# Exceptions agents must look at; customs holds too, since the buyer may need help.
FLAGGED = frozenset({Milestone.EXCEPTION, Milestone.CUSTOMS_ACTION})
PENDING = (MessageState.SCHEDULED, MessageState.RETRY)
# News that is only true on the day it happens ("should arrive today").
SAME_DAY = frozenset({Milestone.OUT_FOR_DELIVERY})
STALL_KEY = "stall"


@dataclass
class Outcome:
    detail: str
    planned: list[Message] = field(default_factory=list)


def apply(
    session: Session,
    shop: Shop,
    order: Order,
    update: ShipmentUpdated,
    *,
    now: datetime,
    locales: Collection[str],
) -> Outcome:
    shipment = _find_or_create(session, order, update, now)
    # Who carries it and under which number stays true however late the news comes.
    _merge_identity(shipment, update)
    label = shipment.tracking_number or shipment.external_id
    if shipment.latest_event_at is not None and update.as_of < shipment.latest_event_at:
        _refresh_pending(session, shop, order, shipment)
        return Outcome(
            f"shipment {label}: news as of {update.as_of.isoformat()} is older than what is "
            f"known (as of {shipment.latest_event_at.isoformat()}); recorded, not sent"
        )
    if update.expected is not None:
        shipment.expected_earliest = update.expected.earliest
        shipment.expected_latest = update.expected.latest
    shipment.last_heard_at = now
    shipment.updated_at = now
    fresh = _new_steps(shipment, update.reached)
    if shipment.latest_event_at is None or update.as_of > shipment.latest_event_at:
        shipment.latest_event_at = update.as_of
    if order.status is OrderStatus.CANCELLED:
        _record(shipment, fresh)
        return Outcome(f"shipment {label}: the order is cancelled; news recorded, not sent")
    if not fresh:
        _refresh_pending(session, shop, order, shipment)
        return Outcome(f"shipment {label}: nothing new")
    return _advance(session, shop, order, shipment, fresh, now=now, locales=locales)


def _advance(
    session: Session,
    shop: Shop,
    order: Order,
    shipment: Shipment,
    fresh: list[Reached],
    *,
    now: datetime,
    locales: Collection[str],
) -> Outcome:
    label = shipment.tracking_number or shipment.external_id
    was_delivered = shipment.milestone == Milestone.DELIVERED
    stage_before = _stage(shipment.milestone)
    _record(shipment, fresh)
    _flag(order, shipment, fresh, now)
    if was_delivered:
        return Outcome(f"shipment {label}: already delivered; later news recorded, not sent")
    if any(step.milestone is Milestone.CANCELLED for step in fresh):
        stopped = _stop_pending(session, shipment, "the shipment was withdrawn by the seller", now)
        return Outcome(f"shipment {label}: withdrawn; {stopped} pending message(s) cancelled")
    outcome = Outcome(f"shipment {label}: {fresh[-1].milestone.value} recorded; no buyer news")
    news = _news(fresh, stage_before)
    if news is not None:
        outcome = _tell(session, shop, order, shipment, news, now, locales)
    stall = _keep_reassurance_ready(session, shop, order, shipment, now, locales)
    if stall.message is not None:
        outcome.planned.append(stall.message)
    outcome.detail = f"{outcome.detail}; {stall.detail}"
    arrived = [step for step in fresh if step.milestone is Milestone.DELIVERED]
    if arrived and shipment.milestone == Milestone.DELIVERED:
        asked = survey.plan_after_delivery(
            session, shop=shop, order=order, delivered_at=arrived[0].at, now=now, locales=locales
        )
        if asked.message is not None:
            outcome.planned.append(asked.message)
        outcome.detail = f"{outcome.detail}; {asked.detail}"
    return outcome


def _tell(
    session: Session,
    shop: Shop,
    order: Order,
    shipment: Shipment,
    news: Reached,
    now: datetime,
    locales: Collection[str],
) -> Outcome:
    """Plan the news; older news still waiting is stale now, even if this one is not sent."""
    label = shipment.tracking_number or shipment.external_id
    veto = None
    if news.milestone in SAME_DAY:
        veto = partial(_stale_by_then, news=news, zone=order.buyer_timezone)
    planned = plan_message(
        session,
        shop=shop,
        order=order,
        kind=KINDS[KIND_FOR[news.milestone]],
        dedupe_key=_dedupe_key(shipment, news),
        earliest=now,
        now=now,
        locales=locales,
        shipment=shipment,
        news=_as_news(news),
        veto=veto,
    )
    detail = f"shipment {label}: {planned.detail}"
    message = planned.message
    if message is not None and message.state is MessageState.CANCELLED:
        return Outcome(detail)  # what waits is no staler than this news, which was never sent
    why = f"superseded by newer news: {news.milestone.value} at {news.at.isoformat()}"
    superseded = _stop_pending(
        session, shipment, why, now, state=MessageState.SUPERSEDED, only="news", keep=message
    )
    if superseded:
        detail += f"; {superseded} older message(s) superseded"
    return Outcome(detail, [message] if message else [])


def _stale_by_then(timing: Plan, *, news: Reached, zone: str) -> str | None:
    """Why same-day news would be false by the time the buyer's window lets it leave, if so."""
    local = pytz.timezone(zone)
    happened, due = news.at.astimezone(local).date(), timing.due_at.astimezone(local).date()
    if due == happened:
        return None
    return (
        f"{news.milestone.value} on {happened.isoformat()} could only reach the buyer on "
        f"{due.isoformat()} ({zone}), when it would no longer be true"
    )


def _keep_reassurance_ready(
    session: Session,
    shop: Shop,
    order: Order,
    shipment: Shipment,
    now: datetime,
    locales: Collection[str],
) -> Planned:
    """Replace the pending stall reassurance with one counted from this news, while in transit.

    It is an ordinary scheduled message due when the silence would reach the shop's limit; any
    news before then cancels it, so it leaves only if the carrier really stays silent.
    """
    why = f"the carrier reported news on {_day(shipment.latest_event_at)}"
    _stop_pending(session, shipment, why, now, only="stall")
    last = Milestone(shipment.journey[-1]["milestone"]) if shipment.journey else None
    if last in AT_REST or shipment.milestone == Milestone.DELIVERED:
        return Planned(None, "no reassurance needed")
    if not (shop.tracking_secrets or _carrier_has_reported(shipment)):
        # Only the seller has spoken ("shipped"): silence from a carrier that never reports
        # here says nothing about the parcel, and a "delayed" email would be false.
        return Planned(None, "no carrier news yet, so no silence to watch")
    silence = policies.stall_after(shop.settings)
    planned = plan_message(
        session,
        shop=shop,
        order=order,
        kind=KINDS["shipment_delayed"],
        dedupe_key=f"shipment:{shipment.id}:{STALL_KEY}:{now.isoformat()}",
        earliest=now + silence,
        now=now,
        locales=locales,
        shipment=shipment,
        news={
            "milestone": Milestone.DELAYED.value,
            "at": (shipment.latest_event_at or now).isoformat(),
            "stalled": True,
            "days": silence.days,
        },
    )
    if planned.message is not None:
        due = planned.message.due_at.astimezone(pytz.timezone(order.buyer_timezone))
        planned.message.reason = (
            f"kept ready for a silence: sent only if the carrier reports nothing for "
            f"{silence.days} days, until {due:%Y-%m-%d %H:%M} {order.buyer_timezone} "
            f"({planned.message.reason})"
        )
    return planned


def _carrier_has_reported(shipment: Shipment) -> bool:
    return any(step["milestone"] != Milestone.SHIPPED for step in shipment.journey)


def _find_or_create(
    session: Session, order: Order, update: ShipmentUpdated, now: datetime
) -> Shipment:
    """The parcel by tracking number (news may come from several sources), else by source id."""
    query = select(Shipment).where(Shipment.order_id == order.id)
    found = None
    if update.tracking_number:
        found = session.scalar(query.where(Shipment.tracking_number == update.tracking_number))
    if found is None:
        found = session.scalar(query.where(Shipment.external_id == update.shipment_id))
    if found is None:
        found = Shipment(
            order_id=order.id,
            external_id=update.shipment_id,
            journey=[],
            last_heard_at=now,
            created_at=now,
            updated_at=now,
        )
        session.add(found)
        session.flush()
        session.refresh(order, ["shipments"])
    return found


def _merge_identity(shipment: Shipment, update: ShipmentUpdated) -> None:
    """What the news says about the parcel; what it leaves out stays as an earlier one said."""
    for name in ("carrier", "tracking_number", "tracking_url", "origin_country"):
        if (value := getattr(update, name)) is not None:
            setattr(shipment, name, value)
    if update.destination_country:
        shipment.destination_country = update.destination_country


def _new_steps(shipment: Shipment, reached: tuple[Reached, ...]) -> list[Reached]:
    """Steps not in the journey yet, in carrier time order."""
    known_once = {step["milestone"] for step in shipment.journey}
    known = {(step["milestone"], step["at"]) for step in shipment.journey}
    fresh = []
    for step in sorted(reached, key=lambda item: item.at):
        key = (step.milestone.value, _utc(step.at))
        if key in known or (step.milestone in ONCE and step.milestone.value in known_once):
            continue
        known.add(key)
        known_once.add(step.milestone.value)
        fresh.append(step)
    return fresh


def _record(shipment: Shipment, fresh: list[Reached]) -> None:
    journey = [*shipment.journey, *(_as_news(step) for step in fresh)]
    shipment.journey = sorted(journey, key=lambda step: step["at"])
    for step in fresh:
        stage = STAGES[step.milestone]
        if stage is not None and stage >= (_stage(shipment.milestone) or 0):
            shipment.milestone = step.milestone.value


def _news(fresh: list[Reached], stage_before: int | None) -> Reached | None:
    """The newest step worth telling: one with a message that does not move the parcel back."""
    for step in reversed(fresh):
        if step.milestone not in KIND_FOR:
            continue
        stage = STAGES[step.milestone]
        if stage is None or stage >= (stage_before or 0):
            return step
        return None  # the newest step is a step back: nothing older in the batch is news either
    return None


def _stage(milestone: str | Milestone | None) -> int | None:
    return STAGES[Milestone(milestone)] if milestone else None


def _dedupe_key(shipment: Shipment, news: Reached) -> str:
    kind = KIND_FOR[news.milestone]
    if news.milestone in ONCE:
        return f"shipment:{shipment.id}:{kind}"
    return f"shipment:{shipment.id}:{kind}:{_utc(news.at)}"


def _stop_pending(
    session: Session,
    shipment: Shipment,
    reason: str,
    now: datetime,
    *,
    state: MessageState = MessageState.CANCELLED,
    only: Literal["news", "stall"] | None = None,
    keep: Message | None = None,
) -> int:
    """End the parcel's messages not yet handed to a transport; returns how many.

    `only` picks the news or the stall reassurance; the two are replaced by different things.
    """
    query = select(Message).where(Message.shipment_id == shipment.id, Message.state.in_(PENDING))
    stopped = 0
    for message in session.scalars(query.with_for_update()):
        is_stall = f":{STALL_KEY}:" in message.dedupe_key
        if (only is not None and is_stall != (only == "stall")) or message is keep:
            continue
        outbox.end(session, message, state, reason, now)
        stopped += 1
    return stopped


def _refresh_pending(session: Session, shop: Shop, order: Order, shipment: Shipment) -> None:
    """A tracking number or date added later still reaches the emails that wait to be sent."""
    query = select(Message).where(Message.shipment_id == shipment.id, Message.state.in_(PENDING))
    for message in session.scalars(query):
        kind = KINDS[message.kind]
        message.context = kind.build_context(order, shop, shipment, message.context.get("news"))


def _flag(order: Order, shipment: Shipment, fresh: list[Reached], now: datetime) -> None:
    raised = [
        {
            "flag": "exception",
            "reason": (step.exception.value if step.exception else step.milestone.value),
            "shipment": shipment.tracking_number or shipment.external_id,
            "at": step.at.isoformat(),
            "raised_at": now.isoformat(),
        }
        for step in fresh
        if step.milestone in FLAGGED
    ]
    if raised:
        order.flags = [*order.flags, *raised]


def _as_news(step: Reached) -> News:
    news: dict[str, Any] = {"milestone": step.milestone.value, "at": _utc(step.at)}
    for name in ("location", "country_code", "note"):
        news[name] = getattr(step, name)
    news["exception"] = step.exception.value if step.exception else None
    return news


def _utc(instant: datetime) -> str:
    """ISO text in UTC, so journey steps sort and compare as text whatever the carrier's offset."""
    return instant.astimezone(UTC).isoformat()


def _day(instant: datetime | None) -> str:
    return instant.date().isoformat() if instant else "an unknown day"
