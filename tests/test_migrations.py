"""Alembic: the scripts build exactly the models' schema, and go down and up again, on both databases."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier import audit, migrate
from notifier.db import make_engine
from notifier.models import Base, Delivery, InboundEvent, LedgerEntry

from .conftest import POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
        yield engine
        engine.dispose()
        return
    request.getfixturevalue("_postgres_database")  # skips or fails as the suite is configured
    name = f"notifier_migrations_{os.getpid()}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(POSTGRES_URL).set(database=name)
    engine = make_engine(url.render_as_string(hide_password=False))
    yield engine
    engine.dispose()
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_upgrade_builds_what_the_models_describe(empty_engine: sa.Engine) -> None:
    migrate.upgrade(empty_engine)

    with empty_engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    assert migrate.current_revision(empty_engine) == migrate.head_revision()


def test_downgrade_and_upgrade_round_trip(empty_engine: sa.Engine) -> None:
    migrate.upgrade(empty_engine)
    migrate.downgrade(empty_engine, "base")

    tables = set(sa.inspect(empty_engine).get_table_names()) - {"alembic_version"}
    assert tables == set()
    migrate.upgrade(empty_engine)
    assert set(sa.inspect(empty_engine).get_table_names()) >= set(Base.metadata.tables)


def test_history_from_before_the_ledger_is_chained_on_upgrade(empty_engine: sa.Engine) -> None:
    """A database at revision 0003 with a sent email upgrades to a ledger that vouches for it."""
    migrate.upgrade(empty_engine, "0003")
    at = datetime(2026, 11, 20, 9, 0, tzinfo=UTC).replace(tzinfo=None)  # stored naive, as UTC
    body, raw = b'{"id": 7}', b"Subject: Order #7 confirmed\r\n\r\nThanks\r\n"
    rows = {
        "shops": {"id": 1, "slug": "old", "platform": "shopify", "webhook_secrets": "[]",
                  "sender": "Old <o@old.example>", "locale": "en", "timezone": "UTC",
                  "settings": "{}", "tracking_secrets": "{}", "created_at": at},
        "orders": {"id": 1, "shop_id": 1, "external_id": "7", "number": "#7", "status": "open",
                   "buyer_email": "b@example.org", "buyer_timezone": "UTC",
                   "buyer_zones": '["UTC"]', "timezone_source": "shop default", "currency": "EUR",
                   "total": 10, "placed_at": at, "details": "{}", "flags": "[]",
                   "created_at": at, "updated_at": at},
        "inbound_events": {"id": 1, "shop_id": 1, "source": "shopify", "delivery_id": "d1",
                           "topic": "orders/create", "received_at": at, "headers": "{}",
                           "body": body, "body_sha256": hashlib.sha256(body).hexdigest(),
                           "verification": "hmac-sha256 valid", "outcome": "applied",
                           "outcome_detail": "", "order_id": 1},
        "messages": {"id": "m1", "shop_id": 1, "order_id": 1, "caused_by_event_id": 1,
                     "kind": "order_confirmation", "dedupe_key": "k1", "rfc_message_id": "<m1@x>",
                     "recipient": "b@example.org", "locale": "en", "locale_reason": "r",
                     "timezone": "UTC", "state": "sent", "due_at": at, "reason": "at once",
                     "next_attempt_at": at, "attempts": 1, "sent_at": at, "context": "{}",
                     "created_at": at, "updated_at": at},
        "deliveries": {"id": 1, "message_id": "m1", "attempt": 1, "handed_at": at,
                       "transport": "smtp", "rfc_message_id": "<m1@x>", "raw": raw,
                       "raw_sha256": hashlib.sha256(raw).hexdigest(), "possible_resend": False,
                       "outcome": "accepted", "response": "250 ok"},
    }  # fmt: skip
    with empty_engine.begin() as connection:
        for table, values in rows.items():
            connection.execute(sa.table(table, *map(sa.column, values)).insert().values(values))

    migrate.upgrade(empty_engine)

    with Session(empty_engine) as session:
        kinds = list(session.scalars(select(LedgerEntry.kind).order_by(LedgerEntry.seq)))
        report = audit.verify(session)
        delivery = session.scalars(select(Delivery)).one()
        event = session.scalars(select(InboundEvent)).one()
        assert (delivery.raw, event.body) == (raw, body)
    assert kinds == ["event.received", "message.planned", "message.handed_over", "message.sent"]
    assert report.intact, report.problems
