"""Realistic sample contexts, so a reviewer can read any kind in any locale without an order."""

from __future__ import annotations

from typing import Any

SAMPLE_ORDER: dict[str, Any] = {
    "shop": {
        "name": "Lumen & Co.",
        "support_email": "help@lumen.example",
        "return_policy_url": "https://lumen.example/policies/refund-policy",
    },
    "buyer": {"name": "Anna Schmidt"},
    "order": {
        "number": "#1001",
        "placed_at": "2026-11-23T01:15:00+00:00",
        "currency": "EUR",
        "subtotal": "1199.90",
        "discount": "20.00",
        "shipping": "39.00",
        "tax": "15.66",
        "total": "1234.56",
        "status_url": "https://lumen.example/orders/4f1c/status",
        "item_count": 3,
        "line_items": [
            {
                "title": "Brass desk lamp",
                "variant": "Matte brass / EU plug",
                "sku": "LMP-BR-EU",
                "quantity": 2,
                "unit_price": "549.95",
                "line_total": "1099.90",
            },
            {
                "title": "Linen lampshade",
                "variant": None,
                "sku": "SHD-LN",
                "quantity": 1,
                "unit_price": "100.00",
                "line_total": "100.00",
            },
        ],
    },
    "shipping_address": {
        "name": "Anna Schmidt",
        "lines": ["Torstraße 12", "3. OG"],
        "city": "Berlin",
        "region": None,
        "region_code": None,
        "postal_code": "10119",
        "country": "Germany",
        "country_code": "DE",
    },
}

SAMPLES: dict[str, dict[str, Any]] = {"order_confirmation": SAMPLE_ORDER}
