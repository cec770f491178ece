"""Delivery survives a worker killed with SIGKILL at random points, twenty times over (invariant 6).

Real `notifier worker` processes send to a real SMTP server (aiosmtpd, a little slow on purpose
so kills land mid-batch) and are killed without warning; a last worker then finishes. Every due
message must be sent; a message the server received more than once must carry the same
Message-ID each time and be recorded as a possible re-send; and the ledger must still verify.
Bounded in time: short leases, and every wait has a limit.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from notifier import audit
from notifier.models import Delivery, Message, MessageState

from .conftest import post_shopify, services, shopify_order
from .test_dispatch import free_port
from .test_service import BIN

ORDERS = 40
KILLS = 20


class SlowSink:
    """Accepts everything, a little slowly, and keeps the Message-ID of each email it receives."""

    def __init__(self) -> None:
        self.message_ids: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.02)
        for line in envelope.original_content.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                self.message_ids.append(line.split(b":", 1)[1].strip().decode())
        return "250 2.0.0 Ok"


def states(app: Flask) -> Counter[MessageState]:
    with services(app).sessions() as session:
        return Counter(session.scalars(select(Message.state)))


@pytest.mark.timeout(240)
@pytest.mark.usefixtures("shopify_shop")
def test_twenty_sigkills_lose_nothing_and_every_resend_is_marked(
    app: Flask,
    client: FlaskClient,
    environment: dict[str, str],
    tmp_path: Path,
) -> None:
    for number in range(ORDERS):
        order = shopify_order(id=9_000_000 + number, name=f"#K{number}")
        assert post_shopify(client, order).json["status"] == "accepted"
    sink = SlowSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    environment.update(
        NOTIFIER_MAIL_URL=f"smtp://127.0.0.1:{port}?starttls=off",
        NOTIFIER_DISPATCH_LEASE_SECONDS="1",
        NOTIFIER_DISPATCH_POLL_SECONDS="0.05",
        NOTIFIER_DISPATCH_BATCH_SIZE="5",
        # Each kill costs the messages in flight an attempt; none of them is at fault here.
        NOTIFIER_DISPATCH_MAX_ATTEMPTS=str(KILLS + 5),
    )
    chance = random.Random(20261123)  # reproducible kill points
    log = tmp_path / "workers.log"

    def worker() -> subprocess.Popen[bytes]:
        with log.open("ab") as output:
            return subprocess.Popen(
                [str(BIN / "notifier"), "worker"], env=environment, stdout=output, stderr=output
            )

    try:
        for _ in range(KILLS):
            process = worker()
            time.sleep(chance.uniform(0.3, 1.2))  # start-up is ~0.3 s: kills land in sending
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        assert states(app)[MessageState.SENT] < ORDERS, "the kills came too late to test anything"
        survivor = worker()
        deadline = time.monotonic() + 120
        while states(app)[MessageState.SENT] < ORDERS and time.monotonic() < deadline:
            time.sleep(0.2)
        survivor.send_signal(signal.SIGTERM)
        survivor.wait(timeout=20)
    finally:
        controller.stop()

    assert states(app) == Counter({MessageState.SENT: ORDERS}), log.read_text()[-2000:]
    with services(app).sessions() as session:
        message_ids = set(session.scalars(select(Message.rfc_message_id)))
        resent = set(
            session.scalars(
                select(Message.rfc_message_id)
                .join(Delivery, Delivery.message_id == Message.id)
                .where(Delivery.possible_resend.is_(True))
            )
        )
        handed = session.scalar(select(func.count()).select_from(Delivery))
        report = audit.verify(session)
    received = Counter(sink.message_ids)
    assert set(received) == message_ids  # nothing lost, nothing foreign
    twice = {message_id for message_id, times in received.items() if times > 1}
    assert twice <= resent, f"re-sent without a mark: {sorted(twice - resent)}"
    assert handed is not None
    assert handed >= ORDERS
    assert report.intact, json.dumps(report.problems[:5])


@pytest.mark.timeout(120)
@pytest.mark.usefixtures("shopify_shop")
def test_three_worker_processes_at_once_send_each_message_exactly_once(
    app: Flask, client: FlaskClient, environment: dict[str, str], tmp_path: Path
) -> None:
    """Separate processes claiming together (SKIP LOCKED on PostgreSQL, BEGIN IMMEDIATE on SQLite)."""
    for number in range(60):
        order = shopify_order(id=8_000_000 + number, name=f"#W{number}")
        assert post_shopify(client, order).json["status"] == "accepted"
    sink = SlowSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    environment.update(
        NOTIFIER_MAIL_URL=f"smtp://127.0.0.1:{port}?starttls=off",
        NOTIFIER_DISPATCH_POLL_SECONDS="0.05",
        NOTIFIER_DISPATCH_BATCH_SIZE="4",
    )
    log = tmp_path / "workers.log"
    with log.open("ab") as output:
        workers = [
            subprocess.Popen(
                [str(BIN / "notifier"), "worker"], env=environment, stdout=output, stderr=output
            )
            for _ in range(3)
        ]
    try:
        deadline = time.monotonic() + 90
        while states(app)[MessageState.SENT] < 60 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        for process in workers:
            process.wait(timeout=20)
        controller.stop()

    assert states(app) == Counter({MessageState.SENT: 60}), log.read_text()[-2000:]
    received = Counter(sink.message_ids)
    assert len(received) == 60
    assert set(received.values()) == {1}
    with services(app).sessions() as session:
        senders = set(session.scalars(select(Delivery.transport)))
        owners = session.scalar(select(func.count(func.distinct(Delivery.message_id))))
    assert senders == {"smtp"}
    assert owners == 60
