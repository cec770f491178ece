"""GET /healthz: is the database reachable, and is mail flowing or piling up."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import func, select

from notifier.models import Message, MessageState
from notifier.services import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    svc = services()
    now = svc.clock.now()
    with svc.sessions() as session:
        due = session.execute(
            select(func.count(), func.min(Message.next_attempt_at)).where(
                Message.state.in_((MessageState.SCHEDULED, MessageState.RETRY)),
                Message.next_attempt_at <= now,
            )
        ).one()
        failed = session.scalar(select(func.count()).where(Message.state == MessageState.FAILED))
    oldest = due[1]
    return jsonify(
        status="ok",
        database="ok",
        due_messages=due[0],
        oldest_due_seconds=int((now - oldest).total_seconds()) if oldest else 0,
        failed_messages=failed,
    )
