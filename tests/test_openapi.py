"""The OpenAPI document is generated from the validating models, served, and committed unchanged."""

from __future__ import annotations

import json
import re
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from notifier import openapi

COMMITTED = Path(__file__).resolve().parents[1] / "openapi.json"


def test_the_committed_document_is_current() -> None:
    assert COMMITTED.read_text() == openapi.render(), (
        "openapi.json is stale: run `python -m notifier.openapi > openapi.json`"
    )


def test_the_document_is_served_and_names_every_webhook_route(
    app: Flask, client: FlaskClient
) -> None:
    response = client.get("/openapi.json")

    assert response.status_code == 200
    assert response.json == json.loads(COMMITTED.read_text())
    routes = {
        re.sub(r"<(?:\w+:)?\w+>", "{shop}", rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/webhooks/")
    }
    assert (
        set(response.json["paths"])
        == routes
        == {
            "/webhooks/shopify",
            "/webhooks/standard/{shop}",
            "/webhooks/woocommerce/{shop}",
            "/webhooks/aftership/{shop}",
            "/webhooks/mail/mailgun",
            "/webhooks/mail/ses",
        }
    )
