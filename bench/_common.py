"""Shared by the benchmarks: throwaway databases, big tables built fast, an SMTP sink process.

Tables are filled with SQLAlchemy Core executemany, cloning one real order and its message (made
by posting the example Shopify order through the app), so every row renders like a real one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import multiprocessing
import os
import resource
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
SECRET = "shpss_bench_secret_0123456789"
DOMAIN = "bench.myshopify.com"
LOCALES = ("de", "en", "fr", "ja", "ar", "pt_BR")  # rows cycle through these
CHUNK = 20_000


def loadavg_fields() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


def cpu_seconds(pid: int) -> float:
    """User and system CPU a live process has used so far (Linux: /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU of this process's children that have ended and been waited for."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def child_pids() -> set[int]:
    return {
        int(pid)
        for task in Path("/proc/self/task").iterdir()
        for pid in (task / "children").read_text().split()
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- databases ----------------------------------------------------------------------------


def postgres_reachable(url: str) -> bool:
    try:
        engine = sa.create_engine(url)
        engine.connect().close()
        engine.dispose()
        return True
    except sa.exc.OperationalError:
        return False


@contextmanager
def database(postgres_url: str | None, folder: Path, name: str) -> Iterator[str]:
    """A migrated empty database: a SQLite file in `folder`, or a fresh PostgreSQL database."""
    from notifier import migrate
    from notifier.db import make_engine

    if postgres_url is None:
        url = f"sqlite:///{folder / (name + '.db')}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
        return
    db_name = f"notifier_bench_{name}_{os.getpid()}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{db_name}"'))
    url = sa.engine.make_url(postgres_url).set(database=db_name)
    rendered = url.render_as_string(hide_password=False)
    engine = make_engine(rendered)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield rendered
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        admin.dispose()


def make_app(url: str, instance: Path, mail_url: str = "memory://bench", clock: Any = None) -> Any:
    from notifier import create_app

    os.environ["NOTIFIER_INSTANCE_PATH"] = str(instance)
    return create_app({"DATABASE_URL": url, "MAIL_URL": mail_url}, clock=clock)


def signed(order: dict[str, Any], topic: str = "orders/create") -> tuple[bytes, dict[str, str]]:
    body = json.dumps(order).encode()
    digest = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return body, {
        "Content-Type": "application/json",
        "X-Shopify-Shop-Domain": DOMAIN,
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Hmac-Sha256": digest,
    }


def example_order(number: int) -> dict[str, Any]:
    order: dict[str, Any] = json.loads((ROOT / "examples" / "shopify-order.json").read_text())
    order.update(id=10**12 + number, name=f"#B{number}", order_number=number)
    return order


@dataclass
class Seed:
    shop_id: int
    order: dict[str, Any]  # a real orders row, to clone
    message: dict[str, Any]  # a real messages row, to clone


def prepare(app: Any) -> Seed:
    """Add the bench shop and post one real order; return its rows as templates for clones."""
    from notifier.models import Message, Order, Platform, Shop

    svc = app.extensions["notifier"]
    with svc.sessions.begin() as session:
        shop = Shop(
            slug="bench",
            platform=Platform.SHOPIFY,
            domain=DOMAIN,
            webhook_secrets=[SECRET],
            sender="Lumen & Co. <orders@lumen.example>",
            support_email="help@lumen.example",
            locale="en",
            timezone="Europe/Berlin",
            return_policy_url="https://lumen.example/policies/refund-policy",
            created_at=svc.clock.now(),
        )
        session.add(shop)
    body, headers = signed(example_order(0))
    response = app.test_client().post("/webhooks/shopify", data=body, headers=headers)
    assert response.status_code < 300, response.get_data(as_text=True)
    with svc.engine.connect() as connection:
        order = dict(connection.execute(sa.select(Order.__table__)).mappings().one())
        message = dict(connection.execute(sa.select(Message.__table__)).mappings().one())
    return Seed(shop.id, order, message)


def fill(
    engine: sa.Engine,
    seed: Seed,
    count: int,
    *,
    due: bool,
    now: datetime,
    start: int = 1,
) -> None:
    """Add `count` orders with one scheduled message each: due now, or due in the future."""
    from notifier.models import Message, Order

    orders, messages = Order.__table__, Message.__table__
    first_id = start
    with engine.begin() as connection:
        top = connection.scalar(sa.select(sa.func.max(orders.c.id))) or 0
        first_id = top + 1
    for base in range(0, count, CHUNK):
        size = min(CHUNK, count - base)
        order_rows, message_rows = [], []
        for offset in range(size):
            n = start + base + offset
            order_id = first_id + base + offset
            order = {**seed.order}
            order.update(
                id=order_id,
                external_id=str(10**13 + n),
                number=f"#S{n}",
                buyer_email=f"buyer{n}@example.org",
                buyer_name=f"Buyer Number{n}",
            )
            order_rows.append(order)
            message_id = str(uuid.uuid4())
            when = now - timedelta(minutes=5) if due else now + timedelta(days=1 + n % 30)
            message = {**seed.message}
            message.update(
                context=priced(seed.message["context"], n),
                id=message_id,
                order_id=order_id,
                dedupe_key=f"bench:{message_id}",
                rfc_message_id=f"<{message_id}@lumen.example>",
                recipient=f"buyer{n}@example.org",
                locale=LOCALES[n % len(LOCALES)],
                due_at=when,
                next_attempt_at=when,
                state=seed.message["state"],
                attempts=0,
                lease_owner=None,
                lease_until=None,
            )
            message_rows.append(message)
        with engine.begin() as connection:
            connection.execute(orders.insert(), order_rows)
            connection.execute(messages.insert(), message_rows)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(
                sa.text("SELECT setval('orders_id_seq', (SELECT max(id) FROM orders))")
            )
            connection.execute(sa.text("ANALYZE"))
        else:
            connection.execute(sa.text("ANALYZE"))


def priced(context: dict[str, Any], n: int) -> dict[str, Any]:
    """The seed order's email with amounts of its own, as if bought in another quantity and
    taxed for another place: the catalogue's prices, shipping and discount stay as they are."""
    order = context["order"]
    subtotal = Decimal(order["subtotal"]) + n % 997
    tax = (subtotal * Decimal("0.19")).quantize(Decimal("0.01")) + Decimal(n % 7) / 100
    total = subtotal + Decimal(order["shipping"]) + tax - Decimal(order["discount"])
    return {
        **context,
        "order": {**order, "subtotal": str(subtotal), "tax": str(tax), "total": str(total)},
    }


def count_sent(engine: sa.Engine) -> int:
    from notifier.models import Message, MessageState

    with engine.connect() as connection:
        return int(
            connection.scalar(
                sa.select(sa.func.count())
                .select_from(Message.__table__)
                .where(Message.__table__.c.state == MessageState.SENT.value)
            )
            or 0
        )


# --- an SMTP sink in its own process ------------------------------------------------------


def _sink_main(port: int, ready: Any, counter: Any, reply_delay: float) -> None:
    import asyncio

    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            if reply_delay:  # a server farther away, or slower to take a message: not our CPU
                await asyncio.sleep(reply_delay)
            with counter.get_lock():
                counter.value += 1
            return "250 2.0.0 Ok"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)


class Sink:
    """aiosmtpd accepting everything, in a process of its own so it never shares our GIL;
    `reply_delay` seconds before it answers each message's DATA."""

    def __init__(self, reply_delay: float = 0.0) -> None:
        self.port = free_port()
        context = multiprocessing.get_context("spawn")
        self.counter = context.Value("q", 0)
        ready = context.Event()
        self.process = context.Process(
            target=_sink_main, args=(self.port, ready, self.counter, reply_delay), daemon=True
        )
        self.process.start()
        if not ready.wait(30):
            raise SystemExit("the SMTP sink never came up")

    @property
    def received(self) -> int:
        return int(self.counter.value)

    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?starttls=off"

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(10)


def scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="notifier-bench-"))


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
