"""AfterShip tracking webhooks: tag, subtag and checkpoints mapped into canonical milestones.

AfterShip signs the raw body (`aftership-hmac-sha256`) but no timestamp, so a replay is refused
by its `event_id` (deduplicated downstream) and by the age of its `ts`. Every delivery carries the
whole tracking, checkpoints included: the journey is rebuilt from them each time, in the
carrier's time order, and its last milestone is the news.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, TypeVar
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, ValidationError

from notifier.events import (
    DateRange,
    OrderRef,
    ShipmentUpdated,
    Translation,
)
from notifier.problems import Problem
from notifier.sources import (
    EARLIEST_YEAR,
    LATEST_YEAR,
    Envelope,
    Headers,
    Payload,
    carriers,
    headers_of_record,
    parse,
    schema_problem,
)
from notifier.sources.aftership_steps import Route, alpha2, journey

NAME = "aftership"
SIGNATURE_HEADER = "aftership-hmac-sha256"
RECORDED_HEADERS = (SIGNATURE_HEADER, "as-webhook-version", "User-Agent", "Content-Type")
# `ts` is when the event occurred, and a retry keeps it; a few minutes ahead of our clock is
# skew, more is a forgery or a broken clock.
FUTURE_SKEW = timedelta(minutes=5)
LATEST_TS = int(datetime(LATEST_YEAR + 1, 1, 1, tzinfo=UTC).timestamp()) - 1
TRACKING_UPDATE, EDD_REVISE = "tracking_update", "edd_revise"
IGNORED_EVENTS = {
    "tracking_pending_time": "a tracking still pending after the shop's threshold is news for "
    "the seller, not the buyer",
}
MAX_CHECKPOINTS = 500
UNRECOGNIZED_SLUG = "unrecognized"  # AfterShip could not tell the carrier


# --- verification -------------------------------------------------------------------------


def verify(
    headers: Headers, body: bytes, secrets: Sequence[str], now: datetime, max_age: timedelta
) -> Envelope:
    """Check the HMAC against each secret, then the delivery's id and age from the signed body.

    The signature covers no timestamp, so `ts` (inside the signed body) is held against the
    injected clock: older than `max_age`, or more than FUTURE_SKEW ahead, is refused.
    """
    given = headers.get(SIGNATURE_HEADER, "").strip()
    if not given:
        raise Problem(401, "Missing signature", f"The {SIGNATURE_HEADER} header is required.")
    position = _signed_with(given, body, secrets)
    if position is None:
        raise Problem(
            401,
            "Invalid signature",
            f"{SIGNATURE_HEADER} does not match the body for this shop's AfterShip secret.",
        )
    head = _parse(_Head, body)
    occurred_at = datetime.fromtimestamp(head.ts, UTC)
    _check_age(head.ts, occurred_at, now, max_age)
    return Envelope(
        delivery_id=head.event_id,
        event_id=head.event_id,
        topic=head.event,
        occurred_at=occurred_at,
        headers=headers_of_record(headers, RECORDED_HEADERS),
        verification=f"hmac-sha256 valid (secret {position} of {len(secrets)})",
    )


def _signed_with(given: str, body: bytes, secrets: Sequence[str]) -> int | None:
    """Which secret (1-based) signed the body; several are valid while one is being rotated."""
    offered = given.encode("ascii", "replace")
    for position, secret in enumerate(secrets, start=1):
        digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        if hmac.compare_digest(base64.b64encode(digest), offered):
            return position
    return None


def _check_age(ts: int, occurred_at: datetime, now: datetime, max_age: timedelta) -> None:
    age = now - occurred_at
    if age > max_age:
        raise Problem(
            401,
            "Stale delivery",
            f"ts {ts} ({occurred_at.isoformat()}) is {_span(age)} old; AfterShip signs no "
            f"timestamp, so a delivery older than {_span(max_age)} is refused as a possible replay.",
        )
    if -age > FUTURE_SKEW:
        raise Problem(
            401,
            "Delivery from the future",
            f"ts {ts} ({occurred_at.isoformat()}) is {_span(-age)} ahead of this server's clock; "
            f"at most {_span(FUTURE_SKEW)} of clock skew is accepted.",
        )


def _span(delta: timedelta) -> str:
    return str(timedelta(seconds=int(delta.total_seconds())))


# --- the payload --------------------------------------------------------------------------


def _blank_to_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


def _date_of(value: object) -> object:
    """An estimated date as AfterShip writes it: YYYY-MM-DD, or a date-time whose date counts."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("must be a date (YYYY-MM-DD) or an ISO 8601 date-time")
    text = value.strip()
    try:
        day = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text).date()
    except ValueError as error:
        raise ValueError("must be a date (YYYY-MM-DD) or an ISO 8601 date-time") from error
    if not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
        raise ValueError(f"must lie between {EARLIEST_YEAR} and {LATEST_YEAR}")
    return day


def _list_or_empty(value: object) -> object:
    return [] if value is None else value


Text200 = Annotated[Annotated[str, Field(max_length=200)] | None, BeforeValidator(_blank_to_none)]
Text500 = Annotated[Annotated[str, Field(max_length=500)] | None, BeforeValidator(_blank_to_none)]
Text2000 = Annotated[Annotated[str, Field(max_length=2000)] | None, BeforeValidator(_blank_to_none)]
Code = Annotated[
    Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,40}$")] | None, BeforeValidator(_blank_to_none)
]
Iso3 = Annotated[
    Annotated[str, Field(pattern=r"^[A-Za-z]{3}$")] | None, BeforeValidator(_blank_to_none)
]
OrderKey = Annotated[Annotated[str, Field(max_length=64)] | None, BeforeValidator(_blank_to_none)]
EstimatedDate = Annotated[date | None, BeforeValidator(_date_of)]


class _Head(Payload):
    """What every AfterShip delivery says about itself, read once the signature holds."""

    event: str = Field(min_length=1, max_length=100)
    event_id: str = Field(pattern=r"^[!-~]{1,200}$", description="UUID v4")
    ts: int = Field(strict=True, ge=0, le=LATEST_TS, description="Unix seconds, UTC")


class _EstimatedDelivery(Payload):
    """`aftership_estimated_delivery_date` and `courier_estimated_delivery_date`."""

    estimated_delivery_date: EstimatedDate = None
    estimated_delivery_date_min: EstimatedDate = None
    estimated_delivery_date_max: EstimatedDate = None


class _DatetimeEstimate(Payload):
    """`latest_estimated_delivery` and `custom_estimated_delivery_date`."""

    single: EstimatedDate = Field(default=None, alias="datetime")
    earliest: EstimatedDate = Field(default=None, alias="datetime_min")
    latest: EstimatedDate = Field(default=None, alias="datetime_max")


class _PromisedDelivery(Payload):
    promised_delivery_date: EstimatedDate = None
    promised_delivery_date_min: EstimatedDate = None
    promised_delivery_date_max: EstimatedDate = None


def _promised(value: object) -> object:
    """Older versions send the promised date as a bare string."""
    value = _blank_to_none(value)
    return {"promised_delivery_date": value} if isinstance(value, str) else value


class AfterShipCheckpoint(Payload):
    # The carrier's local time, with its offset when the carrier gives one (not all do).
    checkpoint_time: datetime
    tag: Code = None
    subtag: Code = None
    subtag_message: Text200 = None
    message: Text2000 = None
    location: Text500 = None
    city: Text200 = None
    state: Text200 = None
    country_region: Iso3 = None  # recent webhook versions
    country_iso3: Iso3 = None  # older ones


class AfterShipTracking(Payload):
    """The tracking object AfterShip puts in `msg`; only what a buyer's news needs is read."""

    id: Text200 = None
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    tracking_number: str = Field(min_length=1, max_length=100)
    tag: str = Field(pattern=r"^[A-Za-z0-9_]{1,40}$")
    subtag: Code = None
    subtag_message: Text200 = None
    order_id: OrderKey = None
    order_number: OrderKey = None
    origin_country_region: Iso3 = None
    origin_country_iso3: Iso3 = None
    destination_country_region: Iso3 = None
    destination_country_iso3: Iso3 = None
    courier_destination_country_region: Iso3 = None
    courier_destination_country_iso3: Iso3 = None
    courier_tracking_link: Text2000 = None
    aftership_tracking_url: Text2000 = None
    latest_estimated_delivery: _DatetimeEstimate | None = None
    courier_estimated_delivery_date: _EstimatedDelivery | None = None
    aftership_estimated_delivery_date: _EstimatedDelivery | None = None
    custom_estimated_delivery_date: _DatetimeEstimate | None = None
    expected_delivery: EstimatedDate = None  # before the estimated-delivery objects existed
    order_promised_delivery_date: Annotated[
        _PromisedDelivery | None, BeforeValidator(_promised)
    ] = None
    checkpoints: Annotated[
        list[AfterShipCheckpoint],
        Field(max_length=MAX_CHECKPOINTS),
        BeforeValidator(_list_or_empty),
    ] = Field(default_factory=list)


class AfterShipDelivery(_Head):
    msg: AfterShipTracking


PayloadT = TypeVar("PayloadT", bound=Payload)


def _parse(model: type[PayloadT], body: bytes) -> PayloadT:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Problem(400, "Malformed body", "The body is not UTF-8 text.") from error
    try:
        return parse(model, text)
    except ValidationError as error:
        raise schema_problem(error) from error


# --- translation --------------------------------------------------------------------------


def translate(envelope: Envelope, body: bytes) -> Translation:
    topic = envelope.topic or ""
    if topic not in (TRACKING_UPDATE, EDD_REVISE):
        why = IGNORED_EVENTS.get(topic, "it is not handled")
        return Translation(topic=topic, ignored_because=f"event {topic!r}: {why}")
    delivery = _parse(AfterShipDelivery, body)
    update = _shipment_update(delivery, with_journey=topic == TRACKING_UPDATE)
    if topic == EDD_REVISE and update.expected is None:
        return Translation(
            topic=topic, ignored_because="edd_revise carries no estimated delivery date"
        )
    return Translation(topic=topic, events=(update,))


def _shipment_update(delivery: AfterShipDelivery, *, with_journey: bool) -> ShipmentUpdated:
    tracking = delivery.msg
    if not tracking.order_id and not tracking.order_number:
        raise Problem(
            422,
            "No order reference",
            "msg.order_id and msg.order_number are both empty, so this tracking cannot be "
            "matched to an order; set the order ID or number on the tracking in AfterShip.",
            errors=[
                {"field": f"msg.{name}", "message": "one of them is required", "type": "missing"}
                for name in ("order_id", "order_number")
            ],
        )
    origin = alpha2(tracking.origin_country_region or tracking.origin_country_iso3)
    destination = alpha2(
        tracking.destination_country_region
        or tracking.destination_country_iso3
        or tracking.courier_destination_country_region
        or tracking.courier_destination_country_iso3
    )
    ts = datetime.fromtimestamp(delivery.ts, UTC)
    reached, as_of = journey(tracking, Route(origin, destination), ts)
    return ShipmentUpdated(
        order=OrderRef(external_id=tracking.order_id, number=tracking.order_number),
        shipment_id=tracking.id or f"{tracking.slug}:{tracking.tracking_number}",
        as_of=as_of,
        reached=reached if with_journey else (),
        carrier=carrier_name(tracking.slug),
        tracking_number=tracking.tracking_number,
        tracking_url=_web_url(tracking.aftership_tracking_url)
        or _web_url(tracking.courier_tracking_link),
        expected=_expected(tracking),
        origin_country=origin,
        destination_country=destination,
    )


def _expected(tracking: AfterShipTracking) -> DateRange | None:
    """The freshest estimate: AfterShip's latest, the carrier's, AfterShip's AI, the shop's own
    rules, the legacy field, and last what the shop promised at checkout."""
    latest, custom = tracking.latest_estimated_delivery, tracking.custom_estimated_delivery_date
    courier, predicted = (
        tracking.courier_estimated_delivery_date,
        tracking.aftership_estimated_delivery_date,
    )
    promised = tracking.order_promised_delivery_date
    sources = (
        (latest.earliest, latest.single, latest.latest) if latest else None,
        _estimate(courier),
        _estimate(predicted),
        (custom.earliest, custom.single, custom.latest) if custom else None,
        (None, tracking.expected_delivery, None),
        (
            promised.promised_delivery_date_min,
            promised.promised_delivery_date,
            promised.promised_delivery_date_max,
        )
        if promised
        else None,
    )
    for source in sources:
        days = [day for day in source or () if day is not None]
        if days:
            return DateRange(min(days), max(days))
    return None


def _estimate(
    estimate: _EstimatedDelivery | None,
) -> tuple[date | None, date | None, date | None] | None:
    if estimate is None:
        return None
    return (
        estimate.estimated_delivery_date_min,
        estimate.estimated_delivery_date,
        estimate.estimated_delivery_date_max,
    )


def _web_url(value: str | None) -> str | None:
    """A link fit for an email: http(s) with a host; anything else is left out."""
    if not value:
        return None
    parts = urlsplit(value)
    return value if parts.scheme in ("http", "https") and parts.netloc else None


def carrier_name(slug: str) -> str | None:
    """The carrier as buyers know it, from AfterShip's courier slug."""
    if slug == UNRECOGNIZED_SLUG:
        return None
    return carriers.name(slug)
