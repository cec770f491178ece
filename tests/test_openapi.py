"""The OpenAPI document is generated from the validating models, served, and committed unchanged."""

from __future__ import annotations

import json
from pathlib import Path

from flask.testing import FlaskClient

from notifier import openapi

COMMITTED = Path(__file__).resolve().parents[1] / "openapi.json"


def test_the_committed_document_is_current() -> None:
    assert COMMITTED.read_text() == openapi.render(), (
        "openapi.json is stale: run `python -m notifier.openapi > openapi.json`"
    )


def test_the_document_is_served(client: FlaskClient) -> None:
    response = client.get("/openapi.json")

    assert response.status_code == 200
    assert response.json == json.loads(COMMITTED.read_text())
    assert set(response.json["paths"]) == {"/webhooks/shopify", "/webhooks/standard/{shop}"}
