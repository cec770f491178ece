"""Prometheus metrics: what came in, what became of each message, and how mail is flowing.

Counters move only after the transaction that made the change has committed (the ledger's notes
say what changed), so a rolled-back webhook or send is never counted. The due backlog is read
from the database when scraped, so every web process reports the same truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from prometheus_client.core import REGISTRY, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, sessionmaker

from notifier import applier, ledger
from notifier.models import Message, MessageState
from notifier.services import Services, services

WEBHOOKS = Counter(
    "notifier_webhook_deliveries",
    "Webhook deliveries answered, by source and verdict (accepted, duplicate, ignored, or the "
    "HTTP status of a refusal).",
    ["source", "verdict"],
)
MESSAGES = Counter(
    "notifier_message_transitions",
    "Messages entering a state (planned, sent, retry, failed, superseded, cancelled), by kind.",
    ["kind", "state"],
)
SEND_SECONDS = Histogram(
    "notifier_send_seconds",
    "Time a transport took to accept or refuse one message.",
    ["transport"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TRANSPORT_ERRORS = Counter(
    "notifier_transport_errors",
    "Transport refusals and failures, by transport and kind (transient or permanent).",
    ["transport", "kind"],
)


class Backlog(Collector):
    """Due messages and the age of the oldest, read from the database at scrape time."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc

    def collect(self) -> Iterator[Metric]:
        now: datetime = self.svc.clock.now()
        with self.svc.sessions() as session:
            count, oldest = session.execute(
                select(func.count(), func.min(Message.next_attempt_at)).where(
                    Message.state.in_((MessageState.SCHEDULED, MessageState.RETRY)),
                    Message.next_attempt_at <= now,
                )
            ).one()
            failed = session.scalar(
                select(func.count()).where(Message.state == MessageState.FAILED)
            )
            pending = applier.pending_count(session)
        yield GaugeMetricFamily(
            "notifier_pending_deliveries",
            "Webhooks stored and answered, waiting for a worker to apply them (deferred apply).",
            value=pending,
        )
        yield GaugeMetricFamily(
            "notifier_due_messages", "Messages due now and not yet sent.", value=count
        )
        yield GaugeMetricFamily(
            "notifier_due_lag_seconds",
            "How long the oldest due message has waited past its due time.",
            value=(now - oldest).total_seconds() if oldest else 0.0,
        )
        yield GaugeMetricFamily(
            "notifier_failed_messages", "Messages that ended as failed.", value=failed or 0
        )


def _count_after_commit(session: Session) -> None:
    for kind, state in session.info.pop("metrics_transitions", []):
        MESSAGES.labels(kind=kind, state=state).inc()


def _collect_before_commit(session: Session) -> None:
    transitions = [
        (kind, ledger_kind.removeprefix("message."))
        for kind, ledger_kind in ledger.pending_message_notes(session)
    ]
    session.info.setdefault("metrics_transitions", []).extend(transitions)


def _forget(session: Session, *_: object) -> None:
    session.info.pop("metrics_transitions", None)


def install(sessions: sessionmaker[Session]) -> None:
    """Count message transitions of every committed transaction of `sessions`.

    Install before the ledger, whose own hook turns the notes into entries (and clears them).
    """
    event.listen(sessions, "before_commit", _collect_before_commit)
    event.listen(sessions, "after_commit", _count_after_commit)
    event.listen(sessions, "after_soft_rollback", _forget)


def count_webhook(source: str, verdict: str) -> None:
    WEBHOOKS.labels(source=source, verdict=verdict).inc()


bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    svc = services()
    registry = REGISTRY
    backlog = Backlog(svc)
    body = generate_latest(registry) + b"".join(_exposition(metric) for metric in backlog.collect())
    return Response(body, content_type=CONTENT_TYPE_LATEST)


def _exposition(metric: Metric) -> bytes:
    lines = [f"# HELP {metric.name} {metric.documentation}", f"# TYPE {metric.name} gauge"]
    lines += [f"{sample.name} {sample.value}" for sample in metric.samples]
    return ("\n".join(lines) + "\n").encode()
