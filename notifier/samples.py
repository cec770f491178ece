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

# A lamp from Shenzhen to Berlin with DHL: every milestone a buyer may hear of, in carrier time.
SAMPLE_JOURNEY: list[dict[str, Any]] = [
    {"milestone": "shipped", "at": "2026-11-24T06:30:00+00:00", "location": "Shenzhen",
     "country_code": "CN"},
    {"milestone": "departed_origin", "at": "2026-11-25T15:10:00+00:00", "location": "Shenzhen",
     "country_code": "CN"},
    {"milestone": "arrived_destination", "at": "2026-11-28T05:40:00+00:00", "location": "Leipzig",
     "country_code": "DE"},
    {"milestone": "customs_action", "at": "2026-11-28T11:05:00+00:00", "location": "Leipzig",
     "country_code": "DE"},
    {"milestone": "out_for_delivery", "at": "2026-12-01T06:05:00+00:00", "location": "Berlin",
     "country_code": "DE"},
    {"milestone": "delivery_failed", "at": "2026-12-01T12:40:00+00:00", "location": "Berlin",
     "country_code": "DE"},
    {"milestone": "ready_for_pickup", "at": "2026-12-01T16:20:00+00:00",
     "location": "DHL Packstation 105, Linienstraße 40, 10119 Berlin", "country_code": "DE"},
    {"milestone": "delivered", "at": "2026-12-02T10:15:00+00:00", "location": "Berlin",
     "country_code": "DE"},
]  # fmt: skip


def _journey(*milestones: str) -> list[dict[str, Any]]:
    return [
        {**step, "exception": None, "note": None}
        for step in SAMPLE_JOURNEY
        if step["milestone"] in milestones
    ]


def shipment_sample(journey: list[dict[str, Any]], **news: Any) -> dict[str, Any]:
    """The sample order with its parcel: the journey so far, and the news (by default its last)."""
    return {
        **SAMPLE_ORDER,
        "shipment": {
            "carrier": "DHL",
            "tracking_number": "JD014600006281230704",
            "tracking_url": "https://www.dhl.com/de-en/home/tracking.html?tracking-id=JD014600006281230704",
            "expected": {"earliest": "2026-12-01", "latest": "2026-12-04"},
            "journey": journey,
            "last_heard_at": journey[-1]["at"],
            "parcel_count": 1,
        },
        "news": {**journey[-1], **news},
    }


# As notifier.shipments plans it: counted from the carrier's last news, sent if silence follows.
SAMPLE_STALLED = shipment_sample(
    _journey("shipped", "departed_origin"),
    milestone="delayed",
    at="2026-11-25T15:10:00+00:00",
    location=None,
    country_code=None,
    stalled=True,
    days=8,
)

ACROSS = ("shipped", "departed_origin", "arrived_destination")  # the border crossed

# As the dispatcher signs them when the email is built; these tokens are placeholders.
SAMPLE_SURVEY_LINKS = {
    "scores": {
        str(n): f"https://notifier.example/b/survey/SAMPLE-TOKEN?score={n}" for n in range(1, 6)
    },
    "unsubscribe": "https://notifier.example/b/unsubscribe/SAMPLE-TOKEN",
    "unsubscribe_mailto": "mailto:help@lumen.example?subject=unsubscribe%20SAMPLE-TOKEN",
}

SAMPLES: dict[str, dict[str, Any]] = {
    "order_confirmation": SAMPLE_ORDER,
    "order_cancelled": {**SAMPLE_ORDER, "cancellation": {"at": "2026-11-23T14:02:00+00:00"}},
    "shipment_shipped": shipment_sample(_journey("shipped")),
    "departed_origin": shipment_sample(_journey("shipped", "departed_origin")),
    "arrived_destination": shipment_sample(_journey(*ACROSS)),
    "customs_action": shipment_sample(_journey(*ACROSS, "customs_action")),
    "out_for_delivery": shipment_sample(_journey(*ACROSS, "out_for_delivery")),
    "delivery_failed": shipment_sample(
        _journey(*ACROSS, "out_for_delivery", "delivery_failed"),
        note="Recipient not at home. Notification card left.",
    ),
    "ready_for_pickup": shipment_sample(
        _journey(*ACROSS, "out_for_delivery", "delivery_failed", "ready_for_pickup")
    ),
    "delivered": shipment_sample(_journey(*ACROSS, "out_for_delivery", "delivered")),
    "shipment_exception": shipment_sample(
        _journey("shipped", "departed_origin"),
        milestone="exception",
        at="2026-11-30T09:45:00+00:00",
        location="Frankfurt",
        country_code="DE",
        exception="lost",
        note="Shipment could not be located.",
    ),
    "shipment_delayed": SAMPLE_STALLED,
    "delivery_survey": {
        **SAMPLE_ORDER,
        "survey": {"delivered_at": "2026-12-02T10:15:00+00:00"},
        "links": SAMPLE_SURVEY_LINKS,
    },
    "survey_alert": {
        **SAMPLE_ORDER,
        "answer": {
            "score": 2,
            "comment": "The lamp arrived with a dented shade, and the box was open.",
            "at": "2026-12-05T18:42:00+00:00",
            "buyer_email": "anna.schmidt@example.de",
        },
        "console_url": "https://notifier.example/console/",
    },
}
