"""The message kinds: each entry states its policy and builds its template context, nothing more.

Rendering, queueing and sending live elsewhere and are the same for every kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from email.utils import parseaddr
from typing import Any

from notifier.models import Order, Shop

Context = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    name: str  # also its template folder and its policy's key in notifier.policies
    transactional: bool
    build_context: Callable[[Order, Shop], Context]


def shop_context(shop: Shop) -> Context:
    display_name, address = parseaddr(shop.sender)
    return {
        "name": display_name or shop.slug,
        "support_email": shop.support_email or address,
        "return_policy_url": shop.return_policy_url,
    }


def _positive(amount: str | None) -> str | None:
    return amount if amount is not None and Decimal(amount) > 0 else None


def order_context(order: Order, shop: Shop) -> Context:
    """Everything a template may say about an order, as plain JSON (it is stored with the message)."""
    details = order.details
    return {
        "shop": shop_context(shop),
        "buyer": {"name": order.buyer_name},
        "order": {
            "number": order.number,
            "placed_at": order.placed_at.isoformat(),
            **{
                key: details.get(key)
                for key in ("currency", "total", "subtotal", "shipping", "tax")
            },
            "discount": _positive(details.get("discount")),
            "status_url": details.get("status_url"),
            "line_items": details.get("line_items", []),
            "item_count": sum(item["quantity"] for item in details.get("line_items", [])),
        },
        "shipping_address": details.get("shipping_address"),
    }


ORDER_CONFIRMATION = Kind(
    name="order_confirmation",
    transactional=True,
    build_context=order_context,
)

# Kinds whose templates exist; journeys may only plan these.
KINDS: dict[str, Kind] = {kind.name: kind for kind in (ORDER_CONFIRMATION,)}
