"""An order's record, read back: its events and messages in time order, for people and scripts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytz
from babel.numbers import format_currency
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from notifier import suppression
from notifier.models import (
    PLANNED_ORDER,
    Delivery,
    InboundEvent,
    Message,
    Order,
    Shop,
    SurveyAnswer,
)


class OrderNotFound(LookupError):
    pass


def find_orders(session: Session, ref: str, shop_slug: str | None) -> list[Order]:
    """By the storefront's id or the number the buyer sees, with or without its leading '#'."""
    numbers = {ref, ref.lstrip("#"), "#" + ref.lstrip("#")}
    query = (
        select(Order)
        .join(Shop)
        .where(or_(Order.external_id == ref, Order.number.in_(numbers)))
        .order_by(Order.id)
    )
    if shop_slug:
        query = query.where(Shop.slug == shop_slug)
    return list(session.scalars(query))


def _local(instant: datetime | None, zone: str) -> str | None:
    if instant is None:
        return None
    return instant.astimezone(pytz.timezone(zone)).strftime("%Y-%m-%d %H:%M %Z")


def _utc(instant: datetime | None) -> str | None:
    return instant.isoformat() if instant else None


def build(session: Session, order: Order) -> dict[str, Any]:
    events = session.scalars(
        select(InboundEvent).where(InboundEvent.order_id == order.id).order_by(InboundEvent.id)
    )
    messages = list(
        session.scalars(
            select(Message).where(Message.order_id == order.id).order_by(*PLANNED_ORDER)
        )
    )
    deliveries = session.scalars(
        select(Delivery)
        .where(Delivery.message_id.in_([message.id for message in messages]))
        .order_by(Delivery.id)
    )
    by_message: dict[str, list[Delivery]] = {}
    for delivery in deliveries:
        by_message.setdefault(delivery.message_id, []).append(delivery)
    answers = session.scalars(
        select(SurveyAnswer).where(SurveyAnswer.order_id == order.id).order_by(SurveyAnswer.id)
    )
    blocked = (
        suppression.active(session, order.shop_id, order.buyer_email) if order.buyer_email else []
    )
    zone = order.buyer_timezone
    return {
        "shop": order.shop.slug,
        "order": {
            "id": order.external_id,
            "number": order.number,
            "status": order.status.value,
            "buyer_email": order.buyer_email,
            "buyer_locale": order.buyer_locale_tag,
            "buyer_timezone": zone,
            "buyer_zones": order.buyer_zones,
            "timezone_source": order.timezone_source,
            "placed_at": _utc(order.placed_at),
            "total": format_currency(order.total, order.currency, locale="en"),
            "flags": order.flags,
        },
        "shipments": [
            {
                "id": shipment.external_id,
                "carrier": shipment.carrier,
                "tracking_number": shipment.tracking_number,
                "tracking_url": shipment.tracking_url,
                "milestone": shipment.milestone,
                "news_as_of": _utc(shipment.latest_event_at),
                "last_heard_at": _utc(shipment.last_heard_at),
                "expected": [
                    day.isoformat()
                    for day in (shipment.expected_earliest, shipment.expected_latest)
                    if day
                ],
                "journey": shipment.journey,
            }
            for shipment in order.shipments
        ],
        "events": [
            {
                "received_at": _utc(event.received_at),
                "source": event.source,
                "topic": event.topic,
                "delivery_id": event.delivery_id,
                "verification": event.verification,
                "outcome": event.outcome.value,
                "detail": event.outcome_detail,
            }
            for event in events
        ],
        "messages": [
            {
                "kind": message.kind,
                "state": message.state.value,
                "recipient": message.recipient,
                "locale": message.locale,
                "locale_reason": message.locale_reason,
                "due_at_utc": _utc(message.due_at),
                "due_at_local": _local(message.due_at, message.timezone),
                "reason": message.reason,
                "message_id": message.rfc_message_id,
                "attempts": message.attempts,
                "sent_at_utc": _utc(message.sent_at),
                "last_error": message.last_error,
                "deliveries": [
                    {
                        "attempt": delivery.attempt,
                        "handed_at": _utc(delivery.handed_at),
                        "transport": delivery.transport,
                        "outcome": delivery.outcome.value,
                        "response": delivery.response,
                        "sha256": delivery.raw_sha256,
                        "possible_resend": delivery.possible_resend,
                    }
                    for delivery in by_message.get(message.id, [])
                ],
            }
            for message in messages
        ],
        # Every answer, oldest first: the last one is the one that counts.
        "survey_answers": [
            {"answered_at": _utc(a.answered_at), "score": a.score, "comment": a.comment}
            for a in answers
        ],
        "suppressions": [suppression.describe(entry) for entry in blocked],
    }


def as_text(record: dict[str, Any]) -> str:
    order = record["order"]
    lines = [
        f"Order {order['number']} (id {order['id']}) at {record['shop']}: {order['status']}",
        f"  buyer {order['buyer_email'] or '(no email)'}, locale {order['buyer_locale'] or '-'}, "
        f"timezone {order['buyer_timezone']} ({order['timezone_source']})",
        f"  placed {order['placed_at']}, total {order['total']}",
    ]
    for flag in order["flags"]:
        parcel = f"parcel {flag['shipment']}, " if flag.get("shipment") else ""
        lines.append(f"  FLAG {flag['flag']}: {flag.get('reason', '')} ({parcel}{flag['at']})")
    lines += ["", "Shipments:"]
    for parcel in record["shipments"]:
        lines.append(
            f"  {parcel['carrier'] or 'carrier unknown'} {parcel['tracking_number'] or parcel['id']}"
            f": {parcel['milestone'] or 'no news yet'}, news as of {parcel['news_as_of']}, "
            f"last heard {parcel['last_heard_at']}"
        )
        for step in parcel["journey"]:
            where = f" ({step['location']})" if step.get("location") else ""
            lines.append(f"    {step['at']}  {step['milestone']}{where}")
    if not record["shipments"]:
        lines.append("  (none)")
    lines += ["", "Events:"]
    for event in record["events"]:
        lines.append(
            f"  {event['received_at']}  {event['source']} {event['topic']}  {event['outcome']}: "
            f"{event['detail']}"
        )
    lines += ["", "Messages:"]
    for message in record["messages"]:
        lines += [
            f"  {message['kind']}  {message['state']}  to {message['recipient']} in {message['locale']}",
            f"    due {message['due_at_utc']} UTC / {message['due_at_local']} buyer time",
            f"    why: {message['reason']}",
            f"    locale: {message['locale_reason']}",
            f"    Message-ID {message['message_id']}, attempts {message['attempts']}",
        ]
        for delivery in message["deliveries"]:
            lines.append(
                f"    attempt {delivery['attempt']} {delivery['handed_at']} via "
                f"{delivery['transport']}: {delivery['outcome']} ({delivery['response']})"
                + ("  [possible re-send]" if delivery["possible_resend"] else "")
            )
        if message["last_error"]:
            lines.append(f"    last error: {message['last_error']}")
    if not record["messages"]:
        lines.append("  (none)")
    if record["survey_answers"]:
        lines += ["", "Survey answers:"]
        for answer in record["survey_answers"]:
            comment = f": {answer['comment']}" if answer["comment"] else ""
            lines.append(f"  {answer['answered_at']}  {answer['score']} of 5{comment}")
    if record["suppressions"]:
        lines += ["", "Not emailed:"]
        lines += [f"  {line}" for line in record["suppressions"]]
    return "\n".join(lines) + "\n"
