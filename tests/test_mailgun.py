"""The Mailgun transport against a real local HTTP server standing in for Mailgun's API."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from notifier.models import Delivery, Message, MessageState
from notifier.transports import Outgoing, TransientFailure, describe, from_url
from notifier.transports.mailgun import MailgunTransport

from .conftest import post_shopify, services, shopify_order

KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"


class FakeMailgun(ThreadingHTTPServer):
    """Answers `POST /v3/<domain>/messages.mime` as Mailgun does, or as told to."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.received: list[dict[str, Any]] = []
        self.replies: list[tuple[int, str]] = []


class Handler(BaseHTTPRequestHandler):
    server: FakeMailgun

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        form = BytesParser(policy=policy.HTTP).parsebytes(
            f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + body
        )
        fields = {
            part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
            for part in form.iter_parts()
        }
        self.server.received.append(
            {"path": self.path, "auth": self.headers["Authorization"], "fields": fields}
        )
        status, text = (
            self.server.replies.pop(0)
            if self.server.replies
            else (200, '{"id": "<20261123.1@mg.lumen.example>", "message": "Queued. Thank you."}')
        )
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(text.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def mailgun() -> Iterator[FakeMailgun]:
    server = FakeMailgun()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def transport(server: FakeMailgun) -> MailgunTransport:
    port = server.server_address[1]
    url = f"mailgun+http://api:{KEY}@127.0.0.1:{port}/mg.lumen.example"
    made = from_url(url, timeout=5)
    assert isinstance(made, MailgunTransport)
    return made


@pytest.mark.usefixtures("shopify_shop")
def test_the_exact_bytes_go_out_and_mailguns_id_is_recorded(
    app: Flask, client: FlaskClient, dispatch: Callable, mailgun: FakeMailgun
) -> None:
    post_shopify(client, shopify_order())

    assert dispatch(transport(mailgun)).sent == 1

    [request] = mailgun.received
    with services(app).sessions() as session:
        delivery = session.scalars(select(Delivery)).one()
    assert request["path"] == "/v3/mg.lumen.example/messages.mime"
    assert request["auth"].startswith("Basic ")
    assert request["fields"]["message"] == delivery.raw
    assert request["fields"]["to"] == b"anna.schmidt@example.org"
    assert delivery.provider_message_id == "<20261123.1@mg.lumen.example>"
    assert delivery.transport == "mailgun"
    parsed = message_from_bytes(request["fields"]["message"], policy=policy.default)
    assert parsed["Subject"] == "Bestellung #1001 bestätigt – vielen Dank!"


@pytest.mark.usefixtures("shopify_shop")
@pytest.mark.parametrize(
    ("status", "state"),
    [
        (429, MessageState.RETRY),
        (503, MessageState.RETRY),
        (401, MessageState.RETRY),
        (400, MessageState.FAILED),
    ],
)
def test_mailguns_refusals_are_retried_or_fail_visibly(
    app: Flask,
    client: FlaskClient,
    dispatch: Callable,
    mailgun: FakeMailgun,
    status: int,
    state: MessageState,
) -> None:
    mailgun.replies.append((status, '{"message": "no"}'))
    post_shopify(client, shopify_order())

    dispatch(transport(mailgun))

    with services(app).sessions() as session:
        message = session.scalars(select(Message)).one()
    assert message.state is state
    assert message.last_error is not None
    assert message.last_error.startswith(f"attempt 1: {status} ")


def test_an_unreachable_api_is_transient_and_the_key_never_shows() -> None:
    url = f"mailgun+http://api:{KEY}@127.0.0.1:9/mg.lumen.example"
    mail = Outgoing("o@lumen.example", ("a@example.org",), b"Subject: x\r\n\r\ny\r\n", "<m@x>")

    with pytest.raises(TransientFailure) as failure:
        from_url(url, timeout=2).send(mail)

    assert KEY not in describe(url)
    assert KEY not in str(failure.value)


@pytest.mark.parametrize(
    "url",
    [
        "mailgun://api.mailgun.net/mg.example",
        "mailgun://api:k@api.mailgun.net/",
        "mailgun://api:k@/d",
    ],
)
def test_a_malformed_mailgun_url_says_how_to_write_it(url: str) -> None:
    with pytest.raises(ValueError, match=re.escape("mailgun://api:KEY@api.mailgun.net/DOMAIN")):
        from_url(url, timeout=5)
