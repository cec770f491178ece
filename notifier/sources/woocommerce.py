"""WooCommerce webhooks: orders and their shipment-tracking meta, signed with X-WC-Webhook-Signature.

WooCommerce signs the raw body (base64 HMAC-SHA256 with the webhook's secret) and sends the
order as its REST API (v3) shows it at delivery time. It sends no event id and no timestamp
header, and it never retries a failed delivery. When a webhook is first activated it POSTs an
unsigned ping (`webhook_id=N`, form-encoded, no X-WC-* headers) and shows the merchant an error
unless that gets exactly 200.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlsplit

from pydantic import ValidationError

from notifier.events import (
    Address,
    Buyer,
    Event,
    LineItem,
    Milestone,
    OrderCancelled,
    OrderPaid,
    OrderPlaced,
    OrderRef,
    OrderSnapshot,
    Reached,
    ShipmentUpdated,
    Translation,
)
from notifier.problems import Problem
from notifier.sources import (
    Envelope,
    Headers,
    carriers,
    headers_of_record,
    parse,
    required_header,
    schema_problem,
)
from notifier.sources.woocommerce_payload import (
    TRACKING_META as TRACKING_META,  # the meta key tracking plugins write
)
from notifier.sources.woocommerce_payload import (
    WooAddress,
    WooCommerceOrder,
    WooLanguageMeta,
    WooLineItem,
    WooTrackingItem,
    WooTrackingMeta,
)

NAME = "woocommerce"
RECORDED_HEADERS = (
    "X-WC-Webhook-Source",
    "X-WC-Webhook-Topic",
    "X-WC-Webhook-Resource",
    "X-WC-Webhook-Event",
    "X-WC-Webhook-ID",
    "X-WC-Webhook-Delivery-ID",
    "X-WC-Webhook-Signature",
    "User-Agent",
)
PING = re.compile(rb"webhook_id=(\d{1,20})")
# Topics whose body is the whole order; `order.deleted` (trashing) sends only {"id": N}.
ORDER_TOPICS = ("order.created", "order.updated", "order.restored")
IGNORED_TOPICS = {
    "order.deleted": "the order was moved to the trash; the delivery carries only its id",
}

# What each order status means for the buyer. Both order topics map by status, since WooCommerce
# builds the body when it delivers: an `order.created` may already show `processing`.
PAID = frozenset({"processing", "completed"})
# Order statuses the shipment-tracking plugins add (Advanced Shipment Tracking, TrackShip): paid.
PAID_AND_SHIPPING = frozenset({"shipped", "partial-shipped", "delivered", "updated-tracking"})
PLACED = frozenset({"on-hold"})  # awaiting a manual payment (bank transfer, cheque)
CANCELLED = "cancelled"
IGNORED_STATUSES = {
    # Checkout created the order and sent the buyer to the payment provider; most such orders
    # are paid within minutes (then `processing`), the abandoned ones end `cancelled`.
    # WooCommerce itself writes to the buyer only once the order is on-hold or processing.
    "pending": "awaiting payment: the buyer has not finished checking out",
    "failed": "the payment failed or was declined",
    "refunded": "the order was refunded; refunds are not news this service sends",
    "trash": "the order is in the trash",
    "checkout-draft": "a checkout in progress, not yet an order",
}


def verify(headers: Headers, body: bytes, secrets: Sequence[str]) -> Envelope:
    """Recognise the creation ping, else check the HMAC against each of the shop's secrets."""
    ping = _ping(headers, body)
    if ping is not None:
        return ping
    given = headers.get("X-WC-Webhook-Signature", "").strip()
    if not given:
        raise Problem(401, "Missing signature", "The X-WC-Webhook-Signature header is required.")
    for position, secret in enumerate(secrets, start=1):
        digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        if hmac.compare_digest(base64.b64encode(digest), given.encode("ascii", "replace")):
            return Envelope(
                delivery_id=_delivery_id(headers, body),
                event_id=None,
                topic=required_header(headers, "X-WC-Webhook-Topic", max_length=100),
                occurred_at=None,
                headers=headers_of_record(headers, RECORDED_HEADERS),
                verification=f"hmac-sha256 valid (secret {position} of {len(secrets)})",
            )
    raise Problem(
        401, "Invalid signature", "X-WC-Webhook-Signature does not match the body for this shop."
    )


def _ping(headers: Headers, body: bytes) -> Envelope | None:
    """WooCommerce's ping on saving a webhook: unsigned, so it is answered but never stored."""
    match = PING.fullmatch(body.strip())
    if match is None or "X-WC-Webhook-Topic" in headers:
        return None
    return Envelope(
        delivery_id=f"ping-{match.group(1).decode()}",
        event_id=None,
        topic=None,
        occurred_at=None,
        headers=headers_of_record(headers, RECORDED_HEADERS),
        verification="unsigned ping; nothing stored",
    )


def _delivery_id(headers: Headers, body: bytes) -> str:
    """WooCommerce's delivery id plus a digest of the body.

    WooCommerce derives the id from the webhook id and the current second
    (`wp_hash($id . strtotime('now'))`), so two orders delivered by one webhook within the same
    second share it. The digest tells them apart; a true replay still matches itself.
    """
    given = required_header(headers, "X-WC-Webhook-Delivery-ID", max_length=128)
    return f"{given}:{hashlib.sha256(body).hexdigest()[:16]}"


# --- translation ----------------------------------------------------------------------------


def translate(envelope: Envelope, body: bytes) -> Translation:
    topic = envelope.topic or ""
    if topic not in ORDER_TOPICS:
        why = IGNORED_TOPICS.get(topic, "only order topics are handled")
        return Translation(topic=topic, ignored_because=f"topic {topic!r} is not handled: {why}")
    try:
        order = parse(WooCommerceOrder, body)
    except ValidationError as error:
        raise schema_problem(error) from error
    status = order.status.lower()
    if status in IGNORED_STATUSES:
        return Translation(
            topic=topic, ignored_because=f"order status {status!r}: {IGNORED_STATUSES[status]}"
        )
    snapshot = _snapshot(order)
    occurred_at = order.date_modified_gmt or order.date_created_gmt
    if status == CANCELLED:
        # Whatever the tracking meta says, a cancelled order sends no shipping news.
        return Translation(topic=topic, events=(OrderCancelled(snapshot, occurred_at),))
    event: Event
    if status in PAID or status in PAID_AND_SHIPPING or order.date_paid_gmt is not None:
        event = OrderPaid(snapshot, occurred_at)
    elif status in PLACED:
        event = OrderPlaced(snapshot, occurred_at)
    else:
        return Translation(topic=topic, ignored_because=f"order status {status!r} is not handled")
    return Translation(topic=topic, events=(event, *_shipments(order)))


def _cents(amount: Decimal) -> Decimal:
    """At most four decimal places, like every other amount (an exact quotient stays as it is)."""
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -4 <= exponent <= 0:
        return amount
    places = Decimal(1) if isinstance(exponent, int) and exponent > 0 else Decimal("0.0001")
    return amount.quantize(places, rounding=ROUND_HALF_UP)


def _with_tax(amount: Decimal | None, tax: Decimal | None, included: bool) -> Decimal | None:
    """Amounts as the buyer saw them: gross where the shop's prices include tax."""
    if amount is None:
        return None
    return amount + (tax or Decimal(0)) if included else amount


def _unit_price(item: WooLineItem, included: bool) -> Decimal:
    """Before discounts, as WooCommerce's own emails list it; `price` is after them."""
    line = _with_tax(item.subtotal, item.subtotal_tax, included)
    if line is None or item.quantity == 0:
        return _cents(item.price)
    return _cents(line / item.quantity)


def _snapshot(order: WooCommerceOrder) -> OrderSnapshot:
    included = order.prices_include_tax
    items = tuple(_line_item(item, included) for item in order.line_items)
    subtotals = [_with_tax(item.subtotal, item.subtotal_tax, included) for item in order.line_items]
    return OrderSnapshot(
        external_id=order.id,
        number=_display_number(order.number),
        placed_at=order.date_created_gmt,
        buyer=Buyer(
            email=order.billing.email if order.billing else None,
            name=_buyer_name(order),
            locale_tag=_locale(order),
        ),
        currency=order.currency.upper(),
        total=order.total,
        subtotal=sum((s for s in subtotals if s is not None), Decimal(0)) if items else None,
        shipping=_with_tax(order.shipping_total, order.shipping_tax, included),
        tax=order.total_tax,
        discount=_with_tax(order.discount_total, order.discount_tax, included),
        line_items=items,
        shipping_address=_address(order.shipping),
        status_url=None,  # WooCommerce's order pages need a login or the order key
    )


def _line_item(item: WooLineItem, included: bool) -> LineItem:
    """A variation is named "Product - Attribute, Attribute"; its parent_name splits it."""
    name = html.unescape(item.name)
    parent = html.unescape(item.parent_name) if item.parent_name else None
    title, variant = name, None
    if parent and name.startswith(f"{parent} - ") and len(name) > len(parent) + 3:
        title, variant = parent, name[len(parent) + 3 :]
    return LineItem(title, item.quantity, _unit_price(item, included), variant, item.sku)


def _join(*parts: str | None) -> str | None:
    joined = " ".join(part for part in parts if part)
    return joined[:200] or None


def _buyer_name(order: WooCommerceOrder) -> str | None:
    for person in (order.shipping, order.billing):
        if person and (name := _join(person.first_name, person.last_name)):
            return name
    return None


def _locale(order: WooCommerceOrder) -> str | None:
    for entry in order.meta_data:
        if isinstance(entry, WooLanguageMeta) and entry.value:
            return entry.value
    return None


REGION_CODE = re.compile(r"[A-Z0-9-]{1,6}")


def _address(address: WooAddress | None) -> Address | None:
    """WooCommerce's `state` is a code where it lists the country's states, else free text."""
    if address is None or not (address.address_1 or address.city or address.country):
        return None
    is_code = bool(address.state and REGION_CODE.fullmatch(address.state))
    return Address(
        name=_join(address.first_name, address.last_name) or address.company,
        lines=tuple(line for line in (address.address_1, address.address_2) if line),
        city=address.city,
        region=None if is_code else address.state,
        region_code=address.state if is_code else None,
        postal_code=address.postcode,
        country=None,
        country_code=address.country.upper() if address.country else None,
    )


# --- shipment tracking meta -----------------------------------------------------------------


def _tracking_items(order: WooCommerceOrder) -> Iterable[WooTrackingItem]:
    for entry in order.meta_data:
        if isinstance(entry, WooTrackingMeta):
            yield from entry.value


def _shipments(order: WooCommerceOrder) -> list[ShipmentUpdated]:
    """One ShipmentUpdated per parcel the tracking plugin lists; each says it was shipped.

    The plugins keep a ship *day* (midnight UTC of the date picked). Without one, the order's
    completion (else creation) stands in: a time that does not move with every later edit, so
    the news never looks newer than a carrier's.
    """
    fallback = order.date_completed_gmt or order.date_created_gmt
    destination = next(
        (a.country.upper() for a in (order.shipping, order.billing) if a and a.country), None
    )
    seen: set[str] = set()
    news = []
    for item in _tracking_items(order):
        shipment_id = item.tracking_id or item.tracking_number
        if shipment_id is None or shipment_id in seen:
            continue  # nothing names the parcel, or the plugin listed it twice
        seen.add(shipment_id)
        shipped_at = item.date_shipped or fallback
        news.append(
            ShipmentUpdated(
                order=OrderRef(external_id=order.id, number=_display_number(order.number)),
                shipment_id=shipment_id,
                as_of=shipped_at,
                reached=(Reached(Milestone.SHIPPED, shipped_at),),
                carrier=_carrier(item),
                tracking_number=item.tracking_number,
                tracking_url=_tracking_url(item),
                destination_country=destination,
            )
        )
    return news


def _display_number(number: str) -> str:
    """The number as WooCommerce shows it to the buyer ("Order #1234")."""
    return number if number.startswith("#") else f"#{number}"


def _carrier(item: WooTrackingItem) -> str | None:
    """The plugin's own rule: a custom provider name wins over the slug."""
    if item.custom_tracking_provider:
        return item.custom_tracking_provider
    slug = (item.tracking_provider or "").lower()
    if not slug:
        return None
    return carriers.name(slug)


def _tracking_url(item: WooTrackingItem) -> str | None:
    """The link the merchant typed, else the carrier's page; never a non-web link in an email."""
    if item.custom_tracking_link:
        parts = urlsplit(item.custom_tracking_link)
        return (
            item.custom_tracking_link
            if parts.scheme in ("http", "https") and parts.netloc
            else None
        )
    if item.custom_tracking_provider or not item.tracking_number:
        return None
    return carriers.tracking_link(item.tracking_provider or "", item.tracking_number)
