"""Prometheus metrics count what happened once it is committed, and read the backlog live."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY

from notifier.transports import Outgoing, Receipt, TransientFailure

from .conftest import post_shopify, shopify_order

pytestmark = pytest.mark.usefixtures("shopify_shop")


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Refusing:
    name = "refusing"

    def send(self, mail: Outgoing) -> Receipt:
        raise TransientFailure("421 4.3.2 try later")

    def close(self) -> None:
        pass


def test_webhooks_are_counted_by_source_and_verdict(client: FlaskClient) -> None:
    def count(verdict: str) -> float:
        return value("notifier_webhook_deliveries_total", source="shopify", verdict=verdict)

    before = {verdict: count(verdict) for verdict in ("accepted", "duplicate", "401")}
    post_shopify(client, shopify_order(), webhook_id="wh-m1")
    post_shopify(client, shopify_order(), webhook_id="wh-m1")
    post_shopify(client, shopify_order(), secret="shpss_wrong_secret_00000")

    assert {verdict: count(verdict) - before[verdict] for verdict in before} == {
        "accepted": 1,
        "duplicate": 1,
        "401": 1,
    }


def test_message_transitions_and_the_backlog(
    client: FlaskClient, dispatch: Callable, app: Flask
) -> None:
    def count(state: str) -> float:
        return value("notifier_message_transitions_total", kind="order_confirmation", state=state)

    planned, sent = count("planned"), count("sent")
    post_shopify(client, shopify_order())
    backlog = client.get("/metrics").get_data(as_text=True)
    dispatch()
    after = client.get("/metrics").get_data(as_text=True)

    assert (count("planned") - planned, count("sent") - sent) == (1, 1)
    assert "notifier_due_messages 1" in backlog
    assert "notifier_due_messages 0" in after
    assert "notifier_send_seconds_count" in after


def test_transport_errors_are_counted(client: FlaskClient, dispatch: Callable) -> None:
    before = value("notifier_transport_errors_total", transport="refusing", kind="transient")
    retries = value("notifier_message_transitions_total", kind="order_confirmation", state="retry")
    post_shopify(client, shopify_order())

    dispatch(Refusing())

    assert value("notifier_transport_errors_total", transport="refusing", kind="transient") == (
        before + 1
    )
    assert (
        value("notifier_message_transitions_total", kind="order_confirmation", state="retry")
        == retries + 1
    )
