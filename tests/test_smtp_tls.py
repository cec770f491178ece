"""STARTTLS and implicit TLS against a real server with a certificate the client must verify."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from notifier.transports import Outgoing, TransientFailure
from notifier.transports.smtp import SMTPTransport

from .test_dispatch import Sink, free_port

MAIL = Outgoing(
    envelope_from="orders@lumen.example",
    recipients=("anna@example.org",),
    raw=b"From: orders@lumen.example\r\nTo: anna@example.org\r\nSubject: hi\r\n\r\nhello\r\n",
    message_id="<tls-test@lumen.example>",
)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    return context


@pytest.fixture
def trusting_client(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the test certificate the client's only trust anchor, as a private CA would be."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))


@contextmanager
def running(controller: Controller) -> Iterator[Sink]:
    controller.start()
    try:
        yield controller.handler
    finally:
        controller.stop()


@pytest.fixture
def starttls_server(server_context: ssl.SSLContext) -> Iterator[tuple[Sink, int]]:
    port = free_port()
    controller = Controller(
        Sink(), hostname="127.0.0.1", port=port, tls_context=server_context, require_starttls=True
    )
    with running(controller) as sink:
        yield sink, port


@pytest.mark.usefixtures("trusting_client")
def test_starttls_is_used_when_offered(starttls_server: tuple[Sink, int]) -> None:
    sink, port = starttls_server
    transport = SMTPTransport.from_url(f"smtp://127.0.0.1:{port}", timeout=5)

    receipt = transport.send(MAIL)
    transport.close()

    assert receipt.response.startswith("250")
    [envelope] = sink.received
    assert envelope.rcpt_tos == ["anna@example.org"]


def test_an_untrusted_certificate_is_not_accepted(starttls_server: tuple[Sink, int]) -> None:
    sink, port = starttls_server
    transport = SMTPTransport.from_url(f"smtp://127.0.0.1:{port}", timeout=5)

    with pytest.raises(TransientFailure, match="CERTIFICATE_VERIFY_FAILED"):
        transport.send(MAIL)
    assert sink.received == []


@pytest.mark.usefixtures("trusting_client")
def test_smtps_speaks_tls_from_the_first_byte(server_context: ssl.SSLContext) -> None:
    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port, ssl_context=server_context)
    with running(controller) as sink:
        transport = SMTPTransport.from_url(f"smtps://127.0.0.1:{port}", timeout=5)
        receipt = transport.send(MAIL)
        transport.close()

        assert receipt.response.startswith("250")
        assert len(sink.received) == 1
