"""The SES v2 transport against a real local HTTP server standing in for SES's API.

The request's AWS Signature V4 is recomputed here, independently of botocore, from the bytes the
server received.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from notifier.dispatcher import Outcome
from notifier.models import Delivery, Message, MessageState
from notifier.transports import Outgoing, TransientFailure, describe, from_url
from notifier.transports.ses import SESTransport

from .conftest import post_shopify, services, shopify_order

ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
ENCODED_SECRET = SECRET.replace("/", "%2F").replace("+", "%2B")
REGION = "eu-west-1"
SES_MESSAGE_ID = "0102019a5c3e9f11-5f0e7a52-1c1e-4f8e-9d2b-3f5b0c7e2a1d-000000"


class FakeSES(ThreadingHTTPServer):
    """Answers `POST /v2/email/outbound-emails` as SES does, or as told to."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.received: list[dict[str, Any]] = []
        self.replies: list[tuple[int, str, dict[str, Any]]] = []
        self.delay = 0.0

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up waiting (the timeout test) is no error of the stand-in's."""


class Handler(BaseHTTPRequestHandler):
    server: FakeSES

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(
            {
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
        )
        time.sleep(self.server.delay)
        status, error_type, reply = (
            self.server.replies.pop(0)
            if self.server.replies
            else (200, "", {"MessageId": SES_MESSAGE_ID})
        )
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if error_type:
            self.send_header("x-amzn-ErrorType", f"{error_type}:http://internal.amazon.com/")
        self.end_headers()
        self.wfile.write(json.dumps(reply).encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def ses_api() -> Iterator[FakeSES]:
    server = FakeSES()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def ses_url(server: FakeSES, query: str = f"region={REGION}") -> str:
    return f"ses+http://{ACCESS_KEY_ID}:{ENCODED_SECRET}@127.0.0.1:{server.port}?{query}"


def transport(server: FakeSES, query: str = f"region={REGION}", timeout: float = 5) -> SESTransport:
    made = from_url(ses_url(server, query), timeout=timeout)
    assert isinstance(made, SESTransport)
    return made


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def expected_authorization(request: dict[str, Any], secret: str = SECRET) -> str:
    """SigV4 as AWS documents it, written out here rather than borrowed from the code under test."""
    headers = request["headers"]
    signed = ["content-type", "host", "x-amz-date"]
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in signed)
    canonical_request = "\n".join(
        [
            "POST",
            "/v2/email/outbound-emails",
            "",
            canonical_headers,
            ";".join(signed),
            hashlib.sha256(request["body"]).hexdigest(),
        ]
    )
    stamp = headers["x-amz-date"]
    scope = f"{stamp[:8]}/{REGION}/ses/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = ("AWS4" + secret).encode()
    for part in (stamp[:8], REGION, "ses", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/{scope}, "
        f"SignedHeaders={';'.join(signed)}, Signature={signature}"
    )


@pytest.mark.usefixtures("shopify_shop")
def test_the_exact_bytes_go_out_signed_and_the_ses_id_is_recorded(
    app: Flask, client: FlaskClient, dispatch: Callable[..., Outcome], ses_api: FakeSES
) -> None:
    post_shopify(client, shopify_order())

    assert dispatch(transport(ses_api, f"region={REGION}&configuration_set=reports")).sent == 1

    [request] = ses_api.received
    with services(app).sessions() as session:
        delivery = session.scalars(select(Delivery)).one()
    sent = json.loads(request["body"])
    assert request["path"] == "/v2/email/outbound-emails"
    assert request["headers"]["authorization"] == expected_authorization(request)
    assert request["headers"]["authorization"] != expected_authorization(request, secret="x")
    assert SECRET not in json.dumps(request["headers"]) + request["body"].decode()
    assert base64.b64decode(sent["Content"]["Raw"]["Data"]) == delivery.raw
    assert sent["Destination"] == {"ToAddresses": ["anna.schmidt@example.org"]}
    assert sent["FromEmailAddress"] == "orders@lumen.example"
    assert sent["ConfigurationSetName"] == "reports"
    assert delivery.provider_message_id == SES_MESSAGE_ID
    assert delivery.transport == "ses"
    parsed = message_from_bytes(delivery.raw or b"", policy=policy.default)
    assert parsed["Subject"] == "Bestellung #1001 bestätigt – vielen Dank!"


@pytest.mark.usefixtures("shopify_shop")
@pytest.mark.parametrize(
    ("status", "error_type", "state"),
    [
        (429, "TooManyRequestsException", MessageState.RETRY),
        (400, "LimitExceededException", MessageState.RETRY),
        (503, "ServiceUnavailable", MessageState.RETRY),
        (403, "UnrecognizedClientException", MessageState.RETRY),
        (400, "MessageRejected", MessageState.FAILED),
        (400, "AccountSuspendedException", MessageState.FAILED),
    ],
)
def test_ses_refusals_are_retried_or_fail_visibly(
    app: Flask,
    client: FlaskClient,
    dispatch: Callable[..., Outcome],
    ses_api: FakeSES,
    status: int,
    error_type: str,
    state: MessageState,
) -> None:
    ses_api.replies.append((status, error_type, {"message": "Email address is not verified."}))
    post_shopify(client, shopify_order())

    dispatch(transport(ses_api))

    with services(app).sessions() as session:
        message = session.scalars(select(Message)).one()
        delivery = session.scalars(select(Delivery)).one()
    assert message.state is state
    assert message.last_error is not None
    assert message.last_error.startswith(
        f"attempt 1: {status} {error_type}: Email address is not verified."
    )
    assert SECRET not in message.last_error
    assert delivery.provider_message_id is None


def test_a_timeout_is_transient() -> None:
    server = FakeSES()
    server.delay = 1.0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    mail = Outgoing("o@lumen.example", ("a@example.org",), b"Subject: x\r\n\r\ny\r\n", "<m@x>")
    try:
        with pytest.raises(TransientFailure, match="ReadTimeout"):
            transport(server, timeout=0.2).send(mail)
    finally:
        server.shutdown()
        server.server_close()


def test_an_unreachable_api_is_transient_and_the_secret_never_shows() -> None:
    url = f"ses+http://{ACCESS_KEY_ID}:{ENCODED_SECRET}@127.0.0.1:9?region={REGION}"
    mail = Outgoing("o@lumen.example", ("a@example.org",), b"Subject: x\r\n\r\ny\r\n", "<m@x>")

    with pytest.raises(TransientFailure) as failure:
        from_url(url, timeout=2).send(mail)

    assert ENCODED_SECRET not in describe(url)
    assert describe(url) == f"ses+http://{ACCESS_KEY_ID}:***@127.0.0.1:9?region={REGION}"
    assert SECRET not in str(failure.value)


def test_the_region_comes_from_the_host() -> None:
    made = from_url(f"ses://{ACCESS_KEY_ID}:{ENCODED_SECRET}@email.eu-central-1.amazonaws.com", 5)

    assert isinstance(made, SESTransport)
    assert made.region == "eu-central-1"
    assert made.endpoint == "https://email.eu-central-1.amazonaws.com/v2/email/outbound-emails"


@pytest.mark.parametrize(
    "url",
    [
        "ses://email.eu-west-1.amazonaws.com",
        f"ses://{ACCESS_KEY_ID}:s3cr3t@ses.example.com",
        f"ses://{ACCESS_KEY_ID}:{SECRET}@email.eu-west-1.amazonaws.com",
    ],
)
def test_a_malformed_ses_url_says_how_to_write_it_without_the_secret(url: str) -> None:
    with pytest.raises(ValueError, match=re.escape("ses://ACCESS_KEY_ID:SECRET@")) as refused:
        from_url(url, timeout=5)

    assert "s3cr3t" not in str(refused.value)
    assert SECRET.split("/")[1] not in str(refused.value)
    assert SECRET.split("/")[1] not in describe(url)
