"""Every database connection dropped during ingest and dispatch, and nothing lost (invariants 1, 6).

A real `notifier serve` process takes signed webhooks from poster threads and sends the order
confirmations to an SMTP sink while, several times, every connection to its PostgreSQL database
is terminated (`pg_terminate_backend`) on the shared test server; and, on a PostgreSQL server
of the test's own (initdb and pg_ctl, so no other test is cut off), while the server is really
restarted.

The service must recover by itself, with no restart of our process. A delivery it could not
store is answered 503 problem+json with Retry-After, never a 500 or a trace; the poster then
does what a storefront does and retries the same delivery (same webhook id), which is safe
because deliveries are idempotent. In the end every delivery answered 2xx is stored exactly
once, and the dispatcher has sent every confirmation. Without PostgreSQL this is skipped (unless
NOTIFIER_TEST_REQUIRE_POSTGRES=1). The last test gives the same 503 for two failures that a
restart or a load peak causes on either database, and that were a 500.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask.testing import FlaskClient

from notifier import intake, migrate
from notifier.clock import SystemClock
from notifier.db import make_engine, make_sessionmaker
from notifier.models import Delivery, InboundEvent, Message, MessageState, Platform, Shop

from .conftest import (
    POSTGRES_URL,
    REQUIRE_POSTGRES,
    SHOPIFY_SECRET,
    migrated_postgres,
    post_shopify,
    shopify_headers,
)
from .conftest import shopify_order as example_order
from .test_dispatch import free_port
from .test_service import BIN

POSTERS = 3  # concurrent storefront connections
PACE = 0.03  # seconds between a poster's deliveries, so the dispatcher keeps up while it happens
INTERRUPTIONS = 5
BETWEEN = 0.8  # seconds of traffic before, between and after interruptions


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """A new, migrated PostgreSQL database for this test alone, dropped afterwards."""
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text("select 1"))
    except sa.exc.OperationalError:
        admin.dispose()
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required but not reachable at {POSTGRES_URL}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}")
    admin.dispose()
    name = f"notifier_restart_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with migrated_postgres(POSTGRES_URL, name) as url:
        yield url


PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)


@dataclass
class PrivateCluster:
    """A PostgreSQL server of this test's own, so restarting it disturbs no other test."""

    data: Path
    port: int
    run_as: list[str]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/notifier"

    def pg_ctl(self, *args: str) -> None:
        assert PG_BIN is not None
        subprocess.run(
            [*self.run_as, str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def restart(self) -> int:
        self.pg_ctl("restart", "-m", "fast", "-w", "-l", str(self.data / "server.log"))
        return 1


@pytest.fixture
def private_cluster() -> Iterator[PrivateCluster]:
    """initdb and pg_ctl from Debian's PostgreSQL, as the postgres user when we are root."""
    if PG_BIN is None or not (PG_BIN / "initdb").exists():
        if REQUIRE_POSTGRES:
            pytest.fail("PostgreSQL's server programs (initdb, pg_ctl) are required")
        pytest.skip("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    home = Path(tempfile.mkdtemp(prefix="notifier-pg-", dir="/tmp"))
    data = home / "data"
    if run_as:
        shutil.chown(home, "postgres")
    subprocess.run(
        [*run_as, str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
         "--no-sync"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    cluster = PrivateCluster(data, free_port(), run_as)
    options = f"-p {cluster.port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    cluster.pg_ctl("start", "-w", "-o", options, "-l", str(data / "server.log"))
    try:
        admin = sa.create_engine(
            cluster.url.replace("/notifier", "/postgres"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as connection:
            connection.execute(sa.text("CREATE DATABASE notifier"))
        admin.dispose()
        engine = make_engine(cluster.url)
        migrate.upgrade(engine)
        engine.dispose()
        yield cluster
    finally:
        cluster.pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(home, ignore_errors=True)


def terminate_backends(database: str) -> int:
    """Drop every connection to `database` except our own; how many there were."""
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            killed = connection.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": database},
            ).scalar_one()
    finally:
        admin.dispose()
    return int(killed)


class Sink:
    """An SMTP server that keeps the Message-ID of each email it receives."""

    def __init__(self) -> None:
        self.message_ids: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for line in envelope.original_content.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                self.message_ids.append(line.split(b":", 1)[1].strip().decode())
        return "250 2.0.0 Ok"


class Storefront:
    """Posts distinct signed orders until told to stop, retrying each one until it is stored."""

    def __init__(self, base: str) -> None:
        self.url = f"{base}/webhooks/shopify"
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answers: Counter[int] = Counter()
        self.stored: list[str] = []  # webhook ids answered 2xx
        self.unretryable: list[str] = []  # anything but 2xx or a proper 503, with its body
        self.next_number = 0

    def run(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            with self.lock:
                number, self.next_number = self.next_number, self.next_number + 1
            self.deliver(session, number)

    def deliver(self, session: requests.Session, number: int) -> None:
        order = example_order(id=7_000_000 + number, name=f"#R{number}")
        order["email"] = f"buyer{number}@example.org"
        body = json.dumps(order).encode()
        headers = shopify_headers(body, webhook_id=f"restart-{number}")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            response = session.post(self.url, data=body, headers=headers, timeout=15)
            with self.lock:
                self.answers[response.status_code] += 1
            if response.status_code == 200:
                with self.lock:
                    self.stored.append(headers["X-Shopify-Webhook-Id"])
                time.sleep(PACE)
                return
            retryable = (
                response.status_code == 503
                and response.headers.get("Content-Type", "").startswith("application/problem+json")
                and response.headers.get("Retry-After")
                and "Traceback" not in response.text
            )
            if not retryable:
                with self.lock:
                    self.unretryable.append(f"{response.status_code} {response.text[:300]}")
                return
            time.sleep(0.05)  # a storefront waits Retry-After; this one is impatient
        with self.lock:
            self.unretryable.append(f"restart-{number} never stored within 20 s")


@pytest.mark.postgres_only
@pytest.mark.timeout(90)
def test_connections_dropped_mid_ingest_and_dispatch_lose_nothing(
    fresh_database: str, tmp_path: Path
) -> None:
    database = sa.engine.make_url(fresh_database).database
    assert database is not None
    survive(fresh_database, tmp_path, lambda: terminate_backends(database), INTERRUPTIONS)


@pytest.mark.postgres_only
@pytest.mark.timeout(150)
def test_a_real_postgresql_restart_mid_ingest_and_dispatch_loses_nothing(
    private_cluster: PrivateCluster, tmp_path: Path
) -> None:
    """The server itself stopped and started again (`pg_ctl restart -m fast`), twice."""
    survive(private_cluster.url, tmp_path, private_cluster.restart, 2)


def survive(url: str, tmp_path: Path, interrupt: Callable[[], int], times: int) -> None:
    """Traffic through a real `notifier serve` while `interrupt` strikes `times` times or more."""
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        session.add(
            Shop(
                slug="lumen",
                platform=Platform.SHOPIFY,
                domain="lumen.myshopify.com",
                webhook_secrets=[SHOPIFY_SECRET],
                sender="Lumen & Co. <orders@lumen.example>",
                locale="en",
                timezone="Europe/Berlin",
                created_at=SystemClock().now(),
            )
        )
    sink = Sink()
    smtp_port, port = free_port(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    env = {key: value for key, value in os.environ.items() if not key.startswith("NOTIFIER_")}
    env.update(
        NOTIFIER_INSTANCE_PATH=str(tmp_path / "instance"),
        NOTIFIER_DATABASE_URL=url,
        NOTIFIER_MAIL_URL=f"smtp://127.0.0.1:{smtp_port}?starttls=off",
        NOTIFIER_DISPATCH_POLL_SECONDS="0.05",
        NOTIFIER_DISPATCH_LEASE_SECONDS="2",  # an orphaned claim returns soon
        NOTIFIER_DISPATCH_MAX_ATTEMPTS="50",  # interruptions are not the message's fault
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(BIN / "notifier"), "serve", "--port", str(port), "--threads", "8"],
            env=env,
            stdout=output,
            stderr=output,
        )
    base = f"http://127.0.0.1:{port}"
    storefront = Storefront(base)
    posters = [threading.Thread(target=storefront.run) for _ in range(POSTERS)]
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        for poster in posters:
            poster.start()
        killed: list[int] = []
        # At least `times`, and more (bounded) until one cut a delivery off mid-way.
        while len(killed) < times or (storefront.answers[503] == 0 and len(killed) < 4 * times):
            time.sleep(BETWEEN)
            killed.append(interrupt())
        time.sleep(BETWEEN)
        storefront.stop.set()
        for poster in posters:
            poster.join(timeout=30)

        assert process.poll() is None, "the service died: " + log.read_text()[-2000:]
        assert storefront.unretryable == [], storefront.unretryable[:5]
        assert sum(killed) >= len(killed), f"the service held no connections to drop: {killed}"
        assert storefront.answers[503] > 0, "no interruption ever caught a delivery mid-way"
        assert requests.get(f"{base}/readyz", timeout=5).status_code == 200

        deadline = time.monotonic() + 30
        expected = len(storefront.stored)
        while time.monotonic() < deadline:
            with sessions() as session:
                sent = session.scalar(
                    sa.select(sa.func.count()).where(Message.state == MessageState.SENT)
                )
            if sent == expected:
                break
            time.sleep(0.2)
    finally:
        storefront.stop.set()
        process.terminate()
        process.wait(timeout=30)
        controller.stop()

    with sessions() as session:
        stored = Counter(session.scalars(sa.select(InboundEvent.delivery_id)))
        states = Counter(session.scalars(sa.select(Message.state)))
        message_ids = set(session.scalars(sa.select(Message.rfc_message_id)))
        resent = set(
            session.scalars(
                sa.select(Message.rfc_message_id)
                .join(Delivery, Delivery.message_id == Message.id)
                .where(Delivery.possible_resend.is_(True))
            )
        )
    engine.dispose()
    accepted = set(storefront.stored)
    assert len(accepted) == len(storefront.stored)
    assert set(stored) == accepted, "a 2xx without its stored delivery, or one stored unanswered"
    assert set(stored.values()) == {1}
    assert states == Counter({MessageState.SENT: len(accepted)}), log.read_text()[-2000:]
    received = Counter(sink.message_ids)
    assert set(received) == message_ids
    twice = {message_id for message_id, times in received.items() if times > 1}
    assert twice <= resent, f"re-sent without a mark: {sorted(twice - resent)}"
    print(
        f"{len(accepted)} deliveries stored, answers {dict(storefront.answers)}, "
        f"connections dropped {killed}"
    )


# --- the answer when the database fails in other ways -------------------------------------


@pytest.mark.usefixtures("shopify_shop")
@pytest.mark.parametrize(
    "failure",
    [
        sa.exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached, timeout 30.00"),
        sa.exc.InterfaceError(
            "SELECT 1", {}, Exception("the connection is closed"), connection_invalidated=True
        ),
    ],
    ids=["pool-exhausted", "connection-invalidated"],
)
def test_a_database_that_cannot_serve_now_answers_503_not_500(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    """Every connection busy past the pool's timeout, or one found dead: a retryable 503."""

    def fail(*_args: Any, **_kwargs: Any) -> None:
        raise failure

    monkeypatch.setattr(intake, "find_duplicate", fail)

    response = post_shopify(client, example_order())

    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "30"
    assert "Traceback" not in response.get_data(as_text=True)
