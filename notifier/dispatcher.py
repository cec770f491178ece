"""The only sender: claims due messages, renders them in the buyer's locale, sends, and records.

Each message passes through three short steps: claim (a transaction), render and hand over to
the transport (no transaction held), record the outcome (a transaction). A worker that dies in
between leaves a lease that expires, and the message is claimed again with the same Message-ID.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload, sessionmaker

from notifier import metrics, mime, outbox, sending, suppression
from notifier.clock import Clock
from notifier.kinds import KINDS
from notifier.links import BuyerLinks
from notifier.models import Delivery, Message, MessageState, Order
from notifier.recording import Recorder, Result, RetryPolicy
from notifier.rendering import Renderer
from notifier.sending import Sending
from notifier.transports import (
    Outgoing,
    PermanentFailure,
    TransientFailure,
    Transport,
    TransportError,
)

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    suppressed: int = 0
    applied: int = 0  # stored deliveries applied before sending

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
        record_every: int = 50,
        record_seconds: float = 0.5,
        apply_stored: Callable[[], int] | None = None,
        sends_ahead: int = 2,
    ) -> None:
        self.sessions = sessions
        self.transport = transport
        self.renderer = renderer
        self.clock = clock
        self.worker = worker
        self.batch_size = batch_size
        self.lease = lease
        self.retry = retry or RetryPolicy()
        self.recorder = Recorder(
            sessions, worker=worker, retry=self.retry, transport=transport.name
        )
        # Periodic work that rides on the dispatch loop (ledger checkpoints); never sends.
        self.housekeeping = housekeeping
        # Signs the survey's answer and unsubscribe links; only marketing kinds need it.
        self.links = links
        # How many hand-overs share one recording transaction, and how long the oldest may wait.
        self.record_every = record_every
        self.record_seconds = record_seconds
        self.sends_ahead = sends_ahead
        self._line: Sending | None = None
        # Stored webhooks waiting to be applied (NOTIFIER_APPLY=deferred): they may plan messages
        # due at once, so they go first; the worker process hosts this inbound step, never sends.
        self.apply_stored = apply_stored

    def run_once(self) -> Outcome:
        """One round (`notifier dispatch`), then the transport is closed."""
        try:
            return self._round()
        finally:
            self.close()

    def _round(self) -> Outcome:
        """Apply stored deliveries, then send every message due now, batch after batch.

        Hand-overs flow on from one claimed batch into the next: what has been answered is
        recorded before the next claim, as before, but the last few messages of a batch are
        still on the wire while the next batch is claimed, read and its first rendered. Those
        are kept out of the claim, whatever their lease says: this worker is still sending them.
        """
        total = Outcome()
        if self.apply_stored is not None:
            total.applied = self.apply_stored()
        flow = _Flow()
        try:
            while True:
                if flow.pending:
                    self._record(flow.pending, total)
                    flow.pending, flow.oldest = [], None
                with self.sessions.begin() as session:
                    claims = outbox.claim_due(
                        session,
                        worker=self.worker,
                        now=self.clock.now(),
                        lease=self.lease,
                        limit=self.batch_size,
                        sending=[handover.message_id for handover in flow.on_the_wire],
                    )
                if claims:
                    self._deliver_batch(claims, total, flow)
                if len(claims) < self.batch_size:
                    break
            while flow.on_the_wire:
                flow.pending.append(self._answered(flow.on_the_wire.popleft(), flow.line_take()))
        except Exception:
            self._salvage(flow, total)
            raise
        except BaseException:
            self.close()
            raise
        if flow.pending:
            self._record(flow.pending, total)
        return total

    def _salvage(self, flow: _Flow, total: Outcome) -> None:
        """After a failure mid-round, record what did reach the transport, if the database lets
        us; what stays unrecorded is as if this worker had died mid-send (sent again after its
        lease, marked as a possible re-send). A fresh line carries the next round."""
        try:
            while flow.on_the_wire:
                handover = flow.on_the_wire.popleft()
                flow.pending.append(self._answered(handover, flow.line_take()))
        except Exception:  # the line itself broke: what it held stays unrecorded
            log.warning("the sending process failed; its last hand-over stays unrecorded")
        finally:
            self.close()
        if flow.pending:
            try:
                self._record(flow.pending, total)
            except Exception:
                log.exception("%d hand-overs could not be recorded", len(flow.pending))

    def run_forever(self, stop: threading.Event, wake: threading.Event, poll: float) -> None:
        """Dispatch until `stop` is set; `wake` cuts the wait short when new work was committed."""
        log.info("dispatcher %s started", self.worker)
        try:
            while not stop.is_set():
                try:
                    self._round()
                    if self.housekeeping is not None:
                        self.housekeeping()
                except Exception:  # a database restart must not end the worker
                    log.exception("dispatch round failed; trying again")
                wake.wait(poll)
                wake.clear()
        finally:
            self.close()
            log.info("dispatcher %s stopped", self.worker)

    def _deliver_batch(self, claims: list[outbox.Claim], total: Outcome, flow: _Flow) -> None:
        """Read the batch at once, send each message in turn, record the outcomes in few commits.

        Hand-overs are recorded together, at most `record_every` of them or `record_seconds`
        after the oldest, so a commit (a disk flush) is shared by many messages; a worker that
        dies before recording leaves those messages to be sent again, marked as possible
        re-sends, exactly as one dying between one send and its record did.
        """
        ids = [claim.message_id for claim in claims]
        with self.sessions() as session:
            messages = {
                message.id: message
                for message in session.scalars(
                    select(Message).options(joinedload(Message.shop)).where(Message.id.in_(ids))
                )
            }
            recorded: dict[str, int] = {
                row[0]: row[1]
                for row in session.execute(
                    select(Delivery.message_id, func.count())
                    .where(Delivery.message_id.in_(ids))
                    .group_by(Delivery.message_id)
                )
            }
            # Checked as the batch is read, a moment before its sends: an unsubscribe counts
            # until then. One query for the batch's recipients.
            stopped = suppression.active_among(
                session, [(m.shop_id, m.recipient) for m in messages.values()]
            )
            prepared = []
            for claim in claims:
                message = messages[claim.message_id]
                sender, reply_to = message.shop.sender, message.shop.support_email
                marketing = not KINDS[message.kind].transactional
                if marketing:
                    sender = message.shop.settings.get("survey", {}).get("sender", sender)
                blocked = suppression.first_blocking(
                    stopped.get((message.shop_id, suppression.normalized(message.recipient)), []),
                    transactional=not marketing,
                )
                refusal = suppression.describe(blocked) if blocked else None
                prepared.append((claim, message, sender, reply_to, refusal))
        # In order, and at most `sends_ahead` ahead of the recording: the next message is
        # rendered while this one is on the wire (see `sending`).
        if flow.line is None:
            flow.line = self.start_sending()
        line = flow.line
        for claim, message, sender, reply_to, refusal in prepared:
            if refusal is not None:
                self._suppress(message.id, claim, refusal, self.clock.now())
                total.suppressed += 1
                continue
            ready = self._ready(claim, message, sender, reply_to, recorded)
            if isinstance(ready, Result):
                flow.pending.append(ready)
            else:
                line.submit(ready.mail)
                flow.on_the_wire.append(ready)
            while len(flow.on_the_wire) > self.sends_ahead or (flow.on_the_wire and line.ready()):
                flow.pending.append(self._answered(flow.on_the_wire.popleft(), line.take()))
            if flow.pending and flow.oldest is None:
                flow.oldest = time.monotonic()
            if flow.oldest is not None and (
                len(flow.pending) >= self.record_every
                or time.monotonic() - flow.oldest > self.record_seconds
            ):
                self._record(flow.pending, total)
                flow.pending, flow.oldest = [], None

    def _record(self, results: list[Result], total: Outcome) -> None:
        sent, retried, failed = self.recorder.record(results)
        total.sent += sent
        total.retried += retried
        total.failed += failed

    def start_sending(self) -> Sending:
        """The transport's sending process, started now if it is not running (a worker starts
        it with itself, so the first message due does not wait for it)."""
        if self._line is None:
            self._line = sending.for_transport(self.transport)
        return self._line

    def close(self) -> None:
        """Let what is on its way finish and close the transport (or its sending process)."""
        line, self._line = self._line, None
        if line is not None:
            line.close()
        else:
            self.transport.close()

    def _ready(
        self,
        claim: outbox.Claim,
        message: Message,
        sender: str,
        reply_to: str | None,
        recorded: dict[str, int],
    ) -> Result | _Handover:
        """The message built and addressed for the transport, or why it will not be sent."""
        now = self.clock.now()
        # An attempt that left no record died mid-way: the server may already have the message.
        possible_resend = recorded.get(message.id, 0) < claim.attempt - 1
        if claim.attempt > self.retry.max_attempts:
            gave_up = PermanentFailure(f"gave up: {claim.attempt - 1} attempts did not finish")
            return Result(message.id, now, None, None, gave_up, claim, False)
        try:
            raw = self._build(message, sender, reply_to, now)
            mail = Outgoing(
                mime.ascii_address("From", parseaddr(sender)[1]),
                (mime.ascii_address("To", message.recipient),),
                raw,
                message.rfc_message_id,
            )
        except Exception as problem:  # a message that cannot be built never will be: fail visibly
            log.warning(
                "message %s cannot be built: %s",
                message.id,
                problem,
                extra={"message_id": message.id, "kind": message.kind},
            )
            refused = PermanentFailure(f"cannot build the message: {problem}")
            return Result(message.id, now, None, None, refused, claim, False)
        return _Handover(message.id, now, mail, claim, possible_resend)

    def _answered(self, handover: _Handover, answer: sending.Answer) -> Result:
        reply, seconds = answer
        receipt, error = (None, reply) if isinstance(reply, TransportError) else (reply, None)
        if error is not None:
            kind = "transient" if isinstance(error, TransientFailure) else "permanent"
            metrics.TRANSPORT_ERRORS.labels(transport=self.transport.name, kind=kind).inc()
        metrics.SEND_SECONDS.labels(transport=self.transport.name).observe(seconds)
        return Result(
            handover.message_id,
            handover.now,
            handover.mail.raw,
            receipt,
            error,
            handover.claim,
            handover.possible_resend,
        )

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
            log.info(
                "message %s (%s) suppressed: %s",
                message_id,
                message.kind,
                reason,
                extra={"message_id": message_id, "kind": message.kind, "state": "suppressed"},
            )


@dataclass
class _Flow:
    """A round's hand-overs on their way: on the wire in order, then answered and waiting to
    be recorded (since `oldest`, when the first of them came back)."""

    line: Sending | None = None  # started with the first batch: an idle round starts nothing
    on_the_wire: deque[_Handover] = field(default_factory=deque)
    pending: list[Result] = field(default_factory=list)
    oldest: float | None = None

    def line_take(self) -> sending.Answer:
        assert self.line is not None, "nothing is on the wire before a line exists"
        return self.line.take()


@dataclass(frozen=True)
class _Handover:
    """A built message on its way to the transport."""

    message_id: str
    now: datetime
    mail: Outgoing
    claim: outbox.Claim
    possible_resend: bool
