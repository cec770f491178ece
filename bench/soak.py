"""Soak: many signed deliveries across many shops, then prove from the database that none was lost.

Starts `notifier serve` on a temporary SQLite database (or an empty PostgreSQL one), with an SMTP
sink (or the .eml file outbox) as the mail server, adds `--shops` shops with `notifier shop add`
(Shopify and standard-format ones, alternately), and posts `--deliveries` signed webhooks at
`--concurrency`: orders (Shopify and the standard format), fulfilments, fulfilment events and
standard shipment updates, about 10% of them exact duplicates (same id, same bytes), with each
parcel's news sent in shuffled order. Each order's deliveries go in sequence, orders in parallel.
Then it waits for the dispatcher to drain what is due (at most `--drain-seconds`) and checks:

- every delivery answered 2xx is stored, once: accepted (distinct ids) == stored inbound events;
- every message planned is accounted for: planned == sent + superseded + cancelled + suppressed
  + waiting, where waiting is mail due later (the buyer's local window, a stall reassurance, the
  survey): the server runs on the wall clock, so those are reported, not waited for;
- no 5xx, nothing due left unsent, nothing failed, and no Message-ID received twice unless the
  ledger marks it as a possible re-send.

The last line is the verdict. Run it from the repository root:

    .venv/bin/python bench/soak.py [--deliveries 100000] [--shops 20] [--concurrency 16]
        [--outbox smtp|file] [--drain-seconds 1800] [--seed 1]
        [--database-url postgresql+psycopg://postgres@127.0.0.1/soak]   # an empty database
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import functools
import hashlib
import hmac
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_binary_file, policy
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from notifier.models import Delivery, EventOutcome, InboundEvent, Message, MessageState

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EXAMPLES = ROOT / "examples"
SENT_STATES = (
    MessageState.SENT,
    MessageState.DELIVERED,
    MessageState.BOUNCED,
    MessageState.COMPLAINED,
)  # handed to the mail server; later states are what the provider reported
# Buyers all over the world, so some mail waits for their morning whatever the hour of the run.
ZONES = [
    ("DE", "Europe/Berlin"),
    ("US", "America/New_York"),
    ("JP", "Asia/Tokyo"),
    ("AU", "Australia/Sydney"),
    ("BR", "America/Sao_Paulo"),
    ("IN", "Asia/Kolkata"),
]
SHOPIFY_EVENTS = ["in_transit", "out_for_delivery", "delivered"]
STANDARD_NEWS = [
    "shipped",
    "departed_origin",
    "arrived_destination",
    "out_for_delivery",
    "delivered",
]


def wall_clock() -> datetime:
    """The server runs on the wall clock, so the storefront does too."""
    return datetime.now(UTC)  # noqa: TID251 - a separate process on real time


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@functools.cache
def _example_text(name: str) -> str:
    return (EXAMPLES / name).read_text()


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(_example_text(name))
    return loaded


# --- shops and deliveries -------------------------------------------------------------------


@dataclass(frozen=True)
class ShopSpec:
    slug: str
    platform: str  # shopify or standard
    secret: str

    @property
    def domain(self) -> str:
        return f"{self.slug}.myshopify.com"


def make_shops(count: int, chance: random.Random) -> list[ShopSpec]:
    shops = []
    for number in range(count):
        if number % 2 == 0:
            secret = f"shpss_soak_{chance.getrandbits(128):032x}"
            shops.append(ShopSpec(f"soak{number}", "shopify", secret))
        else:
            secret = "whsec_" + base64.b64encode(chance.randbytes(32)).decode()
            shops.append(ShopSpec(f"soak{number}", "standard", secret))
    return shops


def add_shop(env: dict[str, str], shop: ShopSpec) -> None:
    command = [
        str(BIN / "notifier"), "shop", "add", shop.slug, "--platform", shop.platform,
        "--secret", shop.secret, "--sender", f"Soak {shop.slug} <orders@{shop.slug}.example>",
        "--locale", "en", "--timezone", "Europe/Berlin",
    ]  # fmt: skip
    if shop.platform == "shopify":
        command += ["--domain", shop.domain]
    subprocess.run(command, env=env, check=True, capture_output=True)


@dataclass
class Item:
    """One delivery; a duplicate shares its original's signed bytes and headers."""

    shop: ShopSpec
    kind: str  # a topic or a standard event type, for the report
    payload: dict[str, Any]
    topic: str = ""
    original: Item | None = None
    signed: tuple[bytes, dict[str, str]] | None = None
    key: str = ""  # the delivery id the service stores

    def sign(self, lock: threading.Lock) -> tuple[bytes, dict[str, str]]:
        """Sign when first sent (Standard Webhooks timestamps must be fresh); a twin reuses it."""
        if self.original is not None:
            return self.original.sign(lock)
        with lock:
            if self.signed is None:
                self.signed = _sign(self)
            return self.signed


def _sign(item: Item) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(item.payload).encode()
    if item.shop.platform == "shopify":
        digest = hmac.new(item.shop.secret.encode(), body, hashlib.sha256).digest()
        return body, {
            "Content-Type": "application/json",
            "X-Shopify-Shop-Domain": item.shop.domain,
            "X-Shopify-Topic": item.topic,
            "X-Shopify-Webhook-Id": item.key,
            "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        }
    stamp = str(int(wall_clock().timestamp()))
    key = base64.b64decode(item.shop.secret.removeprefix("whsec_"))
    signature = hmac.new(key, f"{item.key}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return body, {
        "Content-Type": "application/json",
        "webhook-id": item.key,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(signature).decode(),
    }


def shopify_order_items(shop: ShopSpec, number: int, chance: random.Random) -> list[Item]:
    """An order, its fulfilment (shipped) and the carrier's events, the events shuffled."""
    now = wall_clock()
    country, _zone = chance.choice(ZONES)
    order = example("shopify-order.json")
    order_id = 10**12 + number
    order.update(
        id=order_id, name=f"#S{number}", order_number=number, email=f"b{number}@soak.example"
    )
    order["created_at"] = order["processed_at"] = (now - timedelta(hours=2)).isoformat()
    order["shipping_address"]["country_code"] = country
    order["customer"]["email"] = order["email"]
    items = [Item(shop, "orders/create", order, "orders/create", key=f"o-{number}")]
    fulfilment = example("shopify-fulfillment.json")
    fulfilment.update(id=order_id + 1, order_id=order_id, name=f"#S{number}.1")
    fulfilment["tracking_number"] = f"SOAK{number:010d}"
    fulfilment["tracking_numbers"] = [fulfilment["tracking_number"]]
    fulfilment["created_at"] = fulfilment["updated_at"] = (now - timedelta(hours=1)).isoformat()
    topic = "fulfillments/create"
    items.append(Item(shop, topic, fulfilment, topic, key=f"f-{number}"))
    news = []
    for step, status in enumerate(SHOPIFY_EVENTS):
        event = example("shopify-fulfillment-event.json")
        happened = now - timedelta(minutes=50 - 10 * step)
        event.update(
            id=order_id + 10 + step, fulfillment_id=order_id + 1, order_id=order_id,
            status=status, happened_at=happened.isoformat(), created_at=happened.isoformat(),
            updated_at=happened.isoformat(),
        )  # fmt: skip
        topic = "fulfillment_events/create"
        news.append(Item(shop, f"event {status}", event, topic, key=f"e-{number}-{step}"))
    chance.shuffle(news)
    return items + news


def standard_order_items(shop: ShopSpec, number: int, chance: random.Random) -> list[Item]:
    """An order in the generic format and its parcel's news, shuffled."""
    now = wall_clock()
    _country, zone = chance.choice(ZONES)
    placed = example("standard-order.json")
    order = placed["data"]["order"]
    placed_at = (now - timedelta(hours=2)).isoformat()
    order.update(id=f"G-{number}", number=str(number), placed_at=placed_at)
    order["buyer"].update(email=f"g{number}@soak.example", timezone=zone)
    placed["timestamp"] = now.isoformat()
    items = [Item(shop, "order.placed", placed, key=f"msg_o{number}")]
    news = []
    for step, status in enumerate(STANDARD_NEWS):
        update = example("standard-shipment.json")
        update["data"]["order"] = {"id": f"G-{number}", "number": str(number)}
        shipment = update["data"]["shipment"]
        occurred = now - timedelta(minutes=50 - 10 * step)
        shipment.update(id=f"G-{number}-1", status=status, occurred_at=occurred.isoformat())
        shipment["tracking_number"] = f"GS{number:010d}"
        update["timestamp"] = occurred.isoformat()
        news.append(Item(shop, f"shipment {status}", update, key=f"msg_s{number}_{step}"))
    chance.shuffle(news)
    return items + news


def cancellation(shop: ShopSpec, number: int, original: Item) -> Item:
    if shop.platform == "shopify":
        order = copy.deepcopy(original.payload)
        order.update(cancelled_at=wall_clock().isoformat(), cancel_reason="customer")
        return Item(shop, "orders/cancelled", order, "orders/cancelled", key=f"c-{number}")
    event = copy.deepcopy(original.payload)
    event["type"] = "order.cancelled"
    event["data"]["order"]["cancel_reason"] = "customer"
    return Item(shop, "order.cancelled", event, key=f"msg_c{number}")


def plan(shops: list[ShopSpec], total: int, chance: random.Random) -> Iterator[list[Item]]:
    """Orders' delivery sequences until `total` deliveries, ~10% of them exact duplicates."""
    planned, number = 0, 0
    while planned < total:
        shop = shops[number % len(shops)]
        make = shopify_order_items if shop.platform == "shopify" else standard_order_items
        sequence = make(shop, number, chance)
        if chance.random() < 0.05:  # some buyers change their mind mid-journey
            cancel = cancellation(shop, number, sequence[0])
            sequence.insert(chance.randint(2, len(sequence)), cancel)
        for item in list(sequence):
            if chance.random() < 0.1:
                twin = Item(item.shop, item.kind, item.payload, item.topic, item, key=item.key)
                sequence.insert(chance.randint(sequence.index(item) + 1, len(sequence)), twin)
        sequence = sequence[: total - planned]
        planned += len(sequence)
        number += 1
        yield sequence


# --- the run --------------------------------------------------------------------------------


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[int] = field(default_factory=Counter)
    verdicts: Counter[str] = field(default_factory=Counter)
    accepted: set[tuple[str, str]] = field(default_factory=set)  # (source, delivery id)
    duplicates_sent: int = 0
    failures: list[str] = field(default_factory=list)
    errors: int = 0  # no answer at all


def send_sequence(base: str, sequence: list[Item], tally: Tally, local: threading.local) -> None:
    if not hasattr(local, "session"):
        local.session = requests.Session()
    for item in sequence:
        body, headers = item.sign(tally.lock)
        source = "shopify" if item.shop.platform == "shopify" else "standard"
        path = "shopify" if source == "shopify" else f"standard/{item.shop.slug}"
        url = f"{base}/webhooks/{path}"
        try:
            response = local.session.post(url, data=body, headers=headers, timeout=60)
        except requests.RequestException as error:
            with tally.lock:
                tally.errors += 1
                tally.failures.append(f"{item.key}: {error}")
            continue
        with tally.lock:
            tally.statuses[response.status_code] += 1
            if item.original is not None:
                tally.duplicates_sent += 1
            if 200 <= response.status_code < 300:
                tally.verdicts[response.json().get("status", "?")] += 1
                tally.accepted.add((source, item.key))
            elif len(tally.failures) < 20:
                tally.failures.append(f"{item.key}: {response.status_code} {response.text[:200]}")


class Sink:
    """The mail server: accepts everything and keeps each Message-ID it receives."""

    def __init__(self) -> None:
        self.message_ids: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for line in envelope.original_content.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                self.message_ids.append(line.split(b":", 1)[1].strip().decode())
                break
        await asyncio.sleep(0)
        return "250 2.0.0 Ok"


def outbox_message_ids(folder: Path) -> list[str]:
    found = []
    for path in folder.glob("*.eml"):
        with path.open("rb") as handle:
            found.append(str(message_from_binary_file(handle, policy=policy.default)["Message-ID"]))
    return found


def drain(engine: sa.Engine, seconds: float) -> tuple[bool, float]:
    """Wait until nothing is pending, due or being sent; whether it drained, and how long."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        with engine.connect() as connection:
            pending = connection.scalar(
                sa.select(sa.func.count())
                .select_from(InboundEvent)
                .where(InboundEvent.outcome == EventOutcome.PENDING)
            )
            left = pending or connection.scalar(
                sa.select(sa.func.count())
                .select_from(Message)
                .where(
                    sa.or_(
                        Message.state == MessageState.SENDING,
                        sa.and_(
                            Message.state.in_((MessageState.SCHEDULED, MessageState.RETRY)),
                            Message.next_attempt_at <= wall_clock(),
                        ),
                    )
                )
            )
        if not left:
            return True, time.monotonic() - started
        time.sleep(1)
    return False, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--deliveries", type=int, default=100_000)
    parser.add_argument("--shops", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--threads", type=int, default=16, help="the server's threads")
    parser.add_argument("--outbox", choices=["smtp", "file"], default="smtp")
    parser.add_argument("--database-url", default=None, help="an empty database; default SQLite")
    parser.add_argument("--drain-seconds", type=float, default=1800)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--apply", choices=["inline", "deferred"], default="inline")
    options = parser.parse_args()
    chance = random.Random(options.seed)

    with tempfile.TemporaryDirectory(prefix="soak-") as folder:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
        env["NOTIFIER_INSTANCE_PATH"] = folder
        database_url = options.database_url or f"sqlite:///{folder}/notifier.db"
        env["NOTIFIER_DATABASE_URL"] = database_url
        env["NOTIFIER_APPLY"] = options.apply
        upgrade = [str(BIN / "notifier"), "db", "upgrade"]
        subprocess.run(upgrade, env=env, check=True, capture_output=True)
        sink, controller = Sink(), None
        if options.outbox == "smtp":
            smtp_port = free_port()
            controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
            controller.start()
            env["NOTIFIER_MAIL_URL"] = f"smtp://127.0.0.1:{smtp_port}?starttls=off"
        else:
            env["NOTIFIER_MAIL_URL"] = f"file://{folder}/outbox"
        shops = make_shops(options.shops, chance)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda shop: add_shop(env, shop), shops))
        port = free_port()
        log = Path(folder) / "serve.log"
        with log.open("wb") as output:
            serve = [str(BIN / "notifier"), "serve", "--port", str(port)]
            serve += ["--threads", str(options.threads)]
            server = subprocess.Popen(serve, env=env, stdout=output, stderr=output)
        base = f"http://127.0.0.1:{port}"
        tally = Tally()
        try:
            for _ in range(400):
                try:
                    if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                time.sleep(0.05)
            print(
                f"soak: {options.deliveries} deliveries to {options.shops} shops, concurrency "
                f"{options.concurrency}, {'PostgreSQL' if options.database_url else 'SQLite'}, "
                f"{options.outbox} outbox, apply {options.apply}",
                flush=True,
            )
            local = threading.local()
            started = time.monotonic()
            # Orders are made as they are sent, a few ahead of the senders: 100k fit in memory.
            ahead = threading.BoundedSemaphore(options.concurrency * 4)

            def done(future: Future[None]) -> None:
                ahead.release()
                if future.exception() is not None:
                    with tally.lock:
                        tally.errors += 1
                        tally.failures.append(f"sender crashed: {future.exception()!r}")

            with ThreadPoolExecutor(options.concurrency) as pool:
                for sequence in plan(shops, options.deliveries, chance):
                    ahead.acquire()
                    pool.submit(send_sequence, base, sequence, tally, local).add_done_callback(done)
            posting = time.monotonic() - started
            sent_total = sum(tally.statuses.values()) + tally.errors
            print(
                f"posted {sent_total} in {posting:.1f} s: {sent_total / posting:.0f} deliveries/s; "
                f"answers {dict(sorted(tally.statuses.items()))}, verdicts {dict(tally.verdicts)}",
                flush=True,
            )
            engine = sa.create_engine(database_url)
            drained, drain_time = drain(engine, options.drain_seconds)
            print(
                f"dispatcher {'drained' if drained else 'NOT drained'} {drain_time:.1f} s after "
                "the last delivery",
                flush=True,
            )
        finally:
            server.terminate()
            server.wait(timeout=60)
            if controller is not None:
                controller.stop()
        return report(options, engine, tally, sink, Path(folder), drained, log)


def report(
    options: argparse.Namespace,
    engine: sa.Engine,
    tally: Tally,
    sink: Sink,
    folder: Path,
    drained: bool,
    log: Path,
) -> int:
    now = wall_clock()
    with engine.connect() as connection:
        stored = Counter(
            (source, delivery_id)
            for source, delivery_id in connection.execute(
                sa.select(InboundEvent.source, InboundEvent.delivery_id)
            )
        )
        messages = connection.execute(
            sa.select(Message.state, Message.next_attempt_at, Message.kind, Message.rfc_message_id)
        ).all()
        unapplied = connection.scalar(
            sa.select(sa.func.count())
            .select_from(InboundEvent)
            .where(
                sa.or_(
                    InboundEvent.outcome == EventOutcome.PENDING,
                    InboundEvent.outcome_detail.startswith("could not be applied"),
                )
            )
        )
        resent = set(
            connection.scalars(
                sa.select(Message.rfc_message_id)
                .join(Delivery, Delivery.message_id == Message.id)
                .where(Delivery.possible_resend.is_(True))
            )
        )
    engine.dispose()
    states = Counter(MessageState(state) for state, _due, _kind, _id in messages)
    waiting = Counter(
        kind
        for state, due, kind, _id in messages
        if state in (MessageState.SCHEDULED, MessageState.RETRY)
        and due is not None
        and due.replace(tzinfo=UTC) > now
    )
    sent = sum(states[state] for state in SENT_STATES)
    planned = len(messages)
    accounted = (
        sent
        + states[MessageState.SUPERSEDED]
        + states[MessageState.CANCELLED]
        + states[MessageState.SUPPRESSED]
        + sum(waiting.values())
    )
    received = Counter(
        sink.message_ids if options.outbox == "smtp" else outbox_message_ids(folder / "outbox")
    )
    sent_ids = {rfc for state, _due, _kind, rfc in messages if state in SENT_STATES}
    lost = len(tally.accepted - set(stored)) + len(sent_ids - set(received))
    unexplained = sum(1 for count in stored.values() if count > 1) + len(
        {rfc for rfc, count in received.items() if count > 1} - resent
    )
    unanswered = set(stored) - tally.accepted  # stored, but the storefront never heard 2xx
    errors_5xx = sum(count for status, count in tally.statuses.items() if status >= 500)
    refused_4xx = sum(count for status, count in tally.statuses.items() if 400 <= status < 500)

    print(f"accepted (2xx, distinct) {len(tally.accepted)} == stored inbound events {len(stored)}")
    print(
        f"duplicates sent {tally.duplicates_sent}, answered duplicate {tally.verdicts['duplicate']}"
    )
    print(
        f"planned {planned} == sent {sent} + superseded {states[MessageState.SUPERSEDED]} + "
        f"cancelled {states[MessageState.CANCELLED]} + suppressed {states[MessageState.SUPPRESSED]}"
        f" + waiting {sum(waiting.values())}: {'yes' if planned == accounted else 'NO'}"
    )
    print(f"waiting for the buyer's window or a later day: {dict(waiting.most_common())}")
    by_kind = Counter(f"{kind}:{MessageState(state)}" for state, _due, kind, _id in messages)
    print(f"message states by kind: {dict(sorted(by_kind.items()))}")
    print(f"emails received by the mail server {sum(received.values())}, distinct {len(received)}")
    for line in tally.failures[:10]:
        print(f"  refused: {line}")
    problems = []
    if planned != accounted:
        problems.append(f"{planned - accounted} messages unaccounted for")
    if states[MessageState.FAILED]:
        problems.append(f"{states[MessageState.FAILED]} failed")
    if not drained:
        problems.append("due mail left unsent")
    if unapplied:
        problems.append(f"{unapplied} stored deliveries never applied")
    if refused_4xx or tally.errors:
        problems.append(f"{refused_4xx} 4xx, {tally.errors} unanswered")
    if unanswered:
        problems.append(f"{len(unanswered)} stored without a 2xx")
    if "Traceback" in log.read_text(errors="replace"):
        problems.append(f"a traceback in the server log ({log.name})")
    ok = not problems and lost == 0 and unexplained == 0 and errors_5xx == 0
    total = sum(tally.statuses.values()) + tally.errors
    print(
        f"soak: {total} deliveries, {lost} lost, {unexplained} unexplained duplicates, "
        f"{errors_5xx} 5xx — {'OK' if ok else 'FAILED: ' + '; '.join(problems or ['see above'])}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
