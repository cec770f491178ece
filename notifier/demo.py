"""`notifier demo`: one signed Shopify order through the real webhook, planner and dispatcher."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select

from notifier import shops
from notifier.config import PROJECT_ROOT
from notifier.dispatcher import Outcome
from notifier.models import Platform, Shop
from notifier.services import Services

DOMAIN = "demo-shop.myshopify.com"
EXAMPLE = PROJECT_ROOT / "examples" / "shopify-order.json"


def demo_shop(svc: Services) -> Shop:
    """The demo shop, made on first use with a fresh secret that is never shown."""
    with svc.sessions.begin() as session:
        shop = session.scalar(select(Shop).where(Shop.domain == DOMAIN))
        if shop is None:
            new = shops.NewShop(
                slug="demo",
                platform=Platform.SHOPIFY,
                secret=secrets.token_urlsafe(32),
                sender="Demo Shop <orders@demo-shop.example>",
                domain=DOMAIN,
                support_email="help@demo-shop.example",
                timezone="Europe/Berlin",
                return_policy_url="https://demo-shop.example/policies/refund-policy",
            )
            shop = shops.add(session, new, svc.clock.now())
        return shop


def sample_order(locale: str) -> dict[str, Any]:
    """The example order under a new id and number, so every run is news."""
    order: dict[str, Any] = json.loads(Path(EXAMPLE).read_text())
    serial = secrets.randbelow(9000) + 1000
    order.update(id=secrets.randbelow(10**12) + 10**12, name=f"#D{serial}", order_number=serial)
    order["customer_locale"] = locale
    return order


def post_signed(app: Flask, shop: Shop, order: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(order).encode()
    digest = hmac.new(shop.webhook_secrets[0].encode(), body, hashlib.sha256).digest()
    response = app.test_client().post(
        "/webhooks/shopify",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Shopify-Shop-Domain": DOMAIN,
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Webhook-Id": secrets.token_hex(16),
            "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        },
    )
    answer: dict[str, Any] = response.get_json()
    if response.status_code != 200:
        raise RuntimeError(f"the webhook answered {response.status_code}: {answer}")
    return answer


def run(app: Flask, svc: Services, locale: str, send: Callable[[], Outcome]) -> tuple[str, Outcome]:
    """Post the order, then send what is due; returns the order number and what was sent."""
    order = sample_order(locale)
    post_signed(app, demo_shop(svc), order)
    return str(order["name"]), send()
