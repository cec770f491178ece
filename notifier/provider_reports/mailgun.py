"""Mailgun's event webhooks: the signature in the body, HMAC-SHA256 over timestamp and token.

https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

from notifier.models import ProviderVerdict
from notifier.problems import Problem
from notifier.provider_reports import (
    Parsed,
    ProviderReport,
    bounded,
    bracketed,
    dig,
    json_object,
)

NAME = "mailgun"


def parse(body: bytes, signing_key: str, now: datetime, tolerance: timedelta) -> Parsed:
    """Verify against the injected clock (never the wall clock), then translate the event."""
    payload = json_object(body)
    _verify(payload.get("signature"), signing_key, now, tolerance)
    event = payload.get("event-data")
    if not isinstance(event, dict):
        raise Problem(422, "Invalid payload", "Field 'event-data' must be an object.")
    return translate(event)


def _verify(signature: Any, signing_key: str, now: datetime, tolerance: timedelta) -> None:
    if not isinstance(signature, dict) or not all(
        isinstance(signature.get(name), str | int) for name in ("timestamp", "token", "signature")
    ):
        raise Problem(
            401,
            "Missing signature",
            "The body needs signature.timestamp, signature.token and signature.signature.",
        )
    timestamp, token = str(signature["timestamp"]), str(signature["token"])
    expected = hmac.new(
        signing_key.encode(), (timestamp + token).encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected.encode(), str(signature["signature"]).lower().encode()):
        raise Problem(
            401,
            "Invalid signature",
            "signature.signature is not the HMAC-SHA256 of timestamp+token under the webhook "
            "signing key (MAILGUN_WEBHOOK_SIGNING_KEY).",
        )
    try:
        signed_at = datetime.fromtimestamp(int(timestamp), UTC)
    except (ValueError, OverflowError, OSError) as error:
        raise Problem(
            401, "Invalid timestamp", "signature.timestamp is not a Unix time in seconds."
        ) from error
    if abs(now - signed_at) > tolerance:
        raise Problem(
            401,
            "Stale timestamp",
            f"signature.timestamp {signed_at.isoformat()} is more than "
            f"{int(tolerance.total_seconds())} s away from now ({now.isoformat()}).",
        )


def translate(event: dict[str, Any]) -> Parsed:
    """delivered, failed (permanent or temporary) and complained become reports; the rest is noise."""
    name = str(event.get("event") or "")
    severity = str(event.get("severity") or "")
    if name == "delivered":
        verdict, permanent = ProviderVerdict.DELIVERED, False
    elif name == "failed":
        permanent = severity == "permanent"
        verdict = ProviderVerdict.BOUNCED if permanent else ProviderVerdict.DEFERRED
    elif name == "complained":
        verdict, permanent = ProviderVerdict.COMPLAINED, False
    else:
        return Parsed(
            ignored_because=f"mailgun event {name or '(none)'!r} is not a delivery report"
        )
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 200:
        raise Problem(422, "Invalid payload", "Field 'event-data.id' must be a non-empty string.")
    message_id = bracketed(bounded(dig(event, "message", "headers", "message-id"), 398))
    report = ProviderReport(
        provider=NAME,
        event_id=event_id,
        verdict=verdict,
        occurred_at=_occurred_at(event),
        rfc_message_id=message_id,
        provider_message_id=message_id,  # Mailgun's send API answers with the same id
        recipient=bounded(event.get("recipient"), 320),
        permanent=permanent,
        detail=_detail(event),
    )
    return Parsed(reports=(report,))


def _occurred_at(event: dict[str, Any]) -> datetime:
    try:
        return datetime.fromtimestamp(float(event["timestamp"]), UTC)
    except (KeyError, TypeError, ValueError, OverflowError, OSError) as error:
        raise Problem(
            422, "Invalid payload", "Field 'event-data.timestamp' must be a Unix time."
        ) from error


def _detail(event: dict[str, Any]) -> str:
    """What the receiving server said: code, message, description, and Mailgun's reason."""
    parts = [
        str(dig(event, "delivery-status", name) or "").strip()
        for name in ("code", "message", "description")
    ]
    reason = str(event.get("reason") or "").strip()
    said = " ".join(part for part in parts if part)
    detail = f"{event.get('event')}"
    if event.get("severity"):
        detail += f" ({event['severity']})"
    if said:
        detail += f": {said}"
    if reason:
        detail += f" [reason: {reason}]"
    return detail[:2000]
