"""Email providers' webhooks (delivered, bounced, complained), in the fixed order: size, setup,
signature, freshness, body; store and apply in one transaction; answer.

Like the storefront webhooks, a 2xx means the report is committed, bad input is a 4xx problem,
and a redelivery changes nothing. Nothing here sends mail.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError

from notifier import deliverability
from notifier.problems import Problem
from notifier.provider_reports import Parsed, mailgun, ses
from notifier.services import services

log = logging.getLogger(__name__)
bp = Blueprint("provider_hooks", __name__, url_prefix="/webhooks/mail")


@bp.before_request
def _limit_body_size() -> None:
    request.max_content_length = current_app.config["WEBHOOK_MAX_BYTES"]


@bp.post("/mailgun")
def mailgun_report() -> Response:
    key = current_app.config.get("MAILGUN_WEBHOOK_SIGNING_KEY")
    if not key:
        raise Problem(
            403,
            "Mailgun reports not set up",
            "Set NOTIFIER_MAILGUN_WEBHOOK_SIGNING_KEY to the webhook signing key Mailgun shows.",
        )
    body = request.get_data(cache=True)
    tolerance = timedelta(seconds=current_app.config["MAILGUN_WEBHOOK_TOLERANCE_SECONDS"])
    parsed = mailgun.parse(body, str(key), services().clock.now(), tolerance)
    return _apply(mailgun.NAME, parsed, body)


@bp.post("/ses")
def ses_report() -> Response:
    """SES events through an SNS subscription; a subscription request is confirmed here."""
    topics = frozenset(
        arn.strip() for arn in str(current_app.config["SES_TOPIC_ARNS"]).split(",") if arn.strip()
    )
    if not topics:
        raise Problem(
            403,
            "SES reports not set up",
            "Set NOTIFIER_SES_TOPIC_ARNS to the SNS topic ARN(s) of your configuration set.",
        )
    trust = ses.Trust(
        topic_arns=topics,
        cert_url_pattern=re.compile(current_app.config["SNS_CERT_URL_PATTERN"]),
        now=services().clock.now(),
    )
    body = request.get_data(cache=True)
    verified = ses.parse(body, trust)
    if verified.sns.Type == "SubscriptionConfirmation":
        ses.confirm_subscription(verified.sns, trust)
        log.info("confirmed the SNS subscription to %s", verified.sns.TopicArn)
        return jsonify(status="confirmed", detail=f"subscribed to {verified.sns.TopicArn}")
    return _apply(ses.NAME, verified.parsed, body)


def _apply(provider: str, parsed: Parsed, body: bytes) -> Response:
    """Record every report of one body in one transaction; a racing twin retries as a duplicate."""
    if not parsed.reports:
        log.info("%s webhook ignored: %s", provider, parsed.ignored_because)
        return jsonify(status="ignored", detail=parsed.ignored_because, reports=[])
    svc = services()
    for _ in range(3):
        try:
            with svc.sessions.begin() as session:
                now = svc.clock.now()
                results = [
                    deliverability.record(session, report, body, now) for report in parsed.reports
                ]
            break
        except IntegrityError:
            log.info("concurrent %s report; retrying", provider)
    else:
        raise Problem(409, "Conflict", "This report raced with another; retry it.")
    for result in results:
        log.info("%s report: %s", provider, result.detail)
    statuses = {result.status for result in results}
    status = next(s for s in ("accepted", "duplicate", "ignored") if s in statuses)
    return jsonify(
        status=status,
        detail="; ".join(result.detail for result in results),
        reports=[
            {"event_id": report.event_id, "status": result.status, "detail": result.detail}
            for report, result in zip(parsed.reports, results, strict=True)
        ],
    )
