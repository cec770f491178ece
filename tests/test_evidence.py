"""Dispute evidence and erasure: the ZIP proves itself; an erased buyer leaves digests, not data."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from notifier import audit
from notifier.clock import FakeClock
from notifier.ledger import sha256
from notifier.models import Delivery, LedgerContent, LedgerEntry, Message, Order

from .conftest import post_shopify, services
from .test_journeys import at, post_scan, scan
from .test_ledger import journey  # noqa: F401 - the fixture, used by name

pytestmark = pytest.mark.usefixtures("shopify_shop", "journey")

BUYER = "anna.schmidt@example.org"
PERSONAL = (b"anna.schmidt", b"Anna Schmidt", "Torstraße".encode(), b"10119")


@pytest.fixture
def delivered(
    request: pytest.FixtureRequest, client: FlaskClient, clock: FakeClock, dispatch: Callable
) -> None:
    request.getfixturevalue("journey")  # after the journey, whatever order pytest picks
    clock.set(at("2026-11-26T13:00:00+01:00"))
    post_scan(client, scan("delivered", "2026-11-26T12:58:00+01:00", city="Berlin"))
    dispatch()


def export(runner: FlaskCliRunner, tmp_path: Path) -> zipfile.ZipFile:
    out = tmp_path / "evidence.zip"
    result = runner.invoke(args=["notifier", "evidence", "#1001", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return zipfile.ZipFile(io.BytesIO(out.read_bytes()))


@pytest.mark.usefixtures("delivered")
def test_the_zip_holds_every_sent_email_exactly_and_a_manifest_that_proves_it(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    archive = export(runner, tmp_path)
    names = archive.namelist()

    emails = sorted(name for name in names if name.startswith("emails/"))
    assert [name.split("-")[1] for name in emails] == [
        "order_confirmation",
        "out_for_delivery",
        "delivered",
    ]
    assert {"timeline.html", "stripe_evidence.json", "paypal_summary.json", "manifest.json"} <= set(
        names
    )
    with services(app).sessions() as session:
        sent = {d.raw for d in session.scalars(select(Delivery))}
        chain = {e.entry_sha256 for e in session.scalars(select(LedgerEntry))}
    assert {archive.read(name) for name in emails} == sent
    manifest = json.loads(archive.read("manifest.json"))
    assert {item["name"] for item in manifest["files"]} == set(names) - {"manifest.json"}
    for item in manifest["files"]:
        assert hashlib.sha256(archive.read(item["name"])).hexdigest() == item["sha256"]
        assert set(item["ledger_entries"]) <= chain
    assert manifest["chain"]["head_sha256"] in chain


@pytest.mark.usefixtures("delivered")
def test_stripe_and_paypal_get_the_fields_they_ask_for(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    archive = export(runner, tmp_path)
    stripe = json.loads(archive.read("stripe_evidence.json"))
    paypal = json.loads(archive.read("paypal_summary.json"))

    assert stripe["customer_email_address"] == BUYER
    assert stripe["shipping_carrier"] == "DHL Express"
    assert stripe["shipping_tracking_number"] == "JD014600006281230704"
    assert stripe["shipping_date"] == "2026-11-26"
    assert stripe["shipping_address"] == "Anna Schmidt, Torstraße 12, 3. OG, 10119 Berlin, Germany"
    assert "Delivered 2026-11-26 per carrier tracking." in stripe["uncategorized_text"]
    assert "Ihre Bestellung #1001 wurde zugestellt" in stripe["uncategorized_text"]
    assert paypal["evidence_type"] == "PROOF_OF_FULFILLMENT"
    assert paypal["evidence_info"]["tracking_info"] == [
        {"carrier_name": "DHL Express", "tracking_number": "JD014600006281230704"}
    ]
    html = archive.read("timeline.html").decode()
    assert "superseded" in html
    assert "Ihre Bestellung #1001 ist in der Zustellung" in html


def test_every_export_is_recorded_and_the_ledger_still_verifies(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    archive = export(runner, tmp_path)

    with services(app).sessions() as session:
        entry = session.scalars(
            select(LedgerEntry).where(LedgerEntry.kind == "evidence.exported")
        ).one()
        content = json.loads(session.get(LedgerContent, entry.content_sha256).content)  # type: ignore[union-attr]
        report = audit.verify(session)
    assert content == {
        "requested_by": "cli",
        "manifest_sha256": sha256(archive.read("manifest.json")),
    }
    assert report.intact, report.problems


def test_an_unknown_order_is_a_clear_error(runner: FlaskCliRunner, tmp_path: Path) -> None:
    result = runner.invoke(args=["notifier", "evidence", "#999", "--out", str(tmp_path / "x.zip")])

    assert result.exit_code == 1
    assert "no order '#999'" in result.output
    assert not (tmp_path / "x.zip").exists()


# --- erasure ----------------------------------------------------------------------------------


def test_erasing_a_buyer_drops_their_data_and_the_chain_still_verifies(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(args=["notifier", "buyer", "erase", BUYER.upper(), "--yes"])
    verified = runner.invoke(args=["notifier", "ledger", "verify"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("erased the buyer's data from 1 order(s)")
    assert verified.exit_code == 0, verified.output
    assert "erased at a buyer's request" in verified.output
    with services(app).sessions() as session:
        contents = list(session.scalars(select(LedgerContent.content)))
        order = session.scalars(select(Order)).one()
        messages = list(session.scalars(select(Message)))
        entries = list(session.scalars(select(LedgerEntry).order_by(LedgerEntry.id)))
        deliveries = list(session.scalars(select(Delivery)))
    assert not [c for c in contents for word in PERSONAL if word in c]
    assert (order.buyer_email, order.buyer_name) == (None, None)
    assert "shipping_address" not in order.details
    assert {m.recipient for m in messages} == {"erased@erased.invalid"}
    assert all(d.raw is None for d in deliveries)
    assert entries[-1].kind == "erasure"
    # What happened, and when, is still there to read.
    timeline = runner.invoke(args=["notifier", "timeline", "#1001"])
    assert timeline.exit_code == 0, timeline.output
    assert "out_for_delivery  sent" in timeline.output
    archive = export(runner, tmp_path)
    assert not [n for n in archive.namelist() if n.startswith("emails/")]


def test_erasure_cancels_what_was_still_to_be_sent(app: Flask, runner: FlaskCliRunner) -> None:
    runner.invoke(args=["notifier", "buyer", "erase", BUYER, "--yes"])

    with services(app).sessions() as session:
        waiting = session.scalars(select(Message).where(Message.kind == "shipment_delayed")).one()
    assert (waiting.state.value, waiting.reason) == ("cancelled", "the buyer's data was erased")


def test_erasing_an_unknown_address_says_so(runner: FlaskCliRunner, client: FlaskClient) -> None:
    post_shopify(client, {"id": 2}, topic="products/create")
    result = runner.invoke(args=["notifier", "buyer", "erase", "nobody@example.org", "--yes"])

    assert result.exit_code == 1
    assert "no order has the buyer address 'nobody@example.org'" in result.output
