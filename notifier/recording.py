"""The dispatcher's last step: what became of each hand-over, recorded many to a transaction.

Each hand-over that left bytes becomes a delivery (its bytes kept in the ledger), and its message
moves on (sent, retried later with backoff, or failed), unless another worker has taken it over
meanwhile. One commit (one disk flush) is shared by a batch of hand-overs.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from notifier import ledger, outbox
from notifier.models import Delivery, DeliveryOutcome, Message, MessageState, Order
from notifier.transports import Receipt, TransientFailure, TransportError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    first_delay: timedelta = timedelta(minutes=1)
    max_delay: timedelta = timedelta(hours=6)

    def delay(self, message_id: str, attempt: int) -> timedelta:
        """Exponential backoff with ±25% jitter derived from the message, so it is reproducible."""
        doubled = self.first_delay.total_seconds() * 2 ** min(attempt - 1, 40)
        base = timedelta(seconds=min(doubled, self.max_delay.total_seconds()))
        seed = hashlib.sha256(f"{message_id}:{attempt}".encode()).digest()
        jitter = 0.75 + 0.5 * (int.from_bytes(seed[:4], "big") / 0xFFFFFFFF)
        return timedelta(seconds=base.total_seconds() * jitter)


class Recorder:
    def __init__(
        self, sessions: sessionmaker[Session], *, worker: str, retry: RetryPolicy, transport: str
    ) -> None:
        self.sessions = sessions
        self.worker = worker
        self.retry = retry
        self.transport = transport  # the transport's name, written on each delivery

    def record(self, results: list[Result]) -> tuple[int, int, int]:
        """Record each hand-over (if bytes left) and move each message on, unless taken over;
        how many were sent, will be retried, and failed.

        One transaction for them all, in SQLAlchemy Core: a statement each for the locks, the
        messages' read, the deliveries and the messages' new states, however many results (the
        ORM's unit of work was a quarter of a dispatcher's time). Locks are taken the way
        webhooks take them: every order row first, then every message row, each in id order, so
        a webhook superseding one of these messages and other workers recording theirs never
        wait on each other in a circle.
        """
        ids = sorted(result.message_id for result in results)
        with self.sessions.begin() as session:
            order_ids = sorted(set(session.scalars(_ORDERS_OF, {"ids": ids})))
            session.execute(_LOCK_ORDERS, {"ids": order_ids}).all()
            # Locked, so a worker taking a message over cannot slip in between read and write.
            locked: dict[str, Any] = {
                row.id: row for row in session.execute(_LOCK_MESSAGES, {"ids": ids})
            }
            handed: list[_HandedOver] = []
            moved: list[dict[str, object]] = []
            for result in results:
                self._record_one(session, locked[result.message_id], result, handed, moved)
            if handed:
                made = session.scalars(_HAND_OVER, [delivery.row for delivery in handed]).all()
                for delivery, delivery_id in zip(handed, made, strict=True):
                    delivery.id = delivery_id  # each note names its own row
            if moved:
                session.execute(_MOVE_ON, moved)
        sent = sum(result.error is None for result in results)
        retried = sum(
            isinstance(result.error, TransientFailure)
            and result.claim.attempt < self.retry.max_attempts
            for result in results
        )
        return sent, retried, len(results) - sent - retried

    def _record_one(
        self,
        session: Session,
        message: Any,  # a row of _LOCK_MESSAGES
        result: Result,
        handed: list[_HandedOver],
        moved: list[dict[str, object]],
    ) -> None:
        raw, receipt, error, claim, now = (
            result.raw,
            result.receipt,
            result.error,
            result.claim,
            result.now,
        )
        message_id = message.id
        if raw is not None:
            delivery = _HandedOver(
                message_id=message_id,
                attempt=claim.attempt,
                handed_at=now,
                transport=self.transport,
                rfc_message_id=message.rfc_message_id,
                raw_sha256=ledger.keep(session, raw),
                possible_resend=result.possible_resend,
                outcome=delivery_outcome(error),
                response=receipt.response if receipt else error.response if error else "",
                provider_message_id=receipt.provider_message_id if receipt else None,
            )
            handed.append(delivery)
            ledger.note_handed_over(session, delivery, message, now)  # its id is in by the commit
        if message.lease_owner != self.worker or message.attempts != claim.attempt:
            log.warning(
                "message %s was taken over while sending; not updating it",
                message_id,
                extra={"message_id": message_id},
            )
            return
        state, sent_at, next_attempt_at, last_error = (
            message.state,
            message.sent_at,
            message.next_attempt_at,
            message.last_error,
        )
        reported = state is not MessageState.SENDING  # the provider spoke first
        if error is None:
            sent_at = now
        if error is None and reported:
            log.info(
                "message %s handed over; the provider already reported it %s",
                message_id,
                state.value,
                extra={"message_id": message_id, "state": state.value},
            )
        elif error is None:
            state, last_error = MessageState.SENT, None
        elif isinstance(error, TransientFailure) and claim.attempt < self.retry.max_attempts:
            state = MessageState.RETRY
            next_attempt_at = now + self.retry.delay(message_id, claim.attempt)
            last_error = f"attempt {claim.attempt}: {error.response}"
        else:
            state = MessageState.FAILED
            last_error = f"attempt {claim.attempt}: {error.response}"
        moved.append(
            {
                "message": message_id,
                "state": state,
                "sent_at": sent_at,
                "next_attempt_at": next_attempt_at,
                "last_error": last_error,
                "updated_at": now,
            }
        )
        if error is None and reported:
            return
        ledger.note_state(
            session,
            _MovedOn(
                message.id,
                message.order_id,
                message.shop_id,
                message.kind,
                state,
                message.reason,
                last_error,
            ),
            now,
        )
        log.info(
            "message %s (%s) %s after attempt %d: %s",
            message_id,
            message.kind,
            state.value,
            claim.attempt,
            receipt.response if receipt else error.response if error else "",
            extra={
                "message_id": message_id,
                "order_id": message.order_id,
                "kind": message.kind,
                "state": state.value,
            },
        )


MESSAGES = cast(Table, Message.__table__)
DELIVERIES = cast(Table, Delivery.__table__)
_AMONG = MESSAGES.c.id.in_(bindparam("ids", expanding=True))
_ORDERS_OF = select(MESSAGES.c.order_id).where(_AMONG)
# Built once: a batch's statements are the same every time, only their values change.
_LOCK_ORDERS = (
    select(Order.id)
    .where(Order.id.in_(bindparam("ids", expanding=True)))
    .order_by(Order.id)
    .with_for_update()
)
_LOCK_MESSAGES = (
    select(
        MESSAGES.c.id,
        MESSAGES.c.order_id,
        MESSAGES.c.shop_id,
        MESSAGES.c.kind,
        MESSAGES.c.rfc_message_id,
        MESSAGES.c.state,
        MESSAGES.c.reason,
        MESSAGES.c.attempts,
        MESSAGES.c.lease_owner,
        MESSAGES.c.sent_at,
        MESSAGES.c.next_attempt_at,
        MESSAGES.c.last_error,
    )
    .where(_AMONG)
    .order_by(MESSAGES.c.id)
    .with_for_update()
)
# The new rows' ids in the order of the rows given, whatever order the database wrote them in.
_HAND_OVER = insert(DELIVERIES).returning(DELIVERIES.c.id, sort_by_parameter_order=True)
_MOVE_ON = (
    update(MESSAGES)
    .where(MESSAGES.c.id == bindparam("message"))
    .values(
        lease_owner=None,
        lease_until=None,
        state=bindparam("state"),
        sent_at=bindparam("sent_at"),
        next_attempt_at=bindparam("next_attempt_at"),
        last_error=bindparam("last_error"),
        updated_at=bindparam("updated_at"),
    )
)


@dataclass
class _HandedOver:
    """A delivery row about to be written; what the ledger's note reads of it."""

    message_id: str
    attempt: int
    handed_at: datetime
    transport: str
    rfc_message_id: str
    raw_sha256: str
    possible_resend: bool
    outcome: DeliveryOutcome
    response: str
    provider_message_id: str | None
    id: int | None = None  # given by the INSERT

    @property
    def row(self) -> dict[str, object]:
        return {name: value for name, value in vars(self).items() if name != "id"}


@dataclass(frozen=True)
class _MovedOn:
    """A message as it stands after this record step, for the ledger's note of its state."""

    id: str
    order_id: int
    shop_id: int
    kind: str
    state: MessageState
    reason: str
    last_error: str | None


@dataclass(frozen=True)
class Result:
    """What became of one claimed message, waiting to be recorded."""

    message_id: str
    now: datetime
    raw: bytes | None
    receipt: Receipt | None
    error: TransportError | None
    claim: outbox.Claim
    possible_resend: bool


def delivery_outcome(error: TransportError | None) -> DeliveryOutcome:
    if error is None:
        return DeliveryOutcome.ACCEPTED
    if isinstance(error, TransientFailure):
        return DeliveryOutcome.TRANSIENT_FAILURE
    return DeliveryOutcome.PERMANENT_FAILURE
