"""NOTIFIER_APPLY=deferred: a webhook stores and answers; a worker applies what is pending.

The same deliveries from all four sources, posted once to an app that applies inline and once to
one that defers, leave the same orders, messages, verdicts and emails: the worker applies from
the stored raw body, in arrival order, through the same code.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from notifier import applier, audit, create_app, intake
from notifier.clock import FakeClock
from notifier.dispatcher import Dispatcher
from notifier.models import (
    EventOutcome,
    InboundEvent,
    LedgerContent,
    Message,
    Order,
    Platform,
    Shop,
)
from notifier.transports.memory import MemoryTransport

from .conftest import (
    EXAMPLES,
    SHOPIFY_SECRET,
    STANDARD_SECRET,
    START,
    migrated_postgres,
    post_shopify,
    services,
    shopify_order,
)
from .test_webhooks_aftership import SECRET as AFTERSHIP_SECRET
from .test_webhooks_aftership import just_after, load, post_aftership, truncated
from .test_webhooks_standard import post_standard, standard_event
from .test_webhooks_woocommerce import WOO_SECRET, post_woo, woo_order

Poster = Callable[[FlaskClient, FakeClock], Any]


def add_shops(app: Flask, clock: FakeClock) -> None:
    shops = [
        ("lumen", Platform.SHOPIFY, "lumen.myshopify.com", SHOPIFY_SECRET, "en", "Europe/Berlin"),
        ("atelier", Platform.STANDARD, None, STANDARD_SECRET, "de", "Europe/Berlin"),
        ("kaffee", Platform.WOOCOMMERCE, None, WOO_SECRET, "de", "Europe/Berlin"),
    ]
    with services(app).sessions.begin() as session:
        for slug, platform, domain, secret, locale, zone in shops:
            session.add(
                Shop(
                    slug=slug,
                    platform=platform,
                    domain=domain,
                    webhook_secrets=[secret],
                    tracking_secrets={"aftership": [AFTERSHIP_SECRET]},
                    sender=f"{slug.title()} <orders@{slug}.example>",
                    support_email=f"help@{slug}.example",
                    locale=locale,
                    timezone=zone,
                    return_policy_url=None,
                    created_at=clock.now(),
                )
            )


def fulfilment() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / "shopify-fulfillment.json").read_text())
    return data


def scan(status: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / "shopify-fulfillment-event.json").read_text())
    data.update(id=abs(hash(status)) % 10**9, status=status)
    return data


ORDER_BODY = json.dumps(shopify_order()).encode()

# Every dialect, news for orders that exist and for one that does not, a duplicate, a topic
# nobody handles, and a cancellation: each a function of (client, clock) posting one delivery.
DELIVERIES: list[tuple[str, Poster]] = [
    ("shopify order", lambda c, _: post_shopify(c, ORDER_BODY, webhook_id="w-order")),
    ("the same delivery again", lambda c, _: post_shopify(c, ORDER_BODY, webhook_id="w-order")),
    ("shopify fulfilment", lambda c, _: post_shopify(c, fulfilment(), topic="fulfillments/create")),
    (
        "shopify scan",
        lambda c, _: post_shopify(c, scan("in_transit"), topic="fulfillment_events/create"),
    ),
    ("unhandled topic", lambda c, _: post_shopify(c, {"id": 1}, topic="products/create")),
    ("standard order", lambda c, k: post_standard(c, k, standard_event())),
    (
        "standard cancellation",
        lambda c, k: post_standard(c, k, standard_event("order.cancelled")),
    ),
    ("woocommerce order", lambda c, _: post_woo(c, woo_order(tracking=True))),
    (
        "aftership news for the shopify order",
        lambda c, k: post_aftership(
            c, just_after(k, truncated(load("cn-de-cainiao-delivered"), 3))
        ),
    ),
    (
        "news for an order nobody placed",
        lambda c, _: post_shopify(
            c, dict(fulfilment(), order_id=999, id=4), topic="fulfillments/create"
        ),
    ),
]


@pytest.fixture
def twin_url(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A second empty database beside the test's own, for the app that defers."""
    if database_url.startswith("sqlite"):
        path = tmp_path / "twin.db"
        shutil.copy(request.getfixturevalue("_sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    name = f"{sa.engine.make_url(database_url).database}_twin"
    with migrated_postgres(database_url, name) as twin:
        yield twin


@pytest.fixture
def deferred_app(
    twin_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Flask, FakeClock]]:
    monkeypatch.setenv("NOTIFIER_INSTANCE_PATH", str(tmp_path / "twin-instance"))
    clock = FakeClock(START)
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": twin_url,
            "MAIL_URL": "memory://twin",
            "APPLY": "deferred",
        },
        clock=clock,
    )
    add_shops(app, clock)
    yield app, clock
    services(app).engine.dispose()
    MemoryTransport.forget("twin")


def apply_pending(app: Flask) -> int:
    svc = services(app)
    return applier.apply_pending(svc.sessions, svc.clock, svc.renderer.locales)


def summary(app: Flask) -> dict[str, Any]:
    """Everything the deliveries changed, in terms that do not depend on row ids."""
    with services(app).sessions() as session:
        orders = {o.id: (o.external_id, o.status.value) for o in session.scalars(select(Order))}
        events = [
            (e.source, e.topic, e.outcome.value, e.outcome_detail, orders.get(e.order_id))
            for e in session.scalars(select(InboundEvent).order_by(InboundEvent.id))
        ]
        messages = sorted(
            (
                orders[m.order_id][0],
                m.kind,
                m.state.value,
                m.due_at.isoformat(),
                m.reason,
                m.recipient,
                m.locale,
                m.dedupe_key.replace(str(m.order_id), "<order>"),
            )
            for m in session.scalars(select(Message))
        )
        report = audit.verify(session)
    return {
        "orders": sorted(orders.values()),
        "events": events,
        "messages": messages,
        "ledger": (report.intact, report.problems),
    }


def test_deferred_answers_stored_and_a_worker_applies_exactly_what_inline_would(
    app: Flask, client: FlaskClient, clock: FakeClock, deferred_app: tuple[Flask, FakeClock]
) -> None:
    twin, twin_clock = deferred_app
    twin_client = twin.test_client()
    add_shops(app, clock)
    answers: list[tuple[str, str, str]] = []
    for name, post in DELIVERIES:
        inline = post(client, clock)
        deferred = post(twin_client, twin_clock)
        assert inline.status_code == deferred.status_code == 200, name
        answers.append((name, inline.json["status"], deferred.json["status"]))
        apply_pending(twin)

    assert answers == [
        ("shopify order", "accepted", "stored"),
        ("the same delivery again", "duplicate", "duplicate"),
        ("shopify fulfilment", "accepted", "stored"),
        ("shopify scan", "accepted", "stored"),
        ("unhandled topic", "ignored", "ignored"),
        ("standard order", "accepted", "stored"),
        ("standard cancellation", "accepted", "stored"),
        ("woocommerce order", "accepted", "stored"),
        ("aftership news for the shopify order", "accepted", "stored"),
        ("news for an order nobody placed", "ignored", "stored"),
    ]
    inline_summary, deferred_summary = summary(app), summary(twin)
    for part in ("orders", "events", "messages"):  # one by one, for a readable difference
        assert list(deferred_summary[part]) == list(inline_summary[part])
    assert deferred_summary == inline_summary
    assert len(inline_summary["messages"]) >= 5  # the journey really planned mail
    assert inline_summary["ledger"] == (True, [])


def test_a_backlog_is_applied_in_arrival_order(
    deferred_app: tuple[Flask, FakeClock],
) -> None:
    """Fulfilment and scan stored before any worker ran still find the order stored before them."""
    twin, clock = deferred_app
    client = twin.test_client()
    for _name, post in DELIVERIES:
        assert post(client, clock).status_code == 200
    with services(twin).sessions() as session:
        assert applier.pending_count(session) == 8
        assert session.scalar(select(sa.func.count()).select_from(Message)) == 0

    assert apply_pending(twin) == 8

    result = summary(twin)
    verdicts = [(source, outcome) for source, _topic, outcome, _detail, _order in result["events"]]
    assert verdicts == [
        ("shopify", "applied"),
        ("shopify", "applied"),
        ("shopify", "applied"),
        ("shopify", "ignored"),  # the unhandled topic, answered at once
        ("standard", "applied"),
        ("standard", "applied"),
        ("woocommerce", "applied"),
        ("aftership", "applied"),
        ("shopify", "ignored"),  # no such order
    ]
    kinds = {(order, kind) for order, kind, *_rest in result["messages"]}
    assert ("5523487293612", "order_confirmation") in kinds
    assert ("5523487293612", "shipment_shipped") in kinds
    assert result["ledger"] == (True, [])
    assert apply_pending(twin) == 0  # nothing is applied twice


def test_a_stored_delivery_is_a_duplicate_before_and_after_it_is_applied(
    deferred_app: tuple[Flask, FakeClock],
) -> None:
    twin, _clock = deferred_app
    client = twin.test_client()
    first = post_shopify(client, ORDER_BODY, webhook_id="w-1")
    again = post_shopify(client, ORDER_BODY, webhook_id="w-1")
    apply_pending(twin)
    later = post_shopify(client, ORDER_BODY, webhook_id="w-1")

    other_body = post_shopify(client, shopify_order(note="changed"), webhook_id="w-1")

    assert first.json["status"] == "stored"
    assert first.json["detail"] == "stored; a worker applies it"
    assert other_body.json["status"] == "duplicate"
    assert again.json["status"] == later.json["status"] == "duplicate"
    assert again.json["event_id"] == later.json["event_id"] == first.json["event_id"]
    with services(twin).sessions() as session:
        assert session.scalar(select(sa.func.count()).select_from(Message)) == 1
        stored_bodies = session.scalars(select(LedgerContent.content)).all()
    assert ORDER_BODY in stored_bodies
    assert not any(b"changed" in content for content in stored_bodies)  # a twin stores nothing


def test_bad_input_is_still_refused_before_anything_is_stored(
    deferred_app: tuple[Flask, FakeClock],
) -> None:
    twin, _clock = deferred_app
    client = twin.test_client()
    forged = post_shopify(client, ORDER_BODY, secret="not-the-secret")
    invalid = post_shopify(client, shopify_order(email="not an address", created_at="yesterday"))

    assert forged.status_code == 401
    assert invalid.status_code == 422
    assert invalid.mimetype == "application/problem+json"
    with services(twin).sessions() as session:
        assert session.scalar(select(sa.func.count()).select_from(InboundEvent)) == 0


def test_a_delivery_the_database_refuses_is_answered_422_with_its_reason_not_raced(
    deferred_app: tuple[Flask, FakeClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    twin, _clock = deferred_app
    real_row = intake.pending_row

    def without_topic(**values: Any) -> dict[str, Any]:  # a gap in our checks, say
        return {**real_row(**values), "topic": None}

    monkeypatch.setattr(intake, "pending_row", without_topic)
    answer = post_shopify(twin.test_client(), ORDER_BODY)

    assert answer.status_code == 422
    assert answer.mimetype == "application/problem+json"
    assert answer.json["title"] == "Refused by the database"
    assert "topic" in answer.json["detail"]
    assert "nothing was kept" in answer.json["detail"]
    with services(twin).sessions() as session:
        assert session.scalar(select(sa.func.count()).select_from(InboundEvent)) == 0


def test_the_worker_applies_stored_deliveries_before_it_sends(
    deferred_app: tuple[Flask, FakeClock],
) -> None:
    twin, _clock = deferred_app
    svc = services(twin)
    post_shopify(twin.test_client(), ORDER_BODY)
    mailbox = MemoryTransport.named("twin")
    dispatcher = Dispatcher(
        svc.sessions,
        mailbox,
        svc.renderer,
        svc.clock,
        worker="w",
        links=svc.links,
        apply_stored=lambda: apply_pending(twin),
    )

    outcome = dispatcher.run_once()

    assert (outcome.applied, outcome.sent) == (1, 1)
    assert [mail.recipients for mail in mailbox.sent] == [("anna.schmidt@example.org",)]


def test_a_delivery_that_cannot_be_applied_ends_ignored_with_the_error_named(
    deferred_app: tuple[Flask, FakeClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    twin, _clock = deferred_app
    client = twin.test_client()
    post_shopify(client, ORDER_BODY)
    post_standard(client, _clock, standard_event())

    def broken(*_args: Any) -> Any:
        raise RuntimeError("adapter bug")

    monkeypatch.setitem(applier.TRANSLATORS, "shopify", broken)
    assert apply_pending(twin) == 2

    with services(twin).sessions() as session:
        events = session.scalars(select(InboundEvent).order_by(InboundEvent.id)).all()
        assert [e.outcome for e in events] == [EventOutcome.IGNORED, EventOutcome.APPLIED]
        assert "RuntimeError: adapter bug" in events[0].outcome_detail
        assert audit.verify(session).intact


def test_an_unknown_apply_mode_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="NOTIFIER_APPLY must be one of inline, deferred"):
        create_app({"APPLY": "later", "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})


def test_two_workers_at_once_apply_each_delivery_once(
    database_url: str, deferred_app: tuple[Flask, FakeClock]
) -> None:
    """PostgreSQL: the advisory lock lets one applier at a time (SQLite's writer lock does that)."""
    twin, _clock = deferred_app
    client = twin.test_client()
    for number in range(60):
        body = json.dumps(shopify_order(id=10**9 + number, name=f"#{number}")).encode()
        assert post_shopify(client, body).json["status"] == "stored"
    counts: list[int] = []
    start = threading.Barrier(2)

    def work() -> None:
        start.wait()
        counts.append(apply_pending(twin))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sum(counts) == 60
    with services(twin).sessions() as session:
        assert session.scalar(select(sa.func.count()).select_from(Message)) == 60
        assert applier.pending_count(session) == 0


def test_the_database_lets_a_pending_delivery_get_its_verdict_once_and_nothing_else(
    deferred_app: tuple[Flask, FakeClock],
) -> None:
    twin, clock = deferred_app
    client = twin.test_client()
    pending = post_shopify(client, ORDER_BODY).json["event_id"]
    settled = post_standard(client, clock, standard_event())
    apply_pending(twin)
    newer = post_shopify(client, shopify_order(id=7, name="#7")).json["event_id"]
    engine = services(twin).engine

    def update(sql: str, event_id: int) -> None:
        with engine.begin() as connection:
            connection.execute(sa.text(sql), {"id": event_id})

    refused = (sa.exc.IntegrityError, sa.exc.InternalError, sa.exc.DatabaseError)
    for sql, event_id in [
        ("UPDATE inbound_events SET outcome = 'ignored' WHERE id = :id", pending),  # settled
        ("UPDATE inbound_events SET outcome = 'pending' WHERE id = :id", settled.json["event_id"]),
        ("UPDATE inbound_events SET body_sha256 = 'x', outcome = 'ignored' WHERE id = :id", newer),
        ("UPDATE inbound_events SET topic = 'orders/paid' WHERE id = :id", newer),
        ("DELETE FROM inbound_events WHERE id = :id", newer),
    ]:
        with pytest.raises(refused, match="append-only"):
            update(sql, event_id)
    update(
        "UPDATE inbound_events SET outcome = 'ignored', outcome_detail = 'x' WHERE id = :id", newer
    )
    with pytest.raises(refused, match="append-only"):
        update("UPDATE inbound_events SET outcome_detail = 'y' WHERE id = :id", newer)


def test_readiness_and_metrics_show_the_stored_backlog(
    deferred_app: tuple[Flask, FakeClock],
) -> None:
    twin, _clock = deferred_app
    client = twin.test_client()
    post_shopify(client, ORDER_BODY)
    post_shopify(client, shopify_order(id=8, name="#8"))
    before = (client.get("/readyz").json, client.get("/metrics").get_data(as_text=True))
    apply_pending(twin)
    after = (client.get("/readyz").json, client.get("/metrics").get_data(as_text=True))

    assert (before[0]["pending_deliveries"], after[0]["pending_deliveries"]) == (2, 0)
    assert "notifier_pending_deliveries 2\n" in before[1]
    assert "notifier_pending_deliveries 0\n" in after[1]
    assert 'notifier_webhook_deliveries_total{source="shopify",verdict="stored"}' in before[1]


def test_after_switching_back_to_inline_news_waits_behind_what_is_still_stored(
    deferred_app: tuple[Flask, FakeClock],
) -> None:
    twin, _clock = deferred_app
    client = twin.test_client()
    assert post_shopify(client, ORDER_BODY).json["status"] == "stored"
    twin.config["APPLY"] = "inline"  # the operator switched before the workers drained

    behind = post_shopify(client, fulfilment(), topic="fulfillments/create")
    apply_pending(twin)
    after = post_shopify(client, scan("out_for_delivery"), topic="fulfillment_events/create")

    assert behind.json["status"] == "stored"  # not applied ahead of its order
    assert after.json["status"] == "accepted"  # nothing left in front of it: inline again
    verdicts = [(outcome, detail) for _s, _t, outcome, detail, _o in summary(twin)["events"]]
    assert [outcome for outcome, _detail in verdicts] == ["applied", "applied", "applied"]
    assert "shipment_shipped planned" in verdicts[1][1]


def test_a_race_on_a_unique_key_is_tried_again_not_given_up(
    deferred_app: tuple[Flask, FakeClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    twin, _clock = deferred_app
    post_shopify(twin.test_client(), ORDER_BODY)
    real, calls = applier.TRANSLATORS["shopify"], []

    def racing(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise sa.exc.IntegrityError("INSERT INTO orders", {}, Exception("taken meanwhile"))
        return real(*args)

    monkeypatch.setitem(applier.TRANSLATORS, "shopify", racing)
    assert apply_pending(twin) == 1

    with services(twin).sessions() as session:
        assert session.scalars(select(InboundEvent.outcome)).all() == [EventOutcome.APPLIED]
        assert session.scalar(select(sa.func.count()).select_from(Message)) == 1
