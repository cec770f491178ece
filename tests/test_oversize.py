"""Oversized bodies on every webhook endpoint: a clear 413, nothing stored, nothing read past the limit."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from notifier.models import InboundEvent, ProviderEvent

from .conftest import services

ENDPOINTS = (
    "/webhooks/shopify",
    "/webhooks/standard/atelier",
    "/webhooks/woocommerce/kaffee",
    "/webhooks/aftership/atelier",
    "/webhooks/mail/mailgun",
    "/webhooks/mail/ses",
)
MIB = 1024 * 1024


@pytest.mark.usefixtures("standard_shop", "shopify_shop")
@pytest.mark.parametrize("size", [MIB + 1, 10 * MIB], ids=["1MiB+1", "10MiB"])
@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_body_over_the_limit_is_refused_with_413_and_not_stored(
    app: Flask, client: FlaskClient, path: str, size: int
) -> None:
    # The mail-report endpoints answer 403 while unconfigured, before reading anything.
    app.config.update(MAILGUN_WEBHOOK_SIGNING_KEY="key", SES_TOPIC_ARNS="arn:aws:sns:x:1:t")
    body = b'{"pad": "' + b"x" * (size - 11) + b'"}'
    response = client.post(
        path,
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Shopify-Shop-Domain": "lumen.myshopify.com",
        },
    )

    assert response.status_code == 413, (path, response.status_code)
    assert response.mimetype == "application/problem+json"
    assert "(1048576 bytes at most)" in response.get_json()["detail"]
    with services(app).sessions() as session:
        assert session.scalar(select(func.count()).select_from(InboundEvent)) == 0
        assert session.scalar(select(func.count()).select_from(ProviderEvent)) == 0
