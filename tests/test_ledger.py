"""The written trail: every event, plan, state change and sent email chained, unchangeable, checked.

Tampering is done the way an insider with database access would: around the triggers (dropped
on SQLite, `session_replication_role = replica` on PostgreSQL), then `notifier ledger verify`
must fail and name what was touched.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from notifier import audit, ledger
from notifier.clock import FakeClock
from notifier.ledger import GENESIS, entry_hash, sha256
from notifier.models import Delivery, LedgerContent, LedgerEntry, Message
from notifier.serve import Checkpointer
from notifier.transports.memory import MemoryTransport

from .conftest import post_shopify, services, shopify_order
from .test_journeys import at, fulfilment, post_fulfilment, post_scan, scan

pytestmark = pytest.mark.usefixtures("shopify_shop")


@pytest.fixture
def journey(
    app: Flask, client: FlaskClient, clock: FakeClock, dispatch: Callable, shopify_shop: object
) -> None:
    """An order confirmed, shipped at night (deferred), out for delivery (supersedes), sent."""
    post_shopify(client, shopify_order())
    dispatch()
    clock.set(at("2026-11-26T01:00:00+01:00"))
    post_fulfilment(client, fulfilment(created_at="2026-11-26T01:00:00+01:00", updated_at=None))
    clock.set(at("2026-11-26T07:30:00+01:00"))
    post_scan(client, scan("out_for_delivery", "2026-11-26T07:29:00+01:00"))
    dispatch()
    post_shopify(client, {"id": 1}, topic="products/update")  # reaches no order: the shop's chain


def entries(app: Flask) -> list[LedgerEntry]:
    with services(app).sessions() as session:
        return list(session.scalars(select(LedgerEntry).order_by(LedgerEntry.id)))


@contextmanager
def around_the_triggers(app: Flask) -> Iterator[sa.Connection]:
    engine = services(app).engine
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text("SET LOCAL session_replication_role = replica"))
            yield connection
            return
        triggers = connection.execute(
            sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
        ).all()
        for name, _sql in triggers:
            connection.execute(sa.text(f"DROP TRIGGER {name}"))
        yield connection
        for _name, sql in triggers:
            connection.execute(sa.text(sql))


def verify(app: Flask) -> audit.Report:
    with services(app).sessions() as session:
        return audit.verify(session)


@pytest.mark.usefixtures("journey")
def test_a_journey_leaves_one_chain_per_order_in_the_order_things_happened(app: Flask) -> None:
    recorded = entries(app)
    order_chain = [e for e in recorded if e.chain.startswith("order:")]

    assert [(e.kind, e.subject.split()[0]) for e in order_chain] == [
        ("event.received", "event"),  # orders/create
        ("message.planned", "message"),  # the confirmation, at once
        ("message.handed_over", "message"),
        ("message.sent", "message"),
        ("event.received", "event"),  # the fulfilment, at 01:00
        ("message.planned", "message"),  # shipped, deferred to 09:00
        ("event.received", "event"),  # out for delivery, at 07:29
        ("message.planned", "message"),
        ("message.superseded", "message"),  # shipped
        ("message.planned", "message"),  # the reassurance kept ready for a silence
        ("message.handed_over", "message"),
        ("message.sent", "message"),
    ]
    assert [e.seq for e in order_chain] == list(range(1, 13))
    assert order_chain[0].prev_sha256 == GENESIS
    assert all(b.prev_sha256 == a.entry_sha256 for a, b in itertools.pairwise(order_chain))
    [shop_entry] = [e for e in recorded if e.chain.startswith("shop:")]
    assert (shop_entry.kind, shop_entry.seq, shop_entry.order_id) == ("event.received", 1, None)


@pytest.mark.usefixtures("journey")
def test_the_email_is_kept_once_exactly_as_handed_to_the_transport(
    app: Flask, mailbox: MemoryTransport
) -> None:
    with services(app).sessions() as session:
        delivery = session.scalars(select(Delivery).order_by(Delivery.id)).first()
        assert delivery is not None
        kept = session.get(LedgerContent, delivery.raw_sha256)
        raw = delivery.raw
    assert kept is not None
    assert raw == kept.content == mailbox.sent[0].raw


@pytest.mark.usefixtures("journey")
def test_an_untouched_ledger_verifies(app: Flask, runner: FlaskCliRunner) -> None:
    report = verify(app)
    result = runner.invoke(args=["notifier", "ledger", "verify"])

    assert report.intact, report.problems
    assert (report.entries, report.chains) == (13, 2)
    assert result.exit_code == 0, result.output
    assert result.output == "ledger intact: 13 entries in 2 chains\n"


@pytest.mark.usefixtures("journey")
@pytest.mark.parametrize(
    ("statement", "refused"),
    [
        ("UPDATE ledger_entries SET kind = 'message.sent'", "ledger_entries"),
        ("DELETE FROM ledger_entries", "ledger_entries"),
        ("UPDATE ledger_contents SET content = X'00'", "ledger_contents"),
        ("UPDATE deliveries SET response = 'forged'", "deliveries"),
        ("DELETE FROM inbound_events", "inbound_events"),
    ],
)
def test_the_database_itself_refuses_to_change_history(
    app: Flask, statement: str, refused: str
) -> None:
    with pytest.raises(DBAPIError, match=refused), services(app).engine.begin() as connection:
        connection.execute(sa.text(statement))

    assert verify(app).intact


def first_delivery(app: Flask) -> Delivery:
    with services(app).sessions() as session:
        delivery = session.scalars(select(Delivery).order_by(Delivery.id)).first()
        assert delivery is not None
        assert delivery.raw is not None
        return delivery


@pytest.mark.usefixtures("journey")
def test_one_byte_changed_in_a_sent_email_is_named(app: Flask, runner: FlaskCliRunner) -> None:
    delivery = first_delivery(app)
    assert delivery.raw is not None
    tampered = delivery.raw.replace(b"Bestellung", b"Bestellunk", 1)
    with around_the_triggers(app) as connection:
        connection.execute(
            sa.update(LedgerContent)
            .where(LedgerContent.sha256 == delivery.raw_sha256)
            .values(content=tampered)
        )

    result = runner.invoke(args=["notifier", "ledger", "verify"])

    assert result.exit_code == 1
    [problem] = [line for line in result.output.splitlines() if line.startswith("entry ")]
    assert "message.handed_over" in problem
    assert problem.endswith("the content its raw_sha256 names was changed")
    assert "ledger broken: 1 problem(s) in 13 entries" in result.output


@pytest.mark.usefixtures("journey")
def test_a_delivery_pointed_at_other_bytes_is_named(app: Flask) -> None:
    delivery = first_delivery(app)
    with services(app).sessions.begin() as session:
        other = ledger.keep(session, b"From: someone else\r\n\r\nforged\r\n")
    with around_the_triggers(app) as connection:
        connection.execute(
            sa.update(Delivery).where(Delivery.id == delivery.id).values(raw_sha256=other)
        )

    [problem] = verify(app).problems

    assert problem.endswith(f"delivery {delivery.id} no longer names the email that was sent")


@pytest.mark.usefixtures("journey")
def test_a_rewritten_entry_and_a_removed_one_are_named(app: Flask) -> None:
    order_chain = [e for e in entries(app) if e.chain.startswith("order:")]
    superseded = next(e for e in order_chain if e.kind == "message.superseded")
    with around_the_triggers(app) as connection:
        connection.execute(
            sa.update(LedgerEntry)
            .where(LedgerEntry.id == superseded.id)
            .values(kind="message.sent")
        )
    assert verify(app).problems == [
        f"entry {superseded.id} ({superseded.chain} #{superseded.seq}, message.sent, "
        f"{superseded.subject}): its fields were changed after it was written"
    ]

    with around_the_triggers(app) as connection:
        connection.execute(sa.delete(LedgerEntry).where(LedgerEntry.id == superseded.id))
    [problem] = verify(app).problems
    assert problem.startswith(
        f"entry {superseded.id + 1} ({superseded.chain} #{superseded.seq + 1}"
    )
    assert problem.endswith(f"expected #{superseded.seq} here: entries are missing before it")


@pytest.mark.usefixtures("journey")
def test_a_forged_entry_with_a_correct_hash_still_breaks_the_next_link(app: Flask) -> None:
    """Rewriting an entry and its hash is not enough: the next entry points at the old hash."""
    order_chain = [e for e in entries(app) if e.chain.startswith("order:")]
    target = order_chain[3]  # message.sent of the confirmation
    forged_hash = entry_hash(
        target.chain,
        target.seq,
        target.recorded_at + timedelta(hours=1),
        target.kind,
        target.subject,
        target.content_sha256,
        target.prev_sha256,
    )
    with around_the_triggers(app) as connection:
        connection.execute(
            sa.update(LedgerEntry)
            .where(LedgerEntry.id == target.id)
            .values(recorded_at=target.recorded_at + timedelta(hours=1), entry_sha256=forged_hash)
        )

    [problem] = verify(app).problems
    assert problem.startswith(f"entry {order_chain[4].id} ")
    assert problem.endswith("does not link to the entry before it")


@pytest.mark.usefixtures("journey")
def test_history_written_around_the_ledger_is_found(app: Flask) -> None:
    with services(app).sessions() as session:
        message = session.scalars(select(Message)).first()
        assert message is not None
    with around_the_triggers(app) as connection:
        connection.execute(
            sa.delete(LedgerEntry).where(
                LedgerEntry.subject == f"message {message.id}",
                LedgerEntry.kind == "message.planned",
            )
        )

    assert f"message {message.id} has no ledger entry" in verify(app).problems


def test_contents_are_stored_once_by_digest(app: Flask, client: FlaskClient) -> None:
    post_shopify(client, shopify_order())
    post_shopify(client, shopify_order(), topic="orders/paid")  # the same body again

    with services(app).sessions() as session:
        digests = list(session.scalars(select(LedgerContent.sha256)))
        bodies = [sha256(c) for c in session.scalars(select(LedgerContent.content))]
    assert sorted(digests) == sorted(bodies)
    assert len(digests) == len(set(digests))


# --- checkpoints -------------------------------------------------------------------------------


def order_chain(app: Flask) -> list[LedgerEntry]:
    return [e for e in entries(app) if e.chain.startswith("order:")]


@pytest.mark.usefixtures("journey")
def test_checkpoints_record_the_heads_that_grew(app: Flask, runner: FlaskCliRunner) -> None:
    first = runner.invoke(args=["notifier", "ledger", "checkpoint"])
    again = runner.invoke(args=["notifier", "ledger", "checkpoint"])

    assert first.exit_code == 0, first.output
    assert first.output.startswith("checkpoint #1 over 2 chains: ")
    assert again.output == "nothing new since the last checkpoint\n"
    assert verify(app).intact


@pytest.mark.usefixtures("journey")
def test_a_truncated_chain_is_caught_only_thanks_to_the_checkpoint(
    app: Flask, runner: FlaskCliRunner
) -> None:
    last = order_chain(app)[-1]
    runner.invoke(args=["notifier", "ledger", "checkpoint"])
    with around_the_triggers(app) as connection:
        connection.execute(sa.delete(LedgerEntry).where(LedgerEntry.id == last.id))

    assert verify(app).problems == [
        f"chain {last.chain} ends at #{last.seq - 1}, but checkpoint #1 saw it reach #{last.seq}"
    ]


@pytest.mark.usefixtures("journey")
def test_a_vanished_order_is_caught(app: Flask, runner: FlaskCliRunner) -> None:
    chain = order_chain(app)
    runner.invoke(args=["notifier", "ledger", "checkpoint"])
    with around_the_triggers(app) as connection:
        connection.execute(sa.delete(LedgerEntry).where(LedgerEntry.chain == chain[0].chain))

    problems = verify(app).problems
    assert f"chain {chain[0].chain} vanished: checkpoint #1 saw it reach #{len(chain)}" in problems


@pytest.mark.usefixtures("journey")
def test_running_dispatchers_checkpoint_at_most_every_interval(
    app: Flask, clock: FakeClock, client: FlaskClient
) -> None:
    checkpointer = Checkpointer(services(app), timedelta(hours=1))
    checkpointer()
    post_shopify(client, {"id": 2}, topic="products/create")  # the shop's chain grows
    clock.advance(timedelta(minutes=59))
    checkpointer()
    assert [e.seq for e in entries(app) if e.chain == "checkpoints"] == [1]

    clock.advance(timedelta(minutes=1))
    checkpointer()

    assert [e.seq for e in entries(app) if e.chain == "checkpoints"] == [1, 2]
    assert verify(app).intact
