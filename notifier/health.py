"""Liveness and readiness, for load balancers and orchestrators.

`/healthz` says the process answers (nothing else, so a database outage does not get every web
process restarted); `/readyz` says it can do its work: the database answers, its schema is this
release's, and how much mail is due or failed.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from notifier import applier, migrate
from notifier.models import Message, MessageState
from notifier.problems import Problem
from notifier.services import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response:
    svc = services()
    now = svc.clock.now()
    try:
        revision = migrate.current_revision(svc.engine)
        with svc.sessions() as session:
            due = session.execute(
                select(func.count(), func.min(Message.next_attempt_at)).where(
                    Message.state.in_((MessageState.SCHEDULED, MessageState.RETRY)),
                    Message.next_attempt_at <= now,
                )
            ).one()
            failed = session.scalar(
                select(func.count()).where(Message.state == MessageState.FAILED)
            )
            pending = applier.pending_count(session)
    except SQLAlchemyError as error:
        raise Problem(503, "Not ready", "The database does not answer.") from error
    head = migrate.head_revision()
    if revision != head:
        raise Problem(
            503,
            "Not ready",
            f"The database is at revision {revision or 'none'}, this release needs {head}: "
            "run `notifier db upgrade`.",
        )
    oldest = due[1]
    return jsonify(
        status="ready",
        database="ok",
        schema=revision,
        due_messages=due[0],
        oldest_due_seconds=int((now - oldest).total_seconds()) if oldest else 0,
        failed_messages=failed,
        pending_deliveries=pending,
    )
