"""Email providers' reports through the real endpoints: verified, stored once, applied.

Mailgun's HMAC is computed here; SNS's RSA signature is made here with a throwaway key and a
self-signed certificate that a real local HTTP server hands out, as SNS's hosts would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from notifier import audit
from notifier.dispatcher import Outcome
from notifier.models import (
    LedgerContent,
    LedgerEntry,
    Message,
    MessageState,
    Order,
    ProviderEvent,
    ProviderVerdict,
    Shop,
    Suppression,
    SuppressionReason,
)

from .conftest import START, post_shopify, services, shopify_order
from .test_ses import SES_MESSAGE_ID, FakeSES, transport

MAILGUN_KEY = "whsk-3ax6xnjp29jd6fds4gc373sgvjxteol0"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:lumen-ses-events"
BUYER = "anna.schmidt@example.org"
HARD_BOUNCE = "550 5.1.1 The email account that you tried to reach does not exist"


# --- Mailgun ------------------------------------------------------------------------------


def mailgun_body(
    event: dict[str, Any], *, key: str = MAILGUN_KEY, signed_at: datetime = START
) -> bytes:
    timestamp, token = str(int(signed_at.timestamp())), uuid.uuid4().hex * 2
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    envelope = {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": event,
    }
    return json.dumps(envelope).encode()


def mailgun_event(name: str, message_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex[:22],
        "timestamp": START.timestamp(),
        "event": name,
        "recipient": BUYER,
        "message": {"headers": {"message-id": message_id.strip("<>"), "to": BUYER}},
        **fields,
    }


def hard_bounce(message_id: str) -> dict[str, Any]:
    status = {"code": 550, "message": HARD_BOUNCE, "description": ""}
    return mailgun_event(
        "failed", message_id, severity="permanent", reason="bounce", **{"delivery-status": status}
    )


def post_mailgun(client: FlaskClient, body: bytes) -> Any:
    return client.post(
        "/webhooks/mail/mailgun", data=body, headers={"Content-Type": "application/json"}
    )


# --- SNS ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def stranger_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def certificate_pem(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START - timedelta(days=30))
        .not_valid_after(START + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


class FakeSNS(ThreadingHTTPServer):
    """Hands out a signing certificate and takes subscription confirmations, counting each."""

    def __init__(self, pem: bytes) -> None:
        super().__init__(("127.0.0.1", 0), SNSHandler)
        self.pem = pem
        self.prefix = f"/{uuid.uuid4().hex}"  # a fresh URL, so no test sees another's cached key
        self.hits: list[str] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def cert_url(self) -> str:
        return f"{self.base}{self.prefix}/SimpleNotificationService.pem"


class SNSHandler(BaseHTTPRequestHandler):
    server: FakeSNS

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        body = self.server.pem if self.path.endswith(".pem") else b"<ConfirmSubscriptionResponse/>"
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _serve(server: ThreadingHTTPServer) -> Iterator[Any]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def sns(signing_key: rsa.RSAPrivateKey) -> Iterator[FakeSNS]:
    yield from _serve(FakeSNS(certificate_pem(signing_key)))


@pytest.fixture
def other_host(signing_key: rsa.RSAPrivateKey) -> Iterator[FakeSNS]:
    """Another server on another port: outside SNS_CERT_URL_PATTERN."""
    yield from _serve(FakeSNS(certificate_pem(signing_key)))


@pytest.fixture
def configured(app: Flask, sns: FakeSNS) -> Flask:
    app.config.update(
        MAILGUN_WEBHOOK_SIGNING_KEY=MAILGUN_KEY,
        SES_TOPIC_ARNS=f"arn:aws:sns:eu-west-1:123456789012:other, {TOPIC}",
        SNS_CERT_URL_PATTERN=rf"^{sns.base.replace('.', '[.]')}/",
    )
    return app


# The fields SNS signs, in AWS's documented order; written out here, not taken from the code.
SIGNED = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": [
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ],
}


def sns_body(
    key: rsa.RSAPrivateKey,
    cert_url: str,
    message: dict[str, Any] | str,
    *,
    kind: str = "Notification",
    topic: str = TOPIC,
    version: str = "2",
    tamper: Callable[[dict[str, str]], None] | None = None,
    **fields: str,
) -> bytes:
    envelope = {
        "Type": kind,
        "MessageId": str(uuid.uuid4()),
        "TopicArn": topic,
        "Message": message if isinstance(message, str) else json.dumps(message),
        "Timestamp": "2026-11-23T09:00:00.000Z",
        "SignatureVersion": version,
        "SigningCertURL": cert_url,
        **fields,
    }
    text = "".join(f"{name}\n{envelope[name]}\n" for name in SIGNED[kind] if name in envelope)
    # SignatureVersion 1 is SNS's SHA1withRSA: made here only to prove it is still read.
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303
    signature = key.sign(text.encode(), padding.PKCS1v15(), digest)
    envelope["Signature"] = base64.b64encode(signature).decode()
    if tamper:
        tamper(envelope)
    return json.dumps(envelope).encode()


def ses_event(
    kind: str, rfc_message_id: str | None, recipients: list[str], **event: Any
) -> dict[str, Any]:
    headers = {"messageId": rfc_message_id} if rfc_message_id else {"subject": "x"}
    mail = {
        "timestamp": "2026-11-23T08:59:00.000Z",
        "messageId": SES_MESSAGE_ID,
        "destination": recipients,
        "commonHeaders": headers,
    }
    return {"eventType": kind, "mail": mail, **event}


def ses_bounce(rfc_message_id: str | None, recipients: list[str], kind: str) -> dict[str, Any]:
    listed = [
        {"emailAddress": address, "status": "5.1.1", "diagnosticCode": f"smtp; {HARD_BOUNCE}"}
        for address in recipients
    ]
    bounce = {
        "bounceType": kind,
        "bounceSubType": "General",
        "bouncedRecipients": listed,
        "timestamp": "2026-11-23T09:00:05.000Z",
    }
    return ses_event("Bounce", rfc_message_id, recipients, bounce=bounce)


def post_ses(client: FlaskClient, body: bytes) -> Any:
    headers = {"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "x"}
    return client.post("/webhooks/mail/ses", data=body, headers=headers)


# --- the story so far: an order confirmation went out ---------------------------------------


@pytest.fixture
def ses_api() -> Iterator[FakeSES]:
    yield from _serve(FakeSES())


@pytest.fixture
def sent(
    configured: Flask, client: FlaskClient, dispatch: Callable[..., Outcome], shopify_shop: Shop
) -> Message:
    """The buyer's order confirmation, handed over (by the memory transport)."""
    post_shopify(client, shopify_order())
    assert dispatch().sent == 1
    return the_message(configured)


def the_message(app: Flask) -> Message:
    with services(app).sessions() as session:
        message = session.scalars(select(Message)).one()
        session.expunge(message)
    return message


def the_order(app: Flask) -> Order:
    with services(app).sessions() as session:
        order = session.scalars(select(Order)).one()
        session.expunge(order)
    return order


def counts(app: Flask) -> dict[str, int]:
    with services(app).sessions() as session:
        return {
            model.__name__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (ProviderEvent, Suppression, LedgerEntry)
        }


def suppressions(app: Flask) -> list[Suppression]:
    with services(app).sessions() as session:
        found = list(session.scalars(select(Suppression)))
        session.expunge_all()
    return found


def provider_events(app: Flask) -> list[ProviderEvent]:
    with services(app).sessions() as session:
        found = list(session.scalars(select(ProviderEvent).order_by(ProviderEvent.id)))
        session.expunge_all()
    return found


def ledger_kinds(app: Flask, order_id: int) -> list[str]:
    with services(app).sessions() as session:
        return list(
            session.scalars(
                select(LedgerEntry.kind)
                .where(LedgerEntry.order_id == order_id)
                .order_by(LedgerEntry.seq)
            )
        )


def assert_problem(response: Any, status: int, words: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert words in response.json["detail"]


# --- Mailgun ------------------------------------------------------------------------------


def test_a_hard_bounce_bounces_suppresses_flags_and_is_in_the_ledger(
    configured: Flask, client: FlaskClient, sent: Message
) -> None:
    body = mailgun_body(hard_bounce(sent.rfc_message_id))

    response = post_mailgun(client, body)

    assert response.status_code == 200
    assert response.json["status"] == "accepted"
    message = the_message(configured)
    assert message.state is MessageState.BOUNCED
    assert message.last_error is not None
    assert HARD_BOUNCE in message.last_error
    [entry] = suppressions(configured)
    assert (entry.address, entry.reason, entry.source) == (
        BUYER,
        SuppressionReason.HARD_BOUNCE,
        "mailgun",
    )
    assert entry.shop_id == message.shop_id
    assert entry.message_id == message.id
    assert HARD_BOUNCE in entry.detail
    [flag] = the_order(configured).flags
    assert (flag["flag"], flag["message"]) == ("bounce", message.id)
    assert HARD_BOUNCE in flag["reason"]
    [event] = provider_events(configured)
    assert (event.verdict, event.message_id) == (ProviderVerdict.BOUNCED, message.id)
    kinds = ledger_kinds(configured, message.order_id)
    assert kinds[-3:] == ["provider.report", "message.bounced", "suppression.added"]
    with services(configured).sessions() as session:
        report = audit.verify(session)
        entry_digest = session.scalar(
            select(LedgerEntry.content_sha256).where(LedgerEntry.kind == "provider.report")
        )
        noted = json.loads(session.get_one(LedgerContent, entry_digest).content)
        kept = session.get_one(LedgerContent, noted["body_sha256"]).content
    assert report.intact, report.problems
    assert kept == body
    assert (noted["verdict"], noted["message"]) == ("bounced", message.id)


def test_a_redelivered_report_changes_nothing(
    configured: Flask, client: FlaskClient, sent: Message
) -> None:
    body = mailgun_body(hard_bounce(sent.rfc_message_id))
    assert post_mailgun(client, body).json["status"] == "accepted"
    before, flags = counts(configured), the_order(configured).flags

    again = post_mailgun(client, body)

    assert again.status_code == 200
    assert again.json["status"] == "duplicate"
    assert counts(configured) == before
    assert the_order(configured).flags == flags


@pytest.mark.parametrize(
    ("make_body", "words"),
    [
        (
            lambda event: mailgun_body(event).replace(b'"signature": "', b'"signature": "0', 1),
            "not the HMAC-SHA256",
        ),
        (lambda event: mailgun_body(event, key="another-key"), "not the HMAC-SHA256"),
        (
            lambda event: mailgun_body(event, signed_at=START - timedelta(hours=1)),
            "more than 900 s away",
        ),
        (lambda event: b'{"signature": ', "not valid JSON"),
    ],
    ids=["forged", "wrong-key", "stale", "not-json"],
)
def test_an_unproven_mailgun_report_is_refused_and_changes_nothing(
    configured: Flask,
    client: FlaskClient,
    sent: Message,
    make_body: Callable[[dict[str, Any]], bytes],
    words: str,
) -> None:
    before = counts(configured)

    response = post_mailgun(client, make_body(hard_bounce(sent.rfc_message_id)))

    assert_problem(response, 400 if words == "not valid JSON" else 401, words)
    assert counts(configured) == before
    assert the_message(configured).state is MessageState.SENT


def test_delivered_moves_sent_to_delivered(
    configured: Flask, client: FlaskClient, sent: Message
) -> None:
    status = {"code": 250, "message": "OK", "description": ""}
    event = mailgun_event("delivered", sent.rfc_message_id, **{"delivery-status": status})

    response = post_mailgun(client, mailgun_body(event))

    assert response.json["status"] == "accepted"
    message = the_message(configured)
    assert message.state is MessageState.DELIVERED
    assert "250 OK" in message.reason
    assert suppressions(configured) == []
    assert ledger_kinds(configured, message.order_id)[-2:] == [
        "provider.report",
        "message.delivered",
    ]


def test_a_soft_bounce_is_only_recorded(
    configured: Flask, client: FlaskClient, sent: Message
) -> None:
    status = {"code": 452, "message": "4.2.2 Mailbox full", "description": ""}
    event = mailgun_event(
        "failed", sent.rfc_message_id, severity="temporary", **{"delivery-status": status}
    )

    response = post_mailgun(client, mailgun_body(event))

    assert response.json["status"] == "accepted"
    assert the_message(configured).state is MessageState.SENT
    assert suppressions(configured) == []
    assert the_order(configured).flags == []
    [event_row] = provider_events(configured)
    assert event_row.verdict is ProviderVerdict.DEFERRED
    assert "Mailbox full" in event_row.detail


def test_a_report_about_no_message_of_ours_is_stored_and_ignored(
    configured: Flask, client: FlaskClient, sent: Message
) -> None:
    response = post_mailgun(client, mailgun_body(hard_bounce("<someone-else@mg.example>")))

    assert response.status_code == 200
    assert response.json["status"] == "ignored"
    [event] = provider_events(configured)
    assert event.message_id is None
    assert event.verdict is ProviderVerdict.BOUNCED
    assert the_message(configured).state is MessageState.SENT
    assert suppressions(configured) == []


def test_opens_and_clicks_are_answered_as_ignored(configured: Flask, client: FlaskClient) -> None:
    response = post_mailgun(client, mailgun_body(mailgun_event("opened", "<m@x>")))

    assert response.status_code == 200
    assert response.json["status"] == "ignored"
    assert "'opened'" in response.json["detail"]
    assert provider_events(configured) == []


def test_without_a_signing_key_mailgun_reports_are_refused(app: Flask, client: FlaskClient) -> None:
    response = post_mailgun(client, mailgun_body(mailgun_event("delivered", "<m@x>")))

    assert_problem(response, 403, "NOTIFIER_MAILGUN_WEBHOOK_SIGNING_KEY")


def test_an_oversized_report_is_refused(configured: Flask, client: FlaskClient) -> None:
    configured.config["WEBHOOK_MAX_BYTES"] = 1000

    response = post_mailgun(client, b"{" + b" " * 2000 + b"}")

    assert_problem(response, 413, "larger than this endpoint accepts")


# --- SES through SNS ----------------------------------------------------------------------


def test_an_ses_complaint_suppresses_flags_and_is_in_the_ledger(
    configured: Flask,
    client: FlaskClient,
    sent: Message,
    sns: FakeSNS,
    signing_key: rsa.RSAPrivateKey,
) -> None:
    complaint = {
        "complainedRecipients": [{"emailAddress": BUYER}],
        "timestamp": "2026-11-23T10:00:00.000Z",
        "complaintFeedbackType": "abuse",
    }
    event = ses_event("Complaint", sent.rfc_message_id, [BUYER], complaint=complaint)

    response = post_ses(client, sns_body(signing_key, sns.cert_url, event))

    assert response.status_code == 200, response.json
    assert response.json["status"] == "accepted"
    assert the_message(configured).state is MessageState.COMPLAINED
    [entry] = suppressions(configured)
    assert (entry.address, entry.reason, entry.source) == (
        BUYER,
        SuppressionReason.COMPLAINT,
        "ses",
    )
    assert [flag["flag"] for flag in the_order(configured).flags] == ["complaint"]
    with services(configured).sessions() as session:
        report = audit.verify(session)
    assert report.intact, report.problems


def test_an_ses_hard_bounce_is_one_report_per_recipient_and_signature_version_1_is_read(
    configured: Flask,
    client: FlaskClient,
    sent: Message,
    sns: FakeSNS,
    signing_key: rsa.RSAPrivateKey,
) -> None:
    event = ses_bounce(sent.rfc_message_id, [BUYER, "anna@old.example"], "Permanent")

    response = post_ses(client, sns_body(signing_key, sns.cert_url, event, version="1"))

    assert response.status_code == 200, response.json
    assert [report["status"] for report in response.json["reports"]] == ["accepted"] * 2
    assert the_message(configured).state is MessageState.BOUNCED
    assert sorted(entry.address for entry in suppressions(configured)) == [
        "anna.schmidt@example.org",
        "anna@old.example",
    ]
    assert len(the_order(configured).flags) == 1  # one flag for the one message
    assert len(provider_events(configured)) == 2


def test_an_ses_transient_bounce_is_only_recorded(
    configured: Flask,
    client: FlaskClient,
    sent: Message,
    sns: FakeSNS,
    signing_key: rsa.RSAPrivateKey,
) -> None:
    event = ses_bounce(sent.rfc_message_id, [BUYER], "Transient")

    response = post_ses(client, sns_body(signing_key, sns.cert_url, event))

    assert response.json["status"] == "accepted"
    assert the_message(configured).state is MessageState.SENT
    assert suppressions(configured) == []
    assert [event.verdict for event in provider_events(configured)] == [ProviderVerdict.DEFERRED]


@pytest.mark.usefixtures("shopify_shop")
def test_ses_finds_the_message_by_its_own_id_and_fetches_the_certificate_once(
    configured: Flask,
    client: FlaskClient,
    dispatch: Callable[..., Outcome],
    ses_api: FakeSES,
    sns: FakeSNS,
    signing_key: rsa.RSAPrivateKey,
) -> None:
    post_shopify(client, shopify_order())
    assert dispatch(transport(ses_api)).sent == 1
    delivery = {"timestamp": "2026-11-23T09:00:02.000Z", "smtpResponse": "250 2.0.0 OK"}
    event = ses_event("Delivery", None, [BUYER], delivery=delivery)

    first = post_ses(client, sns_body(signing_key, sns.cert_url, event))
    second = post_ses(client, sns_body(signing_key, sns.cert_url, event))

    assert first.json["status"] == second.json["status"] == "accepted"
    message = the_message(configured)
    assert message.state is MessageState.DELIVERED
    assert "250 2.0.0 OK" in message.reason
    assert {event.provider_message_id for event in provider_events(configured)} == {SES_MESSAGE_ID}
    assert sns.hits == [f"{sns.prefix}/SimpleNotificationService.pem"]


def _forge_message(envelope: dict[str, str]) -> None:
    envelope["Message"] = envelope["Message"].replace("Transient", "Permanent")


@pytest.mark.parametrize(
    ("changes", "status", "words"),
    [
        ({"tamper": _forge_message}, 401, "does not match"),
        ({"topic": "arn:aws:sns:eu-west-1:666666666666:stranger"}, 403, "not in SES_TOPIC_ARNS"),
        ({"other_key": True}, 401, "does not match"),
        ({"foreign_cert": True}, 401, "is not on an Amazon SNS host"),
    ],
    ids=["forged-message", "foreign-topic", "wrong-key", "cert-on-another-host"],
)
def test_an_unproven_sns_message_is_refused_and_changes_nothing(
    configured: Flask,
    client: FlaskClient,
    sent: Message,
    sns: FakeSNS,
    other_host: FakeSNS,
    signing_key: rsa.RSAPrivateKey,
    stranger_key: rsa.RSAPrivateKey,
    changes: dict[str, Any],
    status: int,
    words: str,
) -> None:
    changes = dict(changes)  # the same dict serves both databases' runs
    key = stranger_key if changes.pop("other_key", False) else signing_key
    cert_url = other_host.cert_url if changes.pop("foreign_cert", False) else sns.cert_url
    event = ses_bounce(sent.rfc_message_id, [BUYER], "Transient")
    before = counts(configured)

    response = post_ses(client, sns_body(key, cert_url, event, **changes))

    assert_problem(response, status, words)
    assert counts(configured) == before
    assert the_message(configured).state is MessageState.SENT
    assert other_host.hits == []


def test_a_subscription_is_confirmed_on_sns_own_host_only(
    configured: Flask,
    client: FlaskClient,
    sns: FakeSNS,
    other_host: FakeSNS,
    signing_key: rsa.RSAPrivateKey,
) -> None:
    def confirmation(host: FakeSNS) -> bytes:
        return sns_body(
            signing_key,
            sns.cert_url,
            "You have chosen to subscribe to the topic.",
            kind="SubscriptionConfirmation",
            SubscribeURL=f"{host.base}/?Action=ConfirmSubscription&Token=2336412f37",
            Token="2336412f37",
        )

    refused = post_ses(client, confirmation(other_host))
    confirmed = post_ses(client, confirmation(sns))

    assert_problem(refused, 401, "SubscribeURL")
    assert other_host.hits == []
    assert confirmed.status_code == 200
    assert confirmed.json["status"] == "confirmed"
    assert "/?Action=ConfirmSubscription&Token=2336412f37" in sns.hits


def test_without_topics_ses_reports_are_refused(app: Flask, client: FlaskClient) -> None:
    response = post_ses(client, b"{}")

    assert_problem(response, 403, "NOTIFIER_SES_TOPIC_ARNS")


class ReportingTransport:
    """A provider that accepts the email and reports a hard bounce before `send` even returns,
    so the report arrives while the dispatcher has not yet recorded the hand-over."""

    name = "fast-provider"

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def send(self, mail: Any) -> Any:
        from notifier.transports import Receipt

        answer = post_mailgun(self.client, mailgun_body(hard_bounce(mail.message_id)))
        assert answer.json["status"] == "accepted", answer.json
        return Receipt("250 queued", "<fast.1@mg.lumen.example>")

    def close(self) -> None:
        pass


@pytest.mark.usefixtures("shopify_shop")
def test_a_report_that_beats_the_record_step_is_kept(
    configured: Flask, client: FlaskClient, dispatch: Callable[..., Outcome]
) -> None:
    post_shopify(client, shopify_order())
    outcome = dispatch(ReportingTransport(client))

    assert outcome.sent == 1
    message = the_message(configured)
    assert message.state is MessageState.BOUNCED  # not overwritten by "sent"
    assert message.sent_at is not None
    assert [entry.reason for entry in suppressions(configured)] == [SuppressionReason.HARD_BOUNCE]
    with services(configured).sessions() as session:
        assert audit.verify(session).intact
