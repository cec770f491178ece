"""Stores accepted deliveries and tells a replay from new news (invariants 1 and 2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, Select, Table, bindparam, exists, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from notifier import ledger
from notifier.applier import Verdict, settle
from notifier.group_commit import GroupCommit
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


class PendingStore:
    """Commits deliveries as pending for a worker (NOTIFIER_APPLY=deferred), or finds their twins.

    In SQLAlchemy Core, with no unit of work and no ledger entry yet (the worker writes it with
    the verdict); the raw body goes to the ledger's contents now, and only if its event went in.
    Deliveries arriving together share one transaction and one flush (group commit): each
    request still returns only once its own row is committed.
    """

    def __init__(self, engine: Engine, *, max_batch: int = 64) -> None:
        self.engine = engine
        self._group: GroupCommit[dict[str, Any], Stored] = GroupCommit(
            self.store_batch, max_batch=max_batch
        )

    def store(self, row: dict[str, Any]) -> Stored:
        """Commit one delivery (a `pending_row`) with whichever others are waiting."""
        return self._group.submit(row)

    def store_batch(self, batch: list[dict[str, Any]]) -> list[Stored | BaseException]:
        """One commit for the batch: each delivery's answer, or the error it alone caused."""
        with self.engine.connect() as connection:
            try:
                ids = _insert(connection, batch)
            except DBAPIError as problem:
                if len(batch) == 1 or not _one_of_them(problem):
                    raise  # this delivery alone failed, or the database is away for all
            else:
                return [
                    _answer(connection, values, event_id)
                    for values, event_id in zip(batch, ids, strict=True)
                ]
        # One delivery spoiled the batch (or two batches crossed on PostgreSQL): each on its
        # own, so its neighbours are not refused with it (once the batch's connection, and on
        # SQLite its turn to write, is given back).
        return [self._alone(values) for values in batch]

    def _alone(self, values: dict[str, Any]) -> Stored | BaseException:
        with self.engine.connect() as connection:
            try:
                (event_id,) = _insert(connection, [values])
            except DBAPIError as problem:
                if not _one_of_them(problem):
                    raise
                return problem
            return _answer(connection, values, event_id)


def pending_row(
    *,
    source: str,
    shop_id: int,
    envelope: Envelope,
    topic: str,
    body: bytes,
    received_at: datetime,
) -> dict[str, Any]:
    """The values of a delivery's inbound_events row while pending, and its raw body."""
    return {
        "shop_id": shop_id,
        "source": source,
        "delivery_id": envelope.delivery_id,
        "event_id": envelope.event_id,
        "topic": topic,
        "received_at": received_at,
        "occurred_at": envelope.occurred_at,
        "headers": envelope.headers,
        "body_sha256": ledger.sha256(body),
        "verification": envelope.verification,
        "outcome": EventOutcome.PENDING,
        "outcome_detail": PENDING_DETAIL,
        "order_id": None,
        "content": body,
    }


def _insert(connection: Connection, batch: list[dict[str, Any]]) -> list[int | None]:
    """Each delivery's new event id, or None where a twin was already stored; one commit.

    The events go in as one multi-row INSERT; those it skipped (a twin stored before, or
    earlier in this batch) return no row. Bodies are kept only for the events that went in.
    """
    dialect = connection.dialect.name
    if dialect == "postgresql" and len(batch) == 1:  # one statement, one round trip, no BEGIN
        alone = connection.execution_options(isolation_level="AUTOCOMMIT")
        return [alone.execute(_STORE_POSTGRESQL, batch[0]).scalar()]
    with connection.begin():
        inserted = {
            (row.source, row.shop_id, row.delivery_id): row.id
            for row in connection.execute(
                _STORE_MANY[dialect],
                [{name: values[name] for name in _COLUMNS} for values in batch],
            )
        }
        # The first of a batch's twins got the row; the others find it as their twin.
        ids = [
            inserted.pop((values["source"], values["shop_id"], values["delivery_id"]), None)
            for values in batch
        ]
        kept = {
            values["body_sha256"]: values["content"]
            for values, event_id in zip(batch, ids, strict=True)
            if event_id is not None
        }
        if kept:
            connection.execute(
                _KEEP_MANY[dialect],
                [{"sha256": key, "content": body} for key, body in kept.items()],
            )
        return ids


def _one_of_them(problem: DBAPIError) -> bool:
    """A failure one delivery of the batch may have caused, rather than the database's state."""
    if isinstance(problem, IntegrityError | DataError):
        return True
    # deadlock_detected, serialization_failure: batches racing over the same twins
    return getattr(problem.orig, "sqlstate", None) in ("40P01", "40001")


def _answer(connection: Connection, values: dict[str, Any], event_id: int | None) -> Stored:
    if event_id is not None:
        return Stored(
            event_id,
            values["delivery_id"],
            values["received_at"],
            EventOutcome.PENDING,
            PENDING_DETAIL,
        )
    twin = _twin(connection, values)
    if twin is None:  # the twin was erased in between: impossible, as rows stay
        raise RuntimeError(f"delivery {values['delivery_id']!r} conflicts with no row")
    return twin


def has_pending(engine: Engine, shop_id: int) -> bool:
    """Whether this shop has deliveries stored but not yet applied (left by deferred apply)."""
    with engine.connect() as connection:
        return connection.execute(_PENDING, {"shop_id": shop_id}).first() is not None


def _twin(connection: Connection, values: dict[str, Any]) -> Stored | None:
    row = connection.execute(_TWIN, values).first()  # a NULL event_id matches nothing
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
_RETURNED = (EVENTS.c.id, EVENTS.c.source, EVENTS.c.shop_id, EVENTS.c.delivery_id)
_STORE_MANY = {
    "sqlite": sqlite.insert(EVENTS).on_conflict_do_nothing().returning(*_RETURNED),
    "postgresql": postgresql.insert(EVENTS).on_conflict_do_nothing().returning(*_RETURNED),
}
_KEEP_MANY = {
    "sqlite": sqlite.insert(CONTENTS).on_conflict_do_nothing(),
    "postgresql": postgresql.insert(CONTENTS).on_conflict_do_nothing(),
}


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
