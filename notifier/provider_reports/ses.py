"""Amazon SES events, delivered by an Amazon SNS HTTP(S) subscription of a configuration set.

The SNS signature is checked as AWS documents it (https://docs.aws.amazon.com/sns/latest/dg/
sns-verify-signature-of-message.html): RSA over a canonical string of the message's fields, with
the certificate at SigningCertURL, fetched only from SNS's own hosts (a pattern operators can
change) and kept. Only topics the operator listed are heard.

`requests` and `cryptography` (some 24 MB of a process) are imported when the first SNS message
arrives, not by every web process and worker that merely loads this module.
"""

from __future__ import annotations

import base64
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from requests import Response

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
from notifier.sources import schema_problem

NAME = "ses"
FETCH_TIMEOUT_SECONDS = 10
# The fields each message type signs, in the order AWS documents.
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
SIGNED_FIELDS["UnsubscribeConfirmation"] = SIGNED_FIELDS["SubscriptionConfirmation"]
# SignatureVersion 1 is SHA1withRSA, 2 is SHA256withRSA.
DIGESTS = {  # names in cryptography.hazmat.primitives.hashes
    "1": "SHA1",  # SNS's own SignatureVersion 1: verifying it, not choosing it
    "2": "SHA256",
}
MAX_CACHED_CERTIFICATES = 32

_certificates: dict[str, x509.Certificate] = {}
_certificates_lock = threading.Lock()


@dataclass(frozen=True)
class Trust:
    """What an SNS message must satisfy to be believed, from the app's configuration."""

    topic_arns: frozenset[str]
    cert_url_pattern: re.Pattern[str]
    now: datetime


class SNSMessage(BaseModel):
    """The SNS envelope (https://docs.aws.amazon.com/sns/latest/dg/http-notification-json.html)."""

    model_config = ConfigDict(extra="ignore")

    Type: str = Field(max_length=40)
    MessageId: str = Field(min_length=1, max_length=100)
    TopicArn: str = Field(max_length=300)
    Message: str
    Timestamp: str = Field(max_length=40)
    SignatureVersion: str = Field(max_length=4)
    Signature: str = Field(max_length=2000)
    SigningCertURL: str = Field(max_length=2000)
    Subject: str | None = None
    SubscribeURL: str | None = Field(default=None, max_length=4000)
    Token: str | None = Field(default=None, max_length=2000)


@dataclass(frozen=True)
class Verified:
    """A believed SNS message: a subscription to confirm, or SES's reports."""

    sns: SNSMessage
    parsed: Parsed


def parse(body: bytes, trust: Trust) -> Verified:
    """Check the topic, then the signature, then translate; nothing unverified goes further."""
    try:
        sns = SNSMessage.model_validate(json_object(body))
    except ValidationError as error:
        raise schema_problem(error) from error
    if sns.Type not in SIGNED_FIELDS:
        raise Problem(400, "Unknown message type", f"SNS message type {sns.Type!r} is not known.")
    if sns.TopicArn not in trust.topic_arns:
        raise Problem(
            403,
            "Unknown topic",
            f"Topic {sns.TopicArn!r} is not in SES_TOPIC_ARNS; notifications from it are refused.",
        )
    _verify_signature(sns, trust)
    if sns.Type != "Notification":
        return Verified(sns, Parsed(ignored_because=f"SNS {sns.Type}"))
    message = json_object(sns.Message.encode(), "The SNS Message")
    return Verified(sns, translate(message, sns.MessageId))


def confirm_subscription(sns: SNSMessage, trust: Trust) -> None:
    """Visit SubscribeURL, on SNS's own host only, so the topic starts sending here."""
    url = trusted_url(sns.SubscribeURL or "", trust, "SubscribeURL")
    try:
        response = _fetch(url)
    except OSError as error:  # requests.RequestException is an OSError
        raise Problem(
            503,
            "Subscription not confirmed",
            f"SubscribeURL could not be reached ({type(error).__name__}); SNS will retry.",
        ) from error
    if response.status_code != 200:
        raise Problem(
            503,
            "Subscription not confirmed",
            f"SubscribeURL answered {response.status_code}; SNS will retry.",
        )


def trusted_url(url: str, trust: Trust, field: str) -> str:
    """The URL, if it is on a host the pattern allows and carries no user info."""
    parts = urlsplit(url)
    if not trust.cert_url_pattern.match(url) or "@" in parts.netloc:
        raise Problem(
            401,
            "Untrusted URL",
            f"{field} {url[:200]!r} is not on an Amazon SNS host (SNS_CERT_URL_PATTERN).",
        )
    return url


def _verify_signature(sns: SNSMessage, trust: Trust) -> None:
    digest = DIGESTS.get(sns.SignatureVersion)
    if digest is None:
        raise Problem(
            401,
            "Invalid signature",
            f"SignatureVersion {sns.SignatureVersion!r} is not 1 or 2.",
        )
    try:
        signature = base64.b64decode(sns.Signature, validate=True)
    except ValueError as error:  # binascii.Error, or characters beyond ASCII
        raise Problem(401, "Invalid signature", "Signature is not base64.") from error
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    key = _public_key(sns.SigningCertURL, trust)
    try:
        key.verify(signature, canonical(sns), padding.PKCS1v15(), getattr(hashes, digest)())
    except InvalidSignature as error:
        raise Problem(
            401,
            "Invalid signature",
            "The SNS signature does not match the message and its signing certificate.",
        ) from error


def _fetch(url: str) -> Response:
    import requests

    return requests.get(url, timeout=FETCH_TIMEOUT_SECONDS, allow_redirects=False)


def canonical(sns: SNSMessage) -> bytes:
    """`Name\\nvalue\\n` for each signed field present, in AWS's order."""
    lines = []
    for name in SIGNED_FIELDS[sns.Type]:
        value = getattr(sns, name)
        if value is not None:
            lines.append(f"{name}\n{value}\n")
    return "".join(lines).encode()


def _public_key(url: str, trust: Trust) -> RSAPublicKey:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

    certificate = _certificate(trusted_url(url, trust, "SigningCertURL"))
    if not certificate.not_valid_before_utc <= trust.now <= certificate.not_valid_after_utc:
        raise Problem(
            401,
            "Untrusted signing certificate",
            f"The certificate at SigningCertURL is not valid at {trust.now.isoformat()}.",
        )
    key = certificate.public_key()
    if not isinstance(key, RSAPublicKey):
        raise Problem(401, "Untrusted signing certificate", "The certificate's key is not RSA.")
    return key


def _certificate(url: str) -> x509.Certificate:
    """Fetched once per URL (SNS names a new URL when it rotates its key), then kept."""
    with _certificates_lock:
        kept = _certificates.get(url)
    if kept is not None:
        return kept
    try:
        response = _fetch(url)
    except OSError as error:  # requests.RequestException is an OSError
        raise Problem(
            503,
            "Signing certificate unavailable",
            f"SigningCertURL could not be fetched ({type(error).__name__}); retry later.",
        ) from error
    if response.status_code != 200:
        raise Problem(
            503,
            "Signing certificate unavailable",
            f"SigningCertURL answered {response.status_code}; retry later.",
        )
    from cryptography import x509

    try:
        certificate = x509.load_pem_x509_certificate(response.content)
    except ValueError as error:
        raise Problem(
            401, "Untrusted signing certificate", "SigningCertURL holds no PEM certificate."
        ) from error
    with _certificates_lock:
        if len(_certificates) >= MAX_CACHED_CERTIFICATES:
            _certificates.clear()
        _certificates[url] = certificate
    return certificate


def translate(message: dict[str, Any], sns_message_id: str) -> Parsed:
    """One report per recipient of a Delivery, Bounce, Complaint or DeliveryDelay event."""
    kind = str(message.get("eventType") or message.get("notificationType") or "")
    mail = message.get("mail")
    if not isinstance(mail, dict):
        if kind in EVENTS:
            raise Problem(422, "Invalid payload", "Field 'Message.mail' must be an object.")
        return Parsed(ignored_because=f"SES event {kind or '(none)'!r} is not a delivery report")
    if kind not in EVENTS:
        return Parsed(ignored_because=f"SES event {kind or '(none)'!r} is not a delivery report")
    provider_message_id = bounded(mail.get("messageId"), 400)
    header_id = bounded(dig(mail, "commonHeaders", "messageId"), 398) or ""
    rfc_message_id = bracketed(header_id) if "@" in header_id else None
    reports = tuple(
        ProviderReport(
            provider=NAME,
            event_id=f"{sns_message_id}/{recipient or ''}"[:200],
            verdict=verdict,
            occurred_at=occurred_at,
            rfc_message_id=rfc_message_id,
            provider_message_id=provider_message_id,
            recipient=recipient,
            permanent=permanent,
            detail=detail,
        )
        for recipient, verdict, permanent, occurred_at, detail in EVENTS[kind](message, mail)
    )
    return Parsed(reports=reports)


Finding = tuple[str | None, ProviderVerdict, bool, datetime, str]


def _delivery(message: dict[str, Any], mail: dict[str, Any]) -> list[Finding]:
    delivery = message.get("delivery")
    at = _time(dig(delivery, "timestamp"), mail)
    said = f"delivered: {dig(delivery, 'smtpResponse') or 'no SMTP response given'}"
    return [
        (address, ProviderVerdict.DELIVERED, False, at, said)
        for address in _addresses(dig(delivery, "recipients"), None, mail)
    ]


def _bounce(message: dict[str, Any], mail: dict[str, Any]) -> list[Finding]:
    bounce = message.get("bounce")
    kind = str(dig(bounce, "bounceType") or "Undetermined")
    permanent = kind == "Permanent"
    verdict = ProviderVerdict.BOUNCED if permanent else ProviderVerdict.DEFERRED
    at = _time(dig(bounce, "timestamp"), mail)
    findings: list[Finding] = []
    listed = dig(bounce, "bouncedRecipients")
    for entry in listed if isinstance(listed, list) else [{}]:
        said = " ".join(
            str(dig(entry, name) or "") for name in ("status", "diagnosticCode") if dig(entry, name)
        )
        detail = f"{kind} bounce ({dig(bounce, 'bounceSubType') or 'General'})"
        detail += f": {said}" if said else ""
        address = dig(entry, "emailAddress")
        for recipient in _addresses([address] if address else None, None, mail):
            findings.append((recipient, verdict, permanent, at, detail[:2000]))
    return findings


def _complaint(message: dict[str, Any], mail: dict[str, Any]) -> list[Finding]:
    complaint = message.get("complaint")
    at = _time(dig(complaint, "timestamp"), mail)
    feedback = dig(complaint, "complaintFeedbackType") or "no feedback type given"
    detail = f"complaint: {feedback}"
    return [
        (address, ProviderVerdict.COMPLAINED, False, at, detail)
        for address in _addresses(dig(complaint, "complainedRecipients"), "emailAddress", mail)
    ]


def _delay(message: dict[str, Any], mail: dict[str, Any]) -> list[Finding]:
    delay = message.get("deliveryDelay")
    at = _time(dig(delay, "timestamp"), mail)
    detail = f"delivery delayed: {dig(delay, 'delayType') or 'no reason given'}"
    return [
        (address, ProviderVerdict.DEFERRED, False, at, detail)
        for address in _addresses(dig(delay, "delayedRecipients"), "emailAddress", mail)
    ]


EVENTS = {
    "Delivery": _delivery,
    "Bounce": _bounce,
    "Complaint": _complaint,
    "DeliveryDelay": _delay,
}


def _addresses(listed: Any, key: str | None, mail: dict[str, Any]) -> list[str | None]:
    """The recipients an event names (or, if it names none, the mail's), at least one entry."""
    found = []
    for item in listed if isinstance(listed, list) else []:
        value = bounded(dig(item, key) if key else item, 320)
        if value:
            found.append(value)
    destination = mail.get("destination")
    if not found and isinstance(destination, list):
        found = [value for item in destination if (value := bounded(item, 320))]
    return list(found) or [None]


def _time(value: Any, mail: dict[str, Any]) -> datetime:
    """The event's time, else the mail's; SES writes ISO 8601 with a Z."""
    for candidate in (value, mail.get("timestamp")):
        if isinstance(candidate, str):
            try:
                parsed = datetime.fromisoformat(candidate)
                if parsed.tzinfo is not None:
                    return parsed.astimezone(UTC)
            except (ValueError, OverflowError):
                continue
    raise Problem(422, "Invalid payload", "The SES event has no ISO 8601 timestamp with a zone.")
