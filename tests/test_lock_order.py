"""A finishing send and news about the same order never deadlock (PostgreSQL; SQLite has one writer).

Webhooks lock an order's row, then its messages'. The dispatcher's record step must take them in
the same order: if it locked the message first, a webhook holding the order and reaching for the
message would close a circle, and PostgreSQL would abort one of them. The interleaving is forced,
not hoped for: the "webhook" takes the order, the record step starts and is seen waiting for a
lock, then the "webhook" reaches for the message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from notifier import outbox
from notifier.dispatcher import Dispatcher, Outcome
from notifier.models import Message, MessageState, Order
from notifier.recording import Result
from notifier.transports import Receipt

from .conftest import post_shopify, services, shopify_order


def waiting_for_a_lock(app: Flask, application_name: str) -> bool:
    with services(app).engine.connect() as connection:
        found = connection.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = :name AND wait_event_type = 'Lock'"
            ),
            {"name": application_name},
        ).scalar_one()
    return bool(found)


@pytest.mark.usefixtures("shopify_shop")
def test_the_record_step_waits_for_the_order_so_news_can_take_the_message(
    app: Flask, client: FlaskClient, mailbox: Callable
) -> None:
    svc = services(app)
    if svc.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has a single writer: there is no lock order to get wrong")
    assert post_shopify(client, shopify_order()).status_code == 200
    with svc.sessions.begin() as session:
        (claim,) = outbox.claim_due(
            session, worker="w1", now=svc.clock.now(), lease=timedelta(minutes=2), limit=10
        )
        order_id = session.scalar(select_order_of(claim.message_id))
    recorder_engine = sa.create_engine(
        svc.engine.url, connect_args={"application_name": "notifier-recorder"}
    )
    # The record step as the dispatcher runs it, on its own connections.
    dispatcher = Dispatcher(
        sa.orm.sessionmaker(recorder_engine, expire_on_commit=False),
        mailbox,  # type: ignore[arg-type]
        svc.renderer,
        svc.clock,
        worker="w1",
    )
    result = Result(
        claim.message_id, svc.clock.now(), b"raw", Receipt("250 ok"), None, claim, False
    )
    failures: list[BaseException] = []

    def record() -> None:
        try:
            dispatcher._record([result], Outcome())
        except BaseException as error:  # reported below, not lost in the thread
            failures.append(error)

    with svc.engine.connect() as webhook:
        with webhook.begin():
            webhook.execute(sa.text("SET LOCAL lock_timeout = '10s'"))
            webhook.execute(sa.select(Order.id).where(Order.id == order_id).with_for_update())
            recorder = threading.Thread(target=record)
            recorder.start()
            deadline = time.monotonic() + 10
            while not waiting_for_a_lock(app, "notifier-recorder"):
                assert time.monotonic() < deadline, "the record step never started waiting"
                time.sleep(0.02)
            # Now the news reaches for the message, as a supersession does.
            webhook.execute(
                sa.select(Message.id).where(Message.id == claim.message_id).with_for_update()
            )
        recorder.join(timeout=15)
    recorder_engine.dispose()

    assert failures == []
    with svc.sessions() as session:
        assert session.get(Message, claim.message_id).state is MessageState.SENT  # type: ignore[union-attr]


def select_order_of(message_id: str) -> sa.Select[tuple[int]]:
    return sa.select(Message.order_id).where(Message.id == message_id)
