"""`notifier demo`: sample journeys posted, signed, through the webhook endpoints of the service.

Four buyers in four countries and languages, two storefront dialects (Shopify and the standard
format) and several carriers. Each journey's news is posted in carrier-time order with the
service's dispatcher running between posts, as it would in production; the record then shows what
went out, what waits for the buyer's morning, and what was superseded or ignored, and why.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from flask import Flask
from sqlalchemy import select
from standardwebhooks import Webhook

from notifier import shops
from notifier.config import PROJECT_ROOT
from notifier.models import Platform, Shop
from notifier.services import Services

SHOPIFY_DOMAIN = "demo-shop.myshopify.com"
EXAMPLES = PROJECT_ROOT / "examples"
# (status, JSON answer) for one signed POST to a path of the service.
Poster = Callable[[str, bytes, dict[str, str]], tuple[int, dict[str, Any]]]


@dataclass(frozen=True)
class Post:
    path: str
    body: dict[str, Any]
    topic: str | None = None  # Shopify's topic header; the standard format names it in the body
    repeat: bool = False  # deliver the same webhook twice, as storefronts do when they retry


@dataclass(frozen=True)
class Journey:
    buyer: str
    shop: str
    number: str
    posts: tuple[Post, ...]


def demo_shops(svc: Services) -> tuple[Shop, Shop]:
    """The demo shops, made on first use with fresh secrets that are never shown."""
    with svc.sessions.begin() as session:
        made = []
        for slug, platform, secret, domain in (
            ("demo", Platform.SHOPIFY, secrets.token_urlsafe(32), SHOPIFY_DOMAIN),
            (
                "demo-world",
                Platform.STANDARD,
                "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
                None,
            ),
        ):
            shop = session.scalar(select(Shop).where(Shop.slug == slug))
            if shop is None:
                new = shops.NewShop(
                    slug=slug,
                    platform=platform,
                    secret=secret,
                    sender="Demo Shop <orders@demo-shop.example>",
                    domain=domain,
                    support_email="help@demo-shop.example",
                    timezone="Europe/Berlin",
                    return_policy_url="https://demo-shop.example/policies/refund-policy",
                )
                shop = shops.add(session, new, svc.clock.now())
            made.append(shop)
        session.flush()
        session.expunge_all()
    return made[0], made[1]


def _example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    return loaded


def _stamp(instant: datetime) -> str:
    return instant.isoformat(timespec="seconds")


def shopify_journey(now: datetime, locale: str) -> Journey:
    """A German buyer (or any --locale) in Berlin, DHL Express from Shenzhen: out for delivery."""
    serial = secrets.randbelow(9000) + 1000
    order = _example("shopify-order.json")
    order_id = secrets.randbelow(10**12) + 10**12
    order.update(id=order_id, name=f"#D{serial}", order_number=serial, customer_locale=locale)
    order["created_at"] = _stamp(now - timedelta(days=4))
    fulfilment = _example("shopify-fulfillment.json")
    fulfilment_id = secrets.randbelow(10**12) + 10**12
    fulfilment.update(
        id=fulfilment_id,
        order_id=order_id,
        created_at=_stamp(now - timedelta(days=3)),
        updated_at=_stamp(now - timedelta(days=3)),
    )

    def scan(status: str, ago: timedelta, city: str, country: str) -> dict[str, Any]:
        event = _example("shopify-fulfillment-event.json")
        event.update(
            id=secrets.randbelow(10**12),
            fulfillment_id=fulfilment_id,
            order_id=order_id,
            status=status,
            happened_at=_stamp(now - ago),
            created_at=_stamp(now - ago),
            city=city,
            country=country,
        )
        return event

    return Journey(
        buyer=f"Anna Schmidt, Berlin ({locale})",
        shop="demo",
        number=order["name"],
        posts=(
            Post("/webhooks/shopify", order, "orders/create"),
            Post("/webhooks/shopify", fulfilment, "fulfillments/create"),
            Post(
                "/webhooks/shopify",
                scan("in_transit", timedelta(days=2), "Leipzig", "Germany"),
                "fulfillment_events/create",
            ),
            Post(
                "/webhooks/shopify",
                scan("out_for_delivery", timedelta(minutes=40), "Berlin", "Germany"),
                "fulfillment_events/create",
            ),
        ),
    )


def _standard_order(now: datetime, **buyer: Any) -> dict[str, Any]:
    order: dict[str, Any] = _example("standard-order.json")["data"]["order"]
    serial = secrets.randbelow(9000) + 1000
    order.update(id=f"W-{serial}-{secrets.token_hex(3)}", number=f"W{serial}")
    order["placed_at"] = _stamp(now - timedelta(days=6))
    order.update(buyer.pop("order", {}))
    order["buyer"].update(buyer)
    return order


def _standard(event_type: str, order: dict[str, Any], now: datetime) -> Post:
    return Post(
        "/webhooks/standard/demo-world",
        {"type": event_type, "timestamp": _stamp(now), "data": {"order": order}},
    )


def _parcel(order: dict[str, Any], now: datetime, **shipment: Any) -> Post:
    ago: timedelta = shipment.pop("ago")
    body = _example("standard-shipment.json")
    body["timestamp"] = _stamp(now)
    body["data"]["order"] = {"id": order["id"], "number": order["number"]}
    expected = {
        "earliest": (now + timedelta(days=1)).date().isoformat(),
        "latest": (now + timedelta(days=3)).date().isoformat(),
    }
    body["data"]["shipment"].update(
        id=f"{order['id']}-1",
        occurred_at=_stamp(now - ago),
        expected_delivery=expected,
        **shipment,
    )
    return Post(
        "/webhooks/standard/demo-world", body, repeat=bool(shipment.get("status") == "delivered")
    )


def world_journeys(now: datetime) -> list[Journey]:
    """Riyadh (Arabic, SAR) held at customs; Tokyo (Japanese, JPY) delivered with a late scan;
    São Paulo (Portuguese, BRL) cancelled before it shipped."""
    riyadh = _standard_order(
        now,
        email="layla@example.sa",
        name="ليلى الحربي",
        locale="ar-SA",
        timezone=None,
        order={
            "currency": "SAR",
            "subtotal": "1249.00",
            "shipping": "75.00",
            "tax": "198.60",
            "total": "1522.60",
            "line_items": [{"title": "Brass desk lamp", "quantity": 2, "unit_price": "624.50"}],
            "shipping_address": {
                "name": "ليلى الحربي",
                "lines": ["طريق الملك فهد 4021"],
                "city": "الرياض",
                "postal_code": "12271",
                "country_code": "SA",
            },
        },
    )
    tokyo = _standard_order(
        now,
        email="haruka@example.jp",
        name="佐藤 陽菜",
        locale="ja-JP",
        timezone=None,
        accepts_marketing=True,  # so the delivery survey is planned, not suppressed
        order={
            "currency": "JPY",
            "subtotal": "18400",
            "shipping": "1200",
            "tax": "0",
            "total": "19600",
            "line_items": [{"title": "Linen lampshade", "quantity": 2, "unit_price": "9200"}],
            "shipping_address": {
                "name": "佐藤 陽菜",
                "lines": ["渋谷区神南1-2-3"],
                "city": "東京都",
                "postal_code": "150-0041",
                "country_code": "JP",
            },
        },
    )
    sao_paulo = _standard_order(
        now,
        email="lucas@example.com.br",
        name="Lucas Oliveira",
        locale="pt",
        timezone=None,
        order={
            "currency": "BRL",
            "total": "389.90",
            "line_items": [{"title": "Wool scarf", "quantity": 1, "unit_price": "389.90"}],
            "shipping_address": {
                "name": "Lucas Oliveira",
                "lines": ["Rua Augusta 1500"],
                "city": "São Paulo",
                "region_code": "SP",
                "postal_code": "01304-001",
                "country_code": "BR",
            },
            "cancel_reason": "customer",
        },
    )
    aramex = {
        "carrier": "Aramex",
        "tracking_number": "AX3346912027",
        "tracking_url": "https://www.aramex.com/track/results?ShipmentNumber=AX3346912027",
        "origin_country": "DE",
        "destination_country": "SA",
    }
    yamato = {
        "carrier": "Yamato Transport",
        "tracking_number": "4829-1133-0551",
        "tracking_url": None,
        "origin_country": "DE",
        "destination_country": "JP",
    }
    return [
        Journey(
            buyer="Layla Al-Harbi, Riyadh (ar-SA)",
            shop="demo-world",
            number=riyadh["number"],
            posts=(
                _standard("order.paid", riyadh, now),
                _parcel(riyadh, now, status="shipped", ago=timedelta(days=5), **aramex),
                _parcel(
                    riyadh,
                    now,
                    status="departed_origin",
                    ago=timedelta(days=4),
                    **aramex,
                    location="Leipzig",
                    country_code="DE",
                ),
                _parcel(
                    riyadh,
                    now,
                    status="arrived_destination",
                    ago=timedelta(days=2),
                    **aramex,
                    location="Riyadh",
                    country_code="SA",
                ),
                _parcel(
                    riyadh,
                    now,
                    status="customs_action",
                    ago=timedelta(hours=20),
                    **aramex,
                    exception="customs_held",
                    location="Riyadh",
                    country_code="SA",
                    note="Duties payable by consignee",
                ),
            ),
        ),
        Journey(
            buyer="Haruka Sato, Tokyo (ja-JP)",
            shop="demo-world",
            number=tokyo["number"],
            posts=(
                _standard("order.paid", tokyo, now),
                _parcel(tokyo, now, status="shipped", ago=timedelta(days=4), **yamato),
                _parcel(
                    tokyo,
                    now,
                    status="delivered",
                    ago=timedelta(hours=2),
                    **yamato,
                    location="Shibuya",
                    country_code="JP",
                ),
                _parcel(
                    tokyo,
                    now,
                    status="out_for_delivery",
                    ago=timedelta(hours=5),
                    **yamato,
                    location="Shibuya",
                    country_code="JP",
                ),
            ),
        ),
        Journey(
            buyer="Lucas Oliveira, São Paulo (pt)",
            shop="demo-world",
            number=sao_paulo["number"],
            posts=(
                _standard("order.paid", sao_paulo, now),
                _standard("order.cancelled", sao_paulo, now),
            ),
        ),
    ]


def signed(post: Post, shopify: Shop, world: Shop, now: datetime) -> tuple[bytes, dict[str, str]]:
    """The body and headers the storefront would send, signed with the shop's own secret."""
    body = json.dumps(post.body, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json"}
    if post.topic is not None:
        digest = hmac.new(shopify.webhook_secrets[0].encode(), body, hashlib.sha256).digest()
        headers |= {
            "X-Shopify-Shop-Domain": SHOPIFY_DOMAIN,
            "X-Shopify-Topic": post.topic,
            "X-Shopify-Webhook-Id": secrets.token_hex(16),
            "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        }
    else:
        msg_id = f"msg_{secrets.token_hex(12)}"
        headers |= {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(world.webhook_secrets[0]).sign(msg_id, now, body.decode()),
        }
    return body, headers


def in_process(app: Flask) -> Poster:
    client = app.test_client()

    def post(path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        response = client.post(path, data=body, headers=headers)
        return response.status_code, response.get_json(silent=True) or {}

    return post


def over_http(base_url: str) -> Poster:
    session = requests.Session()

    def post(path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        response = session.post(base_url.rstrip("/") + path, data=body, headers=headers, timeout=10)
        try:
            answer = response.json()
        except ValueError:
            answer = {"detail": response.text[:200]}
        return response.status_code, answer

    return post


def run(
    svc: Services,
    post: Poster,
    locale: str,
    dispatch: Callable[[], object],
    pause: float = 0.0,
) -> list[tuple[Journey, list[str]]]:
    """Post every journey, dispatching between posts; returns each journey with its answers.

    `pause` leaves a running service's own dispatcher time to send between posts, as days
    between carrier scans would.
    """
    shopify, world = demo_shops(svc)
    now = svc.clock.now()
    played = []
    for journey in [shopify_journey(now, locale), *world_journeys(now)]:
        answers = []
        for item in journey.posts:
            body, headers = signed(item, shopify, world, svc.clock.now())
            for _ in range(2 if item.repeat else 1):
                status, answer = post(item.path, body, headers)
                if status >= 300:
                    raise RuntimeError(f"{item.path} answered {status}: {answer}")
                answers.append(f"{answer.get('status')}: {answer.get('detail')}")
            dispatch()
            time.sleep(pause)
        played.append((journey, answers))
    return played
