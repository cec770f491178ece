"""Fixtures in the shape of Flask's tutorial (app, client, runner) over a real database.

Every test that touches the database runs twice: on SQLite and on PostgreSQL. Each test gets
a clean, migrated database: a copy of a migrated SQLite file, or a PostgreSQL database whose
tables are emptied after the test. Commits are real; nothing is patched into a flush.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from notifier import create_app, migrate
from notifier.clock import FakeClock
from notifier.db import make_engine
from notifier.dispatcher import Dispatcher, Outcome
from notifier.models import Base, Platform, Shop
from notifier.services import Services
from notifier.transports import Outgoing, Transport
from notifier.transports.memory import MemoryTransport

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
POSTGRES_URL = os.environ.get(
    "NOTIFIER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("NOTIFIER_TEST_REQUIRE_POSTGRES") == "1"
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SHOPIFY_SECRET = "shpss_test_0123456789abcdef"
STANDARD_SECRET = "whsec_" + base64.b64encode(b"standard-test-secret-32-bytes!!!").decode()


# --- guards -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_stray_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that opens a connection beyond this machine's loopback."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            if host not in ("127.0.0.1", "::1", "localhost"):
                raise RuntimeError(f"test tried to reach {address!r}; only loopback is allowed")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


# --- databases ----------------------------------------------------------------------------


def _postgres_available() -> bool:
    engine = sa.create_engine(POSTGRES_URL)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("select 1"))
        return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "notifier.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def _postgres_database() -> Iterator[str]:
    if not _postgres_available():
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required but not reachable at {POSTGRES_URL}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}")
    with migrated_postgres(POSTGRES_URL, f"notifier_test_{os.getpid()}") as url:
        yield url


@contextmanager
def migrated_postgres(server_url: str, name: str) -> Iterator[str]:
    """A new database `name` on the server, at this release's schema; dropped afterwards."""
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "notifier.db"
        shutil.copy(request.getfixturevalue("_sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("_postgres_database")
    yield url
    engine = make_engine(url)
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        # A session the test left open would block this forever; fail fast and say so.
        connection.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
        connection.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


# --- the app ------------------------------------------------------------------------------


@pytest.fixture
def environment(database_url: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a `notifier` process run by a test: this test's database and folder."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NOTIFIER_")}
    env.update(
        NOTIFIER_INSTANCE_PATH=str(tmp_path / "instance"), NOTIFIER_DATABASE_URL=database_url
    )
    return env


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def mail_url() -> Iterator[str]:
    name = uuid.uuid4().hex
    yield f"memory://{name}"
    MemoryTransport.forget(name)


@pytest.fixture
def app(
    database_url: str,
    mail_url: str,
    clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Flask]:
    monkeypatch.setenv("NOTIFIER_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(
        {"TESTING": True, "DATABASE_URL": database_url, "MAIL_URL": mail_url}, clock=clock
    )
    yield app
    services(app).engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


def services(app: Flask) -> Services:
    found: Services = app.extensions["notifier"]
    return found


@pytest.fixture
def mailbox(mail_url: str) -> MemoryTransport:
    return MemoryTransport.named(mail_url.removeprefix("memory://"))


@pytest.fixture
def dispatch(app: Flask, mailbox: MemoryTransport) -> Callable[..., Outcome]:
    """Run one dispatch round now, through the memory transport or another one given."""

    def run(transport: Transport | None = None, worker: str = "test-worker") -> Outcome:
        svc = services(app)
        dispatcher = Dispatcher(
            svc.sessions,
            transport or mailbox,
            svc.renderer,
            svc.clock,
            worker=worker,
            links=svc.links,
        )
        return dispatcher.run_once()

    return run


# --- shops and signed deliveries ----------------------------------------------------------


@pytest.fixture
def shopify_shop(app: Flask, clock: FakeClock) -> Shop:
    shop = Shop(
        slug="lumen",
        platform=Platform.SHOPIFY,
        domain="lumen.myshopify.com",
        webhook_secrets=[SHOPIFY_SECRET],
        sender="Lumen & Co. <orders@lumen.example>",
        support_email="help@lumen.example",
        locale="en",
        timezone="Europe/Berlin",
        return_policy_url="https://lumen.example/policies/refund-policy",
        created_at=clock.now(),
    )
    with services(app).sessions.begin() as session:
        session.add(shop)
    return shop


@pytest.fixture
def standard_shop(app: Flask, clock: FakeClock) -> Shop:
    shop = Shop(
        slug="atelier",
        platform=Platform.STANDARD,
        domain=None,
        webhook_secrets=[STANDARD_SECRET],
        sender="Atelier Nord <hello@atelier.example>",
        support_email="care@atelier.example",
        locale="de",
        timezone="Europe/Berlin",
        return_policy_url=None,
        created_at=clock.now(),
    )
    with services(app).sessions.begin() as session:
        session.add(shop)
    return shop


def shopify_order(**changes: Any) -> dict[str, Any]:
    order: dict[str, Any] = json.loads((EXAMPLES / "shopify-order.json").read_text())
    order.update(changes)
    return order


def shopify_headers(
    body: bytes,
    *,
    topic: str = "orders/create",
    webhook_id: str | None = None,
    event_id: str | None = None,
    secret: str = SHOPIFY_SECRET,
    domain: str = "lumen.myshopify.com",
) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Shop-Domain": domain,
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        "X-Shopify-API-Version": "2026-10",
        "X-Shopify-Triggered-At": "2026-11-23T08:59:58.123456789Z",
    }
    if event_id:
        headers["X-Shopify-Event-Id"] = event_id
    return headers


def post_shopify(client: FlaskClient, order: dict[str, Any] | bytes, **header_args: Any) -> Any:
    body = order if isinstance(order, bytes) else json.dumps(order).encode()
    return client.post("/webhooks/shopify", data=body, headers=shopify_headers(body, **header_args))


def parsed(mail: Outgoing) -> EmailMessage:
    """A sent email read back the way a mail client would."""
    message = message_from_bytes(mail.raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message
