"""Structured logs: JSON lines carrying the request id (echoed to the caller) and message ids."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from notifier import logs

from .conftest import post_shopify, shopify_order


@pytest.fixture
def json_lines() -> list[str]:
    """What the JSON formatter writes, captured from the root logger."""
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Capture(level=logging.INFO)
    handler.setFormatter(logs.JSONFormatter())
    handler.addFilter(logs.RequestIdFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lines
    root.removeHandler(handler)
    root.setLevel(old_level)


@pytest.mark.usefixtures("shopify_shop")
def test_a_request_id_is_echoed_and_kept_or_made(client: FlaskClient) -> None:
    given = client.get("/healthz", headers={"X-Request-Id": "ticket-4711"})
    made = client.get("/healthz")
    hostile = client.get("/healthz", headers={"X-Request-Id": "a\u2028b<script>"})

    assert given.headers["X-Request-Id"] == "ticket-4711"
    assert len(made.headers["X-Request-Id"]) == 32
    assert hostile.headers["X-Request-Id"] not in ("a\u2028b<script>", "")


@pytest.mark.usefixtures("shopify_shop")
def test_dispatch_logs_are_json_with_the_message_id(
    app: Flask, client: FlaskClient, dispatch: Callable, json_lines: list[str]
) -> None:
    assert post_shopify(client, shopify_order()).status_code == 200
    dispatch()

    entries = [json.loads(line) for line in json_lines]
    sent = [e for e in entries if e.get("state") == "sent"]
    assert len(sent) == 1
    assert sent[0]["kind"] == "order_confirmation"
    assert len(sent[0]["message_id"]) == 36
    assert sent[0]["level"] == "info"
    assert sent[0]["time"].endswith("+00:00")


def test_a_log_line_inside_a_request_carries_its_id(app: Flask, json_lines: list[str]) -> None:
    with app.test_request_context("/"):
        from flask import g

        g.request_id = "req-1"
        logging.getLogger("notifier.test").warning("inside")
    (line,) = [json.loads(x) for x in json_lines if "inside" in x]
    assert line["request_id"] == "req-1"
