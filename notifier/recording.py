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

from sqlalchemy import select
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

        One transaction for them all. Locks are taken the way webhooks take them: every order
        row first, then every message row, each in id order, so a webhook superseding one of
        these messages and other workers recording theirs never wait on each other in a circle.
        """
        ids = sorted(result.message_id for result in results)
        with self.sessions.begin() as session:
            order_ids = sorted(
                set(session.scalars(select(Message.order_id).where(Message.id.in_(ids))))
            )
            session.execute(
                select(Order.id).where(Order.id.in_(order_ids)).order_by(Order.id).with_for_update()
            ).all()
            # Locked, so a worker taking a message over cannot slip in between read and write.
            locked = {
                message.id: message
                for message in session.scalars(
                    select(Message)
                    .where(Message.id.in_(ids))
                    .order_by(Message.id)
                    .with_for_update()
                    .execution_options(populate_existing=True)
                )
            }
            for result in results:
                self._record_one(session, locked[result.message_id], result)
        sent = sum(result.error is None for result in results)
        retried = sum(
            isinstance(result.error, TransientFailure)
            and result.claim.attempt < self.retry.max_attempts
            for result in results
        )
        return sent, retried, len(results) - sent - retried

    def _record_one(self, session: Session, message: Message, result: Result) -> None:
        raw, receipt, error, claim, now = (
            result.raw,
            result.receipt,
            result.error,
            result.claim,
            result.now,
        )
        message_id = message.id
        if raw is not None:
            delivery = Delivery(
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
            session.add(delivery)
            ledger.note_handed_over(session, delivery, message)
        if message.lease_owner != self.worker or message.attempts != claim.attempt:
            log.warning(
                "message %s was taken over while sending; not updating it",
                message_id,
                extra={"message_id": message_id},
            )
            return
        message.lease_owner = None
        message.lease_until = None
        message.updated_at = now
        reported = message.state is not MessageState.SENDING  # the provider spoke first
        if error is None and reported:
            message.sent_at = now
            log.info(
                "message %s handed over; the provider already reported it %s",
                message_id,
                message.state.value,
                extra={"message_id": message_id, "state": message.state.value},
            )
            return
        if error is None:
            message.state = MessageState.SENT
            message.sent_at = now
            message.last_error = None
        elif isinstance(error, TransientFailure) and claim.attempt < self.retry.max_attempts:
            message.state = MessageState.RETRY
            message.next_attempt_at = now + self.retry.delay(message_id, claim.attempt)
            message.last_error = f"attempt {claim.attempt}: {error.response}"
        else:
            message.state = MessageState.FAILED
            message.last_error = f"attempt {claim.attempt}: {error.response if error else ''}"
        ledger.note_state(session, message, now)
        log.info(
            "message %s (%s) %s after attempt %d: %s",
            message_id,
            message.kind,
            message.state.value,
            claim.attempt,
            receipt.response if receipt else error.response if error else "",
            extra={
                "message_id": message_id,
                "order_id": message.order_id,
                "kind": message.kind,
                "state": message.state.value,
            },
        )


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
