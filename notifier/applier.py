"""Applies stored deliveries: journey and planning, then the event's verdict and ledger entry.

A webhook either applies its delivery in its own transaction (NOTIFIER_APPLY=inline, the
default) or only stores it and answers (deferred); workers then apply what is pending, from
the stored raw body and in arrival order, through the same `apply_translation`, so both ways
give the same orders, messages and trail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from notifier import journey, ledger
from notifier.clock import Clock
from notifier.events import Translation
from notifier.models import EventOutcome, InboundEvent, Message, Shop
from notifier.sources import Envelope, aftership, shopify, standard, woocommerce

log = logging.getLogger(__name__)

TRANSLATORS: dict[str, Callable[[Envelope, bytes], Translation]] = {
    shopify.NAME: shopify.translate,
    standard.NAME: standard.translate,
    woocommerce.NAME: woocommerce.translate,
    aftership.NAME: aftership.translate,
}
# One applier at a time across every worker (PostgreSQL advisory lock; SQLite has one writer
# anyway), so news is applied in the order it arrived: a fulfilment never before its order.
APPLIER_LOCK = 0x6E6F7469  # "noti"
# The database is unreachable or busy: nothing is wrong with the deliveries, so they wait.
DATABASE_AWAY = (OperationalError, InterfaceError)


@dataclass
class Verdict:
    """What a delivery did: applied or ignored, why, the order it reached, messages planned."""

    outcome: EventOutcome
    detail: str
    order_id: int | None
    planned: list[Message] = field(default_factory=list)


def apply_translation(
    session: Session,
    shop: Shop,
    translation: Translation,
    *,
    now: datetime,
    locales: Collection[str],
) -> Verdict:
    """Run each canonical event through the journey in the caller's transaction."""
    results = [
        journey.apply(session, shop, item, now=now, locales=locales) for item in translation.events
    ]
    ignored = translation.ignored_because
    if ignored is None and results and all(r.order is None for r in results):
        ignored = "; ".join(r.detail for r in results)
    return Verdict(
        outcome=EventOutcome.APPLIED if ignored is None else EventOutcome.IGNORED,
        detail=ignored if ignored is not None else "; ".join(r.detail for r in results),
        order_id=next((r.order.id for r in results if r.order is not None), None),
        planned=[message for result in results for message in result.planned],
    )


def settle(session: Session, event: InboundEvent, verdict: Verdict) -> None:
    """Give the stored event its verdict and its ledger entry; name it as the messages' cause."""
    event.outcome = verdict.outcome
    event.outcome_detail = verdict.detail
    event.order_id = verdict.order_id
    for message in verdict.planned:
        message.caused_by = event
    ledger.note_event(session, event)


def apply_pending(
    sessions: sessionmaker[Session],
    clock: Clock,
    locales: Collection[str],
    *,
    batch_size: int = 100,
) -> int:
    """Apply stored deliveries, oldest first, until none is pending; returns how many.

    A batch shares one transaction; if it fails, its events are tried one transaction each, so
    one bad event cannot hold back the rest (it ends ignored, with the error named).
    """
    applied = 0
    while True:
        try:
            done = _apply_batch(sessions, clock, locales, batch_size, only=None)
        except DATABASE_AWAY:
            raise  # the caller's loop tries again later
        except Exception:
            log.exception("applying a batch of stored deliveries failed; one at a time now")
            done = _apply_singly(sessions, clock, locales, batch_size)
        applied += done
        if done < batch_size:
            if applied:
                log.info("applied %d stored deliveries", applied)
            return applied


def _apply_batch(
    sessions: sessionmaker[Session],
    clock: Clock,
    locales: Collection[str],
    limit: int,
    *,
    only: int | None,
) -> int:
    with sessions.begin() as session:
        if not _take_turn(session):
            return 0
        query = select(InboundEvent).where(InboundEvent.outcome == EventOutcome.PENDING)
        if only is not None:
            query = query.where(InboundEvent.id == only)
        events = session.scalars(query.order_by(InboundEvent.id).limit(limit)).all()
        now = clock.now()
        for event in events:
            _apply_one(session, event, now, locales)
        return len(events)


def _apply_singly(
    sessions: sessionmaker[Session], clock: Clock, locales: Collection[str], limit: int
) -> int:
    with sessions() as session:
        ids = session.scalars(
            select(InboundEvent.id)
            .where(InboundEvent.outcome == EventOutcome.PENDING)
            .order_by(InboundEvent.id)
            .limit(limit)
        ).all()
    for event_id in ids:
        for attempt in (1, 2):  # a second try, for a race (a unique key taken meanwhile)
            try:
                _apply_batch(sessions, clock, locales, 1, only=event_id)
                break
            except DATABASE_AWAY:
                raise
            except Exception as error:
                log.exception("stored delivery %s could not be applied", event_id)
                if attempt == 2:
                    _give_up(sessions, event_id, error)
    return len(ids)


def _apply_one(
    session: Session, event: InboundEvent, now: datetime, locales: Collection[str]
) -> None:
    shop = session.get_one(Shop, event.shop_id)
    body = event.body
    if body is None:  # erased at the buyer's request before a worker reached it
        verdict = Verdict(EventOutcome.IGNORED, "body erased before it was applied", None)
    else:
        envelope = Envelope(
            delivery_id=event.delivery_id,
            event_id=event.event_id,
            topic=event.topic,
            occurred_at=event.occurred_at,
            headers=event.headers,
            verification=event.verification,
        )
        translation = TRANSLATORS[event.source](envelope, body)
        verdict = apply_translation(session, shop, translation, now=now, locales=locales)
    settle(session, event, verdict)


def _give_up(sessions: sessionmaker[Session], event_id: int, error: Exception) -> None:
    """Never silent: the event stays stored, ignored, with the error in its record and the log."""
    with sessions.begin() as session:
        event = session.get_one(InboundEvent, event_id)
        if event.outcome is not EventOutcome.PENDING:
            return
        why = f"could not be applied ({type(error).__name__}: {error}); see the worker's log"
        settle(session, event, Verdict(EventOutcome.IGNORED, why[:2000], None))


def _take_turn(session: Session) -> bool:
    """On PostgreSQL, whether this transaction is the one applier now; SQLite's BEGIN
    IMMEDIATE already made it the only writer."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(session.scalar(select(func.pg_try_advisory_xact_lock(APPLIER_LOCK))))


def pending_count(session: Session) -> int:
    return int(
        session.scalar(select(func.count()).where(InboundEvent.outcome == EventOutcome.PENDING))
        or 0
    )
