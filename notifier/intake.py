"""Stores accepted deliveries and tells a replay from new news (invariants 1 and 2)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from notifier import ledger
from notifier.models import EventOutcome, InboundEvent, Shop
from notifier.sources import Envelope


def find_duplicate(
    session: Session, source: str, shop: Shop, envelope: Envelope
) -> InboundEvent | None:
    """The earlier delivery this one repeats: same delivery id, or same event id."""
    same = [InboundEvent.delivery_id == envelope.delivery_id]
    if envelope.event_id:
        same.append(InboundEvent.event_id == envelope.event_id)
    return session.scalar(
        select(InboundEvent)
        .where(InboundEvent.source == source, InboundEvent.shop_id == shop.id, or_(*same))
        .limit(1)
    )


def record(
    session: Session,
    *,
    source: str,
    shop: Shop,
    envelope: Envelope,
    topic: str,
    body: bytes,
    received_at: datetime,
    outcome: EventOutcome,
    detail: str,
    order_id: int | None,
) -> InboundEvent:
    event = InboundEvent(
        shop_id=shop.id,
        source=source,
        delivery_id=envelope.delivery_id,
        event_id=envelope.event_id,
        topic=topic,
        received_at=received_at,
        occurred_at=envelope.occurred_at,
        headers=envelope.headers,
        body_sha256=ledger.keep(session, body),
        verification=envelope.verification,
        outcome=outcome,
        outcome_detail=detail,
        order_id=order_id,
    )
    session.add(event)  # inserted with the rest at commit, before the messages naming it
    ledger.note_event(session, event)
    return event
