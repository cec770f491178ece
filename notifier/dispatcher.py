"""The only sender: claims due messages, renders them in the buyer's locale, sends, and records.

Each message passes through three short steps: claim (a transaction), render and hand over to
the transport (no transaction held), record the outcome (a transaction). A worker that dies in
between leaves a lease that expires, and the message is claimed again with the same Message-ID.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from notifier import ledger, metrics, mime, outbox, suppression
from notifier.clock import Clock
from notifier.kinds import KINDS
from notifier.links import BuyerLinks
from notifier.models import Delivery, DeliveryOutcome, Message, MessageState, Order
from notifier.rendering import Renderer
from notifier.transports import (
    Outgoing,
    PermanentFailure,
    Receipt,
    TransientFailure,
    Transport,
    TransportError,
)

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


@dataclass
class Outcome:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    suppressed: int = 0

    @property
    def handled(self) -> int:
        return self.sent + self.retried + self.failed + self.suppressed


class Dispatcher:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        transport: Transport,
        renderer: Renderer,
        clock: Clock,
        *,
        worker: str,
        batch_size: int = 50,
        lease: timedelta = timedelta(minutes=2),
        retry: RetryPolicy | None = None,
        housekeeping: Callable[[], None] | None = None,
        links: BuyerLinks | None = None,
    ) -> None:
        self.sessions = sessions
        self.transport = transport
        self.renderer = renderer
        self.clock = clock
        self.worker = worker
        self.batch_size = batch_size
        self.lease = lease
        self.retry = retry or RetryPolicy()
        # Periodic work that rides on the dispatch loop (ledger checkpoints); never sends.
        self.housekeeping = housekeeping
        # Signs the survey's answer and unsubscribe links; only marketing kinds need it.
        self.links = links

    def run_once(self) -> Outcome:
        """Send every message due now, batch after batch, until none is left."""
        total = Outcome()
        while True:
            with self.sessions.begin() as session:
                claims = outbox.claim_due(
                    session,
                    worker=self.worker,
                    now=self.clock.now(),
                    lease=self.lease,
                    limit=self.batch_size,
                )
            for claim in claims:
                self._deliver(claim, total)
            if len(claims) < self.batch_size:
                return total

    def run_forever(self, stop: threading.Event, wake: threading.Event, poll: float) -> None:
        """Dispatch until `stop` is set; `wake` cuts the wait short when new work was committed."""
        log.info("dispatcher %s started", self.worker)
        try:
            while not stop.is_set():
                try:
                    self.run_once()
                    if self.housekeeping is not None:
                        self.housekeeping()
                except Exception:  # a database restart must not end the worker
                    log.exception("dispatch round failed; trying again")
                wake.wait(poll)
                wake.clear()
        finally:
            self.transport.close()
            log.info("dispatcher %s stopped", self.worker)

    def _deliver(self, claim: outbox.Claim, total: Outcome) -> None:
        with self.sessions() as session:
            message = session.get(Message, claim.message_id)
            assert message is not None
            recorded = session.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.message_id == message.id)
            )
            sender, reply_to = message.shop.sender, message.shop.support_email
            marketing = not KINDS[message.kind].transactional
            if marketing:
                sender = message.shop.settings.get("survey", {}).get("sender", sender)
            blocked = suppression.blocking(
                session, message.shop_id, message.recipient, transactional=not marketing
            )
            refusal = suppression.describe(blocked) if blocked else None
        now = self.clock.now()
        if refusal is not None:  # checked at send time: an unsubscribe counts until the last moment
            self._suppress(message.id, claim, refusal, now)
            total.suppressed += 1
            return
        # An attempt that left no record died mid-way: the server may already have the message.
        possible_resend = (recorded or 0) < claim.attempt - 1
        if claim.attempt > self.retry.max_attempts:
            gave_up = PermanentFailure(f"gave up: {claim.attempt - 1} attempts did not finish")
            self._finish(message.id, now, None, None, gave_up, claim, False)
            total.failed += 1
            return
        try:
            raw = self._build(message, sender, reply_to, now)
        except Exception as problem:  # a message that cannot be built never will be: fail visibly
            log.warning("message %s cannot be built: %s", message.id, problem)
            refused = PermanentFailure(f"cannot build the message: {problem}")
            self._finish(message.id, now, None, None, refused, claim, False)
            total.failed += 1
            return
        mail = Outgoing(
            mime.ascii_address("From", parseaddr(sender)[1]),
            (mime.ascii_address("To", message.recipient),),
            raw,
            message.rfc_message_id,
        )
        started = time.perf_counter()
        try:
            receipt: Receipt | None = self.transport.send(mail)
            error: TransportError | None = None
        except TransportError as failure:
            receipt, error = None, failure
            kind = "transient" if isinstance(failure, TransientFailure) else "permanent"
            metrics.TRANSPORT_ERRORS.labels(transport=self.transport.name, kind=kind).inc()
        metrics.SEND_SECONDS.labels(transport=self.transport.name).observe(
            time.perf_counter() - started
        )
        self._finish(message.id, now, raw, receipt, error, claim, possible_resend)
        if error is None:
            total.sent += 1
        elif isinstance(error, TransientFailure) and claim.attempt < self.retry.max_attempts:
            total.retried += 1
        else:
            total.failed += 1

    def _build(self, message: Message, sender: str, reply_to: str | None, now: datetime) -> bytes:
        context, unsubscribe = message.context, None
        if not KINDS[message.kind].transactional:
            if self.links is None:
                raise ValueError(f"{message.kind} needs signed links, and no signer was given")
            answer_to = reply_to or parseaddr(sender)[1]
            links = self.links.survey_links(message.id, message.shop_id, answer_to)
            context = {**context, "links": links}
            unsubscribe = (links["unsubscribe"], links["unsubscribe_mailto"])
        rendered = self.renderer.render(message.kind, context, message.locale, message.timezone)
        envelope = mime.Envelope(
            sender=sender,
            recipient=message.recipient,
            recipient_name=message.recipient_name,
            reply_to=reply_to,
            message_id=message.rfc_message_id,
            date=now,
            unsubscribe=unsubscribe,
        )
        return mime.build(rendered, envelope)

    def _suppress(self, message_id: str, claim: outbox.Claim, reason: str, now: datetime) -> None:
        """End a claimed message unsent: its address is on the shop's suppression list."""
        with self.sessions.begin() as session:
            order_id = session.scalar(select(Message.order_id).where(Message.id == message_id))
            session.execute(select(Order.id).where(Order.id == order_id).with_for_update())
            message = session.get(Message, message_id, with_for_update=True)
            assert message is not None
            if message.lease_owner != self.worker or message.attempts != claim.attempt:
                return
            message.lease_owner = None
            message.lease_until = None
            outbox.end(session, message, MessageState.SUPPRESSED, reason, now)
            log.info("message %s (%s) suppressed: %s", message_id, message.kind, reason)

    def _finish(
        self,
        message_id: str,
        now: datetime,
        raw: bytes | None,
        receipt: Receipt | None,
        error: TransportError | None,
        claim: outbox.Claim,
        possible_resend: bool,
    ) -> None:
        """Record the hand-over (if bytes left) and move the message on, unless it was taken over."""
        with self.sessions.begin() as session:
            # The order first, then the message: the order in which webhooks lock them too (their
            # news may supersede this very message), so the two never wait on each other.
            order_id = session.scalar(select(Message.order_id).where(Message.id == message_id))
            session.execute(select(Order.id).where(Order.id == order_id).with_for_update())
            # Locked, so a worker taking the message over cannot slip in between read and write.
            message = session.get(Message, message_id, with_for_update=True)
            assert message is not None
            if raw is not None:
                delivery = Delivery(
                    message_id=message_id,
                    attempt=claim.attempt,
                    handed_at=now,
                    transport=self.transport.name,
                    rfc_message_id=message.rfc_message_id,
                    raw_sha256=ledger.keep(session, raw),
                    possible_resend=possible_resend,
                    outcome=_delivery_outcome(error),
                    response=receipt.response if receipt else error.response if error else "",
                    provider_message_id=receipt.provider_message_id if receipt else None,
                )
                session.add(delivery)
                ledger.note_handed_over(session, delivery, message)
            if message.lease_owner != self.worker or message.attempts != claim.attempt:
                log.warning("message %s was taken over while sending; not updating it", message_id)
                return
            message.lease_owner = None
            message.lease_until = None
            message.updated_at = now
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
                message.last_error = f"attempt {claim.attempt}: {error.response}"
            ledger.note_state(session, message, now)
            log.info(
                "message %s (%s) %s after attempt %d: %s",
                message_id,
                message.kind,
                message.state.value,
                claim.attempt,
                receipt.response if receipt else error.response if error else "",
            )


def _delivery_outcome(error: TransportError | None) -> DeliveryOutcome:
    if error is None:
        return DeliveryOutcome.ACCEPTED
    if isinstance(error, TransientFailure):
        return DeliveryOutcome.TRANSIENT_FAILURE
    return DeliveryOutcome.PERMANENT_FAILURE
