"""Stores accepted deliveries and tells a replay from new news (invariants 1 and 2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, Select, Table, bindparam, exists, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from notifier import ledger
from notifier.applier import Verdict, settle
from notifier.models import EventOutcome, InboundEvent, LedgerContent, Shop
from notifier.sources import Envelope

EVENTS = cast(Table, InboundEvent.__table__)
CONTENTS = cast(Table, LedgerContent.__table__)
PENDING_DETAIL = "stored; a worker applies it"


@dataclass(frozen=True)
class Stored:
    """What the answer to a delivery says about the row that holds it."""

    event_id: int
    delivery_id: str
    received_at: datetime
    outcome: EventOutcome
    detail: str
    duplicate: bool = False

    @classmethod
    def of(cls, event: InboundEvent, *, duplicate: bool = False) -> Stored:
        return cls(
            event.id,
            event.delivery_id,
            event.received_at,
            event.outcome,
            event.outcome_detail,
            duplicate,
        )


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


def store_pending(
    engine: Engine,
    *,
    source: str,
    shop_id: int,
    envelope: Envelope,
    topic: str,
    body: bytes,
    received_at: datetime,
) -> Stored:
    """Commit the delivery as pending for a worker (NOTIFIER_APPLY=deferred), or find its twin.

    In SQLAlchemy Core, with no unit of work and no ledger entry yet (the worker writes it with
    the verdict); the raw body goes to the ledger's contents now. On PostgreSQL one statement
    in one round trip stores both; a unique conflict (a twin) stores neither.
    """
    digest = ledger.sha256(body)
    values = {
        "shop_id": shop_id,
        "source": source,
        "delivery_id": envelope.delivery_id,
        "event_id": envelope.event_id,
        "topic": topic,
        "received_at": received_at,
        "occurred_at": envelope.occurred_at,
        "headers": envelope.headers,
        "body_sha256": digest,
        "verification": envelope.verification,
        "outcome": EventOutcome.PENDING,
        "outcome_detail": PENDING_DETAIL,
        "order_id": None,
        "content": body,
    }
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            event_id = connection.execute(_STORE_POSTGRESQL, values).scalar()
        else:
            with connection.begin():
                event_id = connection.execute(_STORE_SQLITE, values).scalar()
                if event_id is not None:
                    connection.execute(_KEEP_SQLITE, {"sha256": digest, "content": body})
        if event_id is None:
            twin = _twin(connection, source, shop_id, envelope)
            if twin is None:  # the twin was erased in between: impossible, as rows stay
                raise RuntimeError(f"delivery {envelope.delivery_id!r} conflicts with no row")
            return twin
    return Stored(event_id, envelope.delivery_id, received_at, EventOutcome.PENDING, PENDING_DETAIL)


def has_pending(engine: Engine, shop_id: int) -> bool:
    """Whether this shop has deliveries stored but not yet applied (left by deferred apply)."""
    with engine.connect() as connection:
        return connection.execute(_PENDING, {"shop_id": shop_id}).first() is not None


def _twin(connection: Connection, source: str, shop_id: int, envelope: Envelope) -> Stored | None:
    row = connection.execute(
        _TWIN,
        {
            "source": source,
            "shop_id": shop_id,
            "delivery_id": envelope.delivery_id,
            "event_id": envelope.event_id,  # NULL matches nothing
        },
    ).first()
    if row is None:
        return None
    return Stored(row.id, row.delivery_id, row.received_at, row.outcome, row.outcome_detail, True)


# Built once: a webhook's statements are the same every time, only their values change.
_TWIN = (
    select(
        EVENTS.c.id,
        EVENTS.c.delivery_id,
        EVENTS.c.received_at,
        EVENTS.c.outcome,
        EVENTS.c.outcome_detail,
    )
    .where(
        EVENTS.c.source == bindparam("source"),
        EVENTS.c.shop_id == bindparam("shop_id"),
        or_(
            EVENTS.c.delivery_id == bindparam("delivery_id"),
            EVENTS.c.event_id == bindparam("event_id"),
        ),
    )
    .limit(1)
)
_PENDING = (
    select(EVENTS.c.id)
    .where(EVENTS.c.outcome == EventOutcome.PENDING, EVENTS.c.shop_id == bindparam("shop_id"))
    .limit(1)
)
_COLUMNS = [c.name for c in EVENTS.c if c.name != "id"]
_STORE_SQLITE = (
    sqlite.insert(EVENTS)
    .values({name: bindparam(name) for name in _COLUMNS})
    .on_conflict_do_nothing()
    .returning(EVENTS.c.id)
)
_KEEP_SQLITE = sqlite.insert(CONTENTS).on_conflict_do_nothing()


def _store_postgresql() -> Select[Any]:
    """INSERT the event unless a twin exists, and its body only if the event went in."""
    event = (
        postgresql.insert(EVENTS)
        .values({name: bindparam(name) for name in _COLUMNS})
        .on_conflict_do_nothing()
        .returning(EVENTS.c.id)
        .cte("stored_event")
    )
    body = (
        postgresql.insert(CONTENTS)
        .from_select(
            ["sha256", "content"],
            select(
                bindparam("body_sha256", type_=CONTENTS.c.sha256.type),
                bindparam("content", type_=CONTENTS.c.content.type),
            ).where(exists(select(event.c.id))),
        )
        .on_conflict_do_nothing()
        .cte("stored_body")
    )
    return select(event.c.id).add_cte(body)


_STORE_POSTGRESQL = _store_postgresql()


def record(
    session: Session,
    *,
    source: str,
    shop: Shop,
    envelope: Envelope,
    topic: str,
    body: bytes,
    received_at: datetime,
    verdict: Verdict,
) -> InboundEvent:
    """The stored delivery; settled (ledger entry, messages' cause) unless still pending."""
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
        outcome=verdict.outcome,
        outcome_detail=verdict.detail,
        order_id=verdict.order_id,
    )
    session.add(event)  # inserted with the rest at commit, before the messages naming it
    if verdict.outcome is not EventOutcome.PENDING:
        settle(session, event, verdict)
    return event
