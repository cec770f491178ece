"""From AfterShip's tags, subtags and checkpoints to canonical milestones, in carrier time.

AfterShip has no "left the origin country": it is read from checkpoints changing country. Export
customs is not arrival, and a customs hold on the origin side is a delay, not the buyer's task.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytz
from babel.core import get_global

from notifier.events import ExceptionReason, Milestone, Reached

if TYPE_CHECKING:
    from notifier.sources.aftership import AfterShipCheckpoint, AfterShipTracking

NOTE_LENGTH = 500
PLACE_LENGTH = 100


# Tags before the carrier has the parcel, or after it gave up tracking: no buyer news.
MOVING_TAGS = frozenset(
    {"InTransit", "OutForDelivery", "AttemptFail", "Delivered", "AvailableForPickup", "Exception"}
)
ARRIVED_SUBTAG = "InTransit_004"  # "international shipment arrived at the destination country"
CUSTOMS_SUBTAGS = frozenset({"InTransit_005", "InTransit_006"})  # clearance completed, started
# OutForDelivery "or ready to pick up": older webhooks put "available for pickup" here.
PICKUP_SUBTAGS = frozenset({"OutForDelivery_002"})
HELD_FOR_PAYMENT = "Exception_006"
Step = tuple[Milestone, ExceptionReason | None]
EXCEPTIONS: dict[str, Step] = {
    "Exception_002": (Milestone.EXCEPTION, ExceptionReason.ADDRESS_ISSUE),  # customer moved
    "Exception_003": (Milestone.EXCEPTION, ExceptionReason.REFUSED),
    "Exception_004": (Milestone.CUSTOMS_ACTION, ExceptionReason.CUSTOMS_HELD),
    "Exception_005": (Milestone.DELAYED, None),  # external factors
    # Held for payment: across a border that is duties and taxes, which the buyer must pay.
    HELD_FOR_PAYMENT: (Milestone.CUSTOMS_ACTION, ExceptionReason.CUSTOMS_HELD),
    "Exception_007": (Milestone.EXCEPTION, ExceptionReason.ADDRESS_ISSUE),  # incorrect address
    "Exception_010": (Milestone.EXCEPTION, ExceptionReason.RETURNED_TO_SENDER),  # returning
    "Exception_011": (Milestone.EXCEPTION, ExceptionReason.RETURNED_TO_SENDER),  # returned
    "Exception_012": (Milestone.EXCEPTION, ExceptionReason.DAMAGED),
    "Exception_013": (Milestone.EXCEPTION, ExceptionReason.LOST),
    "Exception_016": (Milestone.DELAYED, None),  # processing issue in the carrier network
    "Exception_017": (Milestone.DELAYED, None),  # extreme weather
    "Exception_018": (Milestone.CUSTOMS_ACTION, ExceptionReason.CUSTOMS_HELD),  # documents
    "Exception_019": (Milestone.DELAYED, None),  # late flight
    "Exception_020": (Milestone.CANCELLED, None),  # voided by the sender or the carrier
    "Exception_021": (Milestone.EXCEPTION, ExceptionReason.LOST),  # disposed of: it will not come
}
OTHER_EXCEPTION: Step = (Milestone.EXCEPTION, ExceptionReason.OTHER)


# Kosovo is not in ISO 3166-1 but carriers ship there: under CLDR's code and the common one.
KOSOVO_ALPHA3 = {"XKK": "XK", "XKX": "XK"}


@dataclass
class Route:
    """Where the parcel goes and what its checkpoints have shown so far: turns tags into steps."""

    origin: str | None
    destination: str | None
    shipped: bool = False
    seen_origin: bool = False
    departed: bool = False
    arrived: bool = False

    @property
    def cross_border(self) -> bool:
        return bool(self.origin and self.destination and self.origin != self.destination)

    @property
    def domestic(self) -> bool:
        return bool(self.origin and self.origin == self.destination)

    def advance(self, tag: str | None, subtag: str | None, country: str | None) -> list[Step]:
        """The steps one checkpoint (or the tracking's own tag) adds, oldest first."""
        if country and country == self.origin:
            self.seen_origin = True
        if tag not in MOVING_TAGS:
            return []  # Pending, InfoReceived, Expired, or a tag AfterShip added since
        steps: list[Step] = []
        if tag == "InTransit" and not self.shipped:
            self.shipped = True
            steps.append((Milestone.SHIPPED, None))
        if self._departs(country):
            self.departed = True
            steps.append((Milestone.DEPARTED_ORIGIN, None))
        if self._arrives(subtag, country):
            self.arrived = True
            steps.append((Milestone.ARRIVED_DESTINATION, None))
        status = self._status(tag, subtag, country)
        if status is not None:
            steps.append(status)
        elif not steps:
            steps.append((Milestone.IN_TRANSIT, None))
        return steps

    def _departs(self, country: str | None) -> bool:
        """The first scan outside the origin country, once the parcel was seen in it."""
        return bool(
            not self.departed
            and self.seen_origin
            and not self.domestic
            and country
            and country != self.origin
        )

    def _arrives(self, subtag: str | None, country: str | None) -> bool:
        if self.arrived or self.domestic:
            return False
        if self.cross_border and country == self.destination:
            return True
        if subtag == ARRIVED_SUBTAG:
            return True
        # Customs at the origin is the export side: the parcel has not arrived anywhere yet.
        return subtag in CUSTOMS_SUBTAGS and not (country and country == self.origin)

    def _status(self, tag: str, subtag: str | None, country: str | None) -> Step | None:
        """The milestone the tag itself names; None for InTransit, which derives its own."""
        if tag == "OutForDelivery":
            if subtag in PICKUP_SUBTAGS:
                return (Milestone.READY_FOR_PICKUP, None)
            return (Milestone.OUT_FOR_DELIVERY, None)
        if tag == "AvailableForPickup":
            return (Milestone.READY_FOR_PICKUP, None)
        if tag == "AttemptFail":
            return (Milestone.DELIVERY_FAILED, None)
        if tag == "Delivered":
            return (Milestone.DELIVERED, None)
        if tag == "Exception":
            return self._exception(subtag, country)
        return None

    def _exception(self, subtag: str | None, country: str | None) -> Step:
        step = EXCEPTIONS.get(subtag or "", OTHER_EXCEPTION)
        if subtag == HELD_FOR_PAYMENT and not self.cross_border:
            return OTHER_EXCEPTION  # at home, "held for payment" is postage or cash on delivery
        if step[0] is Milestone.CUSTOMS_ACTION and self.cross_border and country == self.origin:
            # Export customs: the seller's business, nothing the buyer can do but wait.
            return (Milestone.DELAYED, ExceptionReason.CUSTOMS_HELD)
        return step


def journey(
    tracking: AfterShipTracking, route: Route, ts: datetime
) -> tuple[tuple[Reached, ...], datetime]:
    """The milestones the checkpoints show, in carrier time order, and the newest time known."""
    steps: list[Reached] = []
    timeline = _timeline(tracking.checkpoints, ts, route.destination)
    for checkpoint, at in timeline:
        country = alpha2(checkpoint.country_region or checkpoint.country_iso3)
        for milestone, reason in route.advance(checkpoint.tag, checkpoint.subtag, country):
            step = Reached(
                milestone,
                at,
                location=_place(checkpoint, country),
                country_code=country,
                exception=reason,
                note=_note(checkpoint.message or checkpoint.subtag_message),
            )
            _add(steps, step)
    as_of = timeline[-1][1] if timeline else ts
    # AfterShip may move the tag without a checkpoint to show for it (a delivery it learnt of
    # some other way): the tag is then the news, as of the newest checkpoint.
    if not timeline or timeline[-1][0].tag != tracking.tag:
        for milestone, reason in route.advance(tracking.tag, tracking.subtag, None):
            step = Reached(milestone, as_of, exception=reason, note=_note(tracking.subtag_message))
            _add(steps, step)
    return tuple(steps), as_of


def _add(steps: list[Reached], step: Reached) -> None:
    """Append a step: scans in transit collapse into the latest; a repeated milestone keeps its
    first time, which is when it happened."""
    last = steps[-1] if steps else None
    if last is not None and last.milestone is step.milestone is Milestone.IN_TRANSIT:
        steps[-1] = step
    elif last is None or (last.milestone, last.exception) != (step.milestone, step.exception):
        steps.append(step)


def _timeline(
    checkpoints: list[AfterShipCheckpoint], ts: datetime, destination: str | None
) -> list[tuple[AfterShipCheckpoint, datetime]]:
    """Checkpoints with their instants, oldest first (equal instants keep AfterShip's order)."""
    placed = [(checkpoint, _instant(checkpoint, ts, destination)) for checkpoint in checkpoints]
    return sorted(placed, key=lambda pair: pair[1])


def _instant(checkpoint: AfterShipCheckpoint, ts: datetime, destination: str | None) -> datetime:
    """When a checkpoint happened; its own offset when the carrier gives one.

    Without an offset the time cannot be placed exactly. It is read in the checkpoint country's
    zone (else the destination's, else UTC), which may be hours off but orders it among the
    others, and it is never later than the delivery's `ts`. It is not simply `ts`: that changes
    with every delivery, and the journey recognises a step it already knows by its time, so the
    same scan would come back as new news (a second "delivery failed") each time.
    """
    local = checkpoint.checkpoint_time
    if local.tzinfo is not None:
        return local
    country = alpha2(checkpoint.country_region or checkpoint.country_iso3) or destination
    return min(local.replace(tzinfo=_zone(country)), ts)


@cache
def _zone(country: str | None) -> tzinfo:
    zones: list[str] = pytz.country_timezones.get(country, []) if country else []
    return ZoneInfo(zones[0]) if zones else UTC


def _place(checkpoint: AfterShipCheckpoint, country: str | None) -> str | None:
    """A short place for people: "Frankfurt, DE"; carriers often shout, so capitals are eased."""
    name = checkpoint.city or checkpoint.location or checkpoint.state
    if not name:
        return None
    name = (name.title() if name.isupper() else name)[:PLACE_LENGTH]
    return f"{name}, {country}" if country and not name.endswith(country) else name


def _note(text: str | None) -> str | None:
    return text[:NOTE_LENGTH] if text else None


@cache
def alpha3_table() -> Mapping[str, str]:
    """ISO 3166-1 alpha-3 to alpha-2, from CLDR's "overlong" territory aliases (through Babel),
    which name every ISO country. Aliases of CLDR's private-use and unknown regions (ZZZ, QMM)
    and of countries that split (SUN) are left out."""
    aliases: Mapping[str, list[str]] = get_global("territory_aliases")
    countries = {code.upper() for code in pytz.country_names}
    table = {
        code: targets[0]
        for code, targets in aliases.items()
        if len(code) == 3 and len(targets) == 1 and targets[0] in countries
    }
    return {**table, **KOSOVO_ALPHA3}


def alpha2(code: str | None) -> str | None:
    """ISO 3166-1 alpha-2 for an alpha-3 code; None when unknown."""
    return alpha3_table().get(code.upper()) if code else None
