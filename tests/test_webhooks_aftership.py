"""AfterShip tracking webhooks: checkpoints become canonical milestones in carrier time order, and
POST /webhooks/aftership/<slug> verifies the signature and the age of `ts` against the injected
clock, stores, dedupes by `event_id` and answers every refusal as problem+json."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import pytz
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from werkzeug.datastructures import Headers

from notifier.clock import FakeClock
from notifier.events import (
    DateRange,
    ExceptionReason,
    Milestone,
    OrderRef,
    ShipmentUpdated,
    Translation,
)
from notifier.models import (
    EventOutcome,
    InboundEvent,
    Message,
    MessageState,
    Order,
    Shipment,
    Shop,
)
from notifier.problems import Problem
from notifier.sources import aftership, aftership_steps

from .conftest import post_shopify, services, shopify_order

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "aftership"
SECRET = "7d3c0e9b2a5f41c68e1d0b4a9f2c6e83"
OTHER_SECRET = "f0e1d2c3b4a5968778695a4b3c2d1e0f"
MAX_AGE = timedelta(days=7)

M = Milestone
X = ExceptionReason


# --- helpers ------------------------------------------------------------------------------


def load(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return payload


def encode(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


def sign(body: bytes, secret: str = SECRET) -> str:
    """The signature as AfterShip documents it, computed here, not by the code under test."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def ts_of(payload: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(payload["ts"], UTC)


def translate(payload: dict[str, Any]) -> Translation:
    """Verify then translate, as the route does, a minute after the event."""
    body = encode(payload)
    headers = Headers({aftership.SIGNATURE_HEADER: sign(body)})
    now = ts_of(payload) + timedelta(minutes=1)
    envelope = aftership.verify(headers, body, [SECRET], now, MAX_AGE)
    return aftership.translate(envelope, body)


def update_of(payload: dict[str, Any]) -> ShipmentUpdated:
    translation = translate(payload)
    assert translation.ignored_because is None
    [event] = translation.events
    assert isinstance(event, ShipmentUpdated)
    return event


def steps(update: ShipmentUpdated) -> list[tuple[Milestone, str, str | None]]:
    return [(step.milestone, step.at.isoformat(), step.country_code) for step in update.reached]


def milestones(payload: dict[str, Any]) -> list[Milestone]:
    return [step.milestone for step in update_of(payload).reached]


def truncated(payload: dict[str, Any], count: int) -> dict[str, Any]:
    """The delivery AfterShip sent when only the first `count` checkpoints were known."""
    earlier = copy.deepcopy(payload)
    earlier["msg"]["checkpoints"] = earlier["msg"]["checkpoints"][:count]
    last = earlier["msg"]["checkpoints"][-1]
    earlier["msg"]["tag"], earlier["msg"]["subtag"] = last["tag"], last["subtag"]
    return earlier


def with_checkpoint(payload: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The payload with one more checkpoint, an hour after its last, as its news."""
    later = copy.deepcopy(payload)
    last = later["msg"]["checkpoints"][-1]
    at = datetime.fromisoformat(last["checkpoint_time"]) + timedelta(hours=1)
    checkpoint = {**last, "checkpoint_time": at.isoformat(), **changes}
    later["msg"]["checkpoints"].append(checkpoint)
    later["msg"]["tag"], later["msg"]["subtag"] = checkpoint["tag"], checkpoint.get("subtag")
    return later


def problem_of(payload: Any) -> Problem:
    with pytest.raises(Problem) as caught:
        translate(payload)
    return caught.value


# --- a cross-border journey ---------------------------------------------------------------


def test_a_cross_border_journey_derives_each_milestone_in_carrier_order() -> None:
    update = update_of(load("cn-de-cainiao-delivered"))

    assert steps(update) == [
        (M.SHIPPED, "2026-11-24T19:45:00+08:00", "CN"),
        (M.IN_TRANSIT, "2026-11-27T08:10:00+08:00", "CN"),  # the last of five scans in China
        (M.DEPARTED_ORIGIN, "2026-11-27T23:50:00+01:00", "BE"),  # first scan outside China
        (M.ARRIVED_DESTINATION, "2026-11-28T14:30:00+01:00", "DE"),
        (M.IN_TRANSIT, "2026-11-28T16:05:00+01:00", "DE"),  # handed to customs, already arrived
        (M.CUSTOMS_ACTION, "2026-11-30T10:40:00+01:00", "DE"),
        (M.IN_TRANSIT, "2026-12-01T21:30:00+01:00", "DE"),
        (M.OUT_FOR_DELIVERY, "2026-12-02T07:55:00+01:00", "DE"),
        (M.DELIVERED, "2026-12-02T13:42:00+01:00", "DE"),
    ]
    customs = update.reached[5]
    assert customs.exception is X.CUSTOMS_HELD
    assert customs.location == "Frankfurt, DE"
    assert customs.note == "Held by customs: import VAT and duties to be paid by the recipient"
    assert update.reached[0].location == "Shenzhen, CN"  # "SHENZHEN" eased, country added
    assert update.reached[-1].location == "Berlin, DE"
    assert update.as_of == datetime(2026, 12, 2, 12, 42, tzinfo=UTC)
    assert update.order == OrderRef(external_id="5523487293612", number="#1001")
    assert update.shipment_id == "d2a6f3b0c9e84f1a8b7c5e4d3f2a1b09"
    assert update.carrier == "Cainiao"
    assert update.tracking_number == "LP00698765432101"
    assert update.tracking_url == (
        "https://global.cainiao.com/newDetail.htm?mailNoList=LP00698765432101"
    )
    assert update.expected == DateRange(date(2026, 12, 2), date(2026, 12, 5))
    assert (update.origin_country, update.destination_country) == ("CN", "DE")


@pytest.mark.parametrize(
    ("known", "news"),
    [
        (1, None),  # information received: the carrier does not have the parcel yet
        (2, M.SHIPPED),
        (4, M.IN_TRANSIT),
        (5, M.IN_TRANSIT),  # export customs in China is not an arrival
        (6, M.IN_TRANSIT),
        (7, M.DEPARTED_ORIGIN),
        (8, M.ARRIVED_DESTINATION),
        (9, M.IN_TRANSIT),
        (10, M.CUSTOMS_ACTION),
        (11, M.IN_TRANSIT),
        (13, M.OUT_FOR_DELIVERY),
        (14, M.DELIVERED),
    ],
)
def test_each_delivery_of_the_journey_ends_with_its_news(known: int, news: Milestone) -> None:
    update = update_of(truncated(load("cn-de-cainiao-delivered"), known))

    assert (update.reached[-1].milestone if update.reached else None) is news
    checkpoint_times = [
        datetime.fromisoformat(checkpoint["checkpoint_time"])
        for checkpoint in load("cn-de-cainiao-delivered")["msg"]["checkpoints"][:known]
    ]
    assert update.as_of == max(checkpoint_times)


def test_the_journey_so_far_is_the_same_in_every_later_delivery() -> None:
    journey = load("cn-de-cainiao-delivered")
    full = update_of(journey).reached

    for known in range(2, len(journey["msg"]["checkpoints"])):
        earlier = update_of(truncated(journey, known)).reached
        # Only the newest in-transit scan may still move on; everything before it stays.
        stable = earlier[:-1] if earlier[-1].milestone is M.IN_TRANSIT else earlier
        assert full[: len(stable)] == stable


def test_checkpoints_are_ordered_by_carrier_time_whatever_their_order_in_the_array() -> None:
    journey = load("cn-de-cainiao-delivered")
    shuffled = copy.deepcopy(journey)
    shuffled["msg"]["checkpoints"].reverse()

    assert update_of(shuffled).reached == update_of(journey).reached


def test_the_origin_is_left_only_after_the_parcel_was_seen_there() -> None:
    # Tracked only from Belgium on: no departure can be told, the arrival still can.
    journey = load("cn-de-cainiao-delivered")
    journey["msg"]["checkpoints"] = journey["msg"]["checkpoints"][6:]

    assert milestones(journey)[:2] == [M.SHIPPED, M.ARRIVED_DESTINATION]
    assert M.DEPARTED_ORIGIN not in milestones(journey)


def test_customs_clearance_implies_arrival_when_no_scan_said_so() -> None:
    journey = truncated(load("cn-de-cainiao-delivered"), 4)
    news = with_checkpoint(
        journey,
        country_region=None,
        city=None,
        location=None,
        tag="InTransit",
        subtag="InTransit_005",
        message="Customs clearance completed",
    )

    assert milestones(news)[-1] is M.ARRIVED_DESTINATION


# --- a domestic journey -------------------------------------------------------------------


def test_a_domestic_yamato_journey_has_no_border_to_cross() -> None:
    update = update_of(load("jp-yamato-delivered"))

    assert steps(update) == [
        (M.SHIPPED, "2026-11-24T18:40:00+09:00", "JP"),
        (M.IN_TRANSIT, "2026-11-25T05:10:00+09:00", "JP"),
        (M.OUT_FOR_DELIVERY, "2026-11-25T08:47:00+09:00", "JP"),
        (M.DELIVERY_FAILED, "2026-11-25T12:03:00+09:00", "JP"),
        (M.OUT_FOR_DELIVERY, "2026-11-25T18:15:00+09:00", "JP"),  # a second round is news
        (M.DELIVERED, "2026-11-25T19:32:00+09:00", "JP"),
    ]
    assert update.reached[-1].location == "大阪北センター, JP"
    assert update.reached[-1].note == "配達完了"
    # The older webhook version names countries *_iso3 and has no order number.
    assert (update.origin_country, update.destination_country) == ("JP", "JP")
    assert update.order == OrderRef(external_id="JP-88231", number=None)
    assert update.carrier == "Yamato"
    assert update.expected == DateRange(date(2026, 11, 25), date(2026, 11, 25))


def test_arrival_subtags_mean_nothing_at_home() -> None:
    journey = with_checkpoint(
        truncated(load("jp-yamato-delivered"), 3), tag="InTransit", subtag="InTransit_004"
    )

    assert milestones(journey) == [M.SHIPPED, M.IN_TRANSIT]


# --- exceptions and other subtags -----------------------------------------------------------


@pytest.mark.parametrize(
    ("subtag", "expected"),
    [
        ("Exception_004", (M.CUSTOMS_ACTION, X.CUSTOMS_HELD)),  # delayed in customs
        ("Exception_018", (M.CUSTOMS_ACTION, X.CUSTOMS_HELD)),  # missing documents
        ("Exception_006", (M.CUSTOMS_ACTION, X.CUSTOMS_HELD)),  # held for payment (duties)
        ("Exception_005", (M.DELAYED, None)),  # external factors
        ("Exception_016", (M.DELAYED, None)),  # processing delay
        ("Exception_017", (M.DELAYED, None)),  # extreme weather
        ("Exception_019", (M.DELAYED, None)),  # late flight
        ("Exception_010", (M.EXCEPTION, X.RETURNED_TO_SENDER)),
        ("Exception_011", (M.EXCEPTION, X.RETURNED_TO_SENDER)),
        ("Exception_012", (M.EXCEPTION, X.DAMAGED)),
        ("Exception_013", (M.EXCEPTION, X.LOST)),
        ("Exception_021", (M.EXCEPTION, X.LOST)),  # disposed of
        ("Exception_003", (M.EXCEPTION, X.REFUSED)),
        ("Exception_002", (M.EXCEPTION, X.ADDRESS_ISSUE)),  # customer moved
        ("Exception_007", (M.EXCEPTION, X.ADDRESS_ISSUE)),  # incorrect address
        ("Exception_020", (M.CANCELLED, None)),  # voided by the sender or the carrier
        ("Exception_001", (M.EXCEPTION, X.OTHER)),
        ("Exception_008", (M.EXCEPTION, X.OTHER)),  # pickup missed
        ("Exception_009", (M.EXCEPTION, X.OTHER)),  # rejected by the carrier
        ("Exception_099", (M.EXCEPTION, X.OTHER)),  # a subtag AfterShip added since
        (None, (M.EXCEPTION, X.OTHER)),
    ],
)
def test_each_exception_subtag_family(
    subtag: str | None, expected: tuple[Milestone, ExceptionReason | None]
) -> None:
    journey = truncated(load("cn-de-cainiao-delivered"), 9)  # in Germany, handed to customs
    news = with_checkpoint(journey, tag="Exception", subtag=subtag, message="Exception")

    last = update_of(news).reached[-1]

    assert (last.milestone, last.exception) == expected
    assert (last.country_code, last.note) == ("DE", "Exception")


@pytest.mark.parametrize("subtag", ["Exception_004", "Exception_018"])
def test_an_export_customs_hold_is_a_delay_not_the_buyers_to_act_on(subtag: str) -> None:
    journey = with_checkpoint(
        truncated(load("cn-de-cainiao-delivered"), 5), tag="Exception", subtag=subtag
    )

    last = update_of(journey).reached[-1]

    assert (last.milestone, last.exception, last.country_code) == (
        M.DELAYED,
        X.CUSTOMS_HELD,
        "CN",
    )


def test_held_for_payment_at_home_is_not_customs() -> None:
    journey = with_checkpoint(
        truncated(load("jp-yamato-delivered"), 5), tag="Exception", subtag="Exception_006"
    )

    last = update_of(journey).reached[-1]

    assert (last.milestone, last.exception) == (M.EXCEPTION, X.OTHER)


@pytest.mark.parametrize(
    ("tag", "subtag", "expected"),
    [
        ("OutForDelivery", "OutForDelivery_001", M.OUT_FOR_DELIVERY),
        ("OutForDelivery", "OutForDelivery_003", M.OUT_FOR_DELIVERY),  # customer contacted
        ("OutForDelivery", "OutForDelivery_004", M.OUT_FOR_DELIVERY),  # appointment
        ("OutForDelivery", "OutForDelivery_002", M.READY_FOR_PICKUP),  # older: at a pickup point
        ("AvailableForPickup", "AvailableForPickup_001", M.READY_FOR_PICKUP),
        ("AttemptFail", "AttemptFail_003", M.DELIVERY_FAILED),  # business closed
        ("Delivered", "Delivered_002", M.DELIVERED),  # picked up by the customer
        ("Delivered", "Delivered_005", M.DELIVERED),  # with a neighbour
        # Subtags AfterShip added since fall back to their tag.
        ("InTransit", "InTransit_013", M.IN_TRANSIT),
        ("OutForDelivery", "OutForDelivery_099", M.OUT_FOR_DELIVERY),
        ("AttemptFail", "AttemptFail_099", M.DELIVERY_FAILED),
        ("Delivered", None, M.DELIVERED),
    ],
)
def test_tags_and_subtags_near_the_door(tag: str, subtag: str | None, expected: Milestone) -> None:
    journey = with_checkpoint(truncated(load("jp-yamato-delivered"), 4), tag=tag, subtag=subtag)

    assert milestones(journey)[-1] is expected


@pytest.mark.parametrize("tag", ["Pending", "InfoReceived", "Expired", "SomeNewTag"])
def test_tags_that_are_no_buyer_news_add_no_milestone(tag: str) -> None:
    journey = with_checkpoint(truncated(load("jp-yamato-delivered"), 2), tag=tag, subtag=None)

    assert milestones(journey) == [M.SHIPPED]


def test_a_repeated_milestone_keeps_the_time_it_first_happened() -> None:
    journey = load("jp-yamato-delivered")
    again = with_checkpoint(journey, message="配達完了（再スキャン）")

    update = update_of(again)

    assert [step.milestone for step in update.reached].count(M.DELIVERED) == 1
    assert update.reached[-1].at == datetime.fromisoformat("2026-11-25T19:32:00+09:00")
    assert update.as_of == datetime.fromisoformat("2026-11-25T20:32:00+09:00")


def test_the_tag_is_the_news_when_no_checkpoint_shows_it_yet() -> None:
    journey = truncated(load("cn-de-cainiao-delivered"), 13)  # out for delivery
    journey["msg"]["tag"], journey["msg"]["subtag"] = "Delivered", "Delivered_001"
    journey["msg"]["subtag_message"] = "Delivered"

    update = update_of(journey)

    assert [step.milestone for step in update.reached][-2:] == [M.OUT_FOR_DELIVERY, M.DELIVERED]
    assert update.reached[-1].at == update.as_of == update.reached[-2].at
    assert (update.reached[-1].note, update.reached[-1].location) == ("Delivered", None)


def test_in_transit_without_checkpoints_is_shipped_as_of_ts() -> None:
    journey = load("cn-de-cainiao-delivered")
    journey["msg"]["checkpoints"] = []
    journey["msg"]["tag"], journey["msg"]["subtag"] = "InTransit", "InTransit_001"

    update = update_of(journey)

    assert steps(update) == [(M.SHIPPED, ts_of(journey).isoformat(), None)]
    assert update.as_of == ts_of(journey)


# --- checkpoint times without an offset -----------------------------------------------------


def test_checkpoints_without_an_offset_are_read_in_their_countrys_zone() -> None:
    payload = load("us-usps-no-offset")

    update = update_of(payload)

    assert [(step.milestone, step.at.isoformat()) for step in update.reached] == [
        # Los Angeles read in the first US zone: hours off, but in order and never after `ts`.
        (M.SHIPPED, "2026-11-27T16:20:00-05:00"),
        (M.IN_TRANSIT, "2026-11-28T03:41:00-05:00"),
        (M.OUT_FOR_DELIVERY, "2026-11-30T06:05:00-05:00"),
        (M.DELIVERY_FAILED, "2026-11-30T14:12:00-05:00"),
    ]
    assert update.as_of == update.reached[-1].at <= ts_of(payload)


def test_an_offsetless_time_is_the_same_in_every_later_delivery() -> None:
    # Were it `ts`, each new delivery would move it, and the same failed attempt would be told
    # to the buyer again and again.
    payload = load("us-usps-no-offset")
    later = copy.deepcopy(payload)
    later["ts"] += 6 * 3600
    later["event_id"] = "c3d9a1f0-7e62-4b8a-91d5-2f4e6a8b0c18"

    assert update_of(later).reached == update_of(payload).reached


def test_an_offsetless_time_is_never_later_than_the_delivery() -> None:
    payload = load("us-usps-no-offset")
    payload["msg"]["checkpoints"][-1]["checkpoint_time"] = "2026-11-30T23:59:00"

    update = update_of(payload)

    assert update.reached[-1].at == update.as_of == ts_of(payload)


def test_offsetless_and_offset_times_mix_in_carrier_order() -> None:
    payload = load("cn-de-cainiao-delivered")
    checkpoints = payload["msg"]["checkpoints"]
    checkpoints[12]["checkpoint_time"] = "2026-12-02T07:55:00"  # out for delivery, Berlin

    update = update_of(payload)

    assert [step.milestone for step in update.reached][-2:] == [M.OUT_FOR_DELIVERY, M.DELIVERED]
    assert update.reached[-2].at.isoformat() == "2026-12-02T07:55:00+01:00"  # Europe/Berlin


# --- estimated delivery -------------------------------------------------------------------


def test_edd_revise_is_a_new_expected_range_without_milestones() -> None:
    translation = translate(load("edd-revise"))

    [update] = translation.events
    assert isinstance(update, ShipmentUpdated)
    assert translation.topic == "edd_revise"
    assert update.reached == ()
    assert update.expected == DateRange(date(2026, 12, 3), date(2026, 12, 6))
    assert update.as_of == datetime.fromisoformat("2026-11-28T14:30:00+01:00")
    assert update.tracking_number == "LP00698765432101"


def test_edd_revise_without_a_date_is_recorded_and_ignored() -> None:
    payload = load("edd-revise")
    for name in ("latest_estimated_delivery", "aftership_estimated_delivery_date"):
        payload["msg"][name] = None

    translation = translate(payload)

    assert translation.events == ()
    assert translation.ignored_because == "edd_revise carries no estimated delivery date"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {
                "latest_estimated_delivery": {"datetime": "2026-12-04"},
                "courier_estimated_delivery_date": {"estimated_delivery_date": "2026-12-09"},
            },
            ("2026-12-04", "2026-12-04"),
        ),
        (
            {
                "courier_estimated_delivery_date": {
                    "estimated_delivery_date_min": "2026-12-05T09:00:00",
                    "estimated_delivery_date_max": "2026-12-07T18:00:00+01:00",
                },
                "aftership_estimated_delivery_date": {"estimated_delivery_date": "2026-12-01"},
            },
            ("2026-12-05", "2026-12-07"),
        ),
        (
            {"aftership_estimated_delivery_date": {"estimated_delivery_date": "2026-12-01"}},
            ("2026-12-01", "2026-12-01"),
        ),
        (
            {"custom_estimated_delivery_date": {"datetime_min": "2026-12-02", "datetime_max": ""}},
            ("2026-12-02", "2026-12-02"),
        ),
        ({"expected_delivery": "2026-12-03T00:00:00Z"}, ("2026-12-03", "2026-12-03")),
        (
            {"order_promised_delivery_date": {"promised_delivery_date_max": "2026-12-10"}},
            ("2026-12-10", "2026-12-10"),
        ),
        ({"order_promised_delivery_date": "2026-12-11"}, ("2026-12-11", "2026-12-11")),
        ({}, None),
    ],
)
def test_the_freshest_estimate_is_the_expected_range(
    fields: dict[str, Any], expected: tuple[str, str] | None
) -> None:
    payload = load("cn-de-cainiao-delivered")
    for name in (
        "latest_estimated_delivery",
        "courier_estimated_delivery_date",
        "aftership_estimated_delivery_date",
    ):
        payload["msg"][name] = None
    payload["msg"].update(fields)

    update = update_of(payload)

    if expected is None:
        assert update.expected is None
    else:
        assert update.expected == DateRange(*(date.fromisoformat(day) for day in expected))


# --- identity: order, carrier, link, countries ------------------------------------------------


def test_news_for_no_order_is_a_precise_422() -> None:
    payload = load("cn-de-cainiao-delivered")
    payload["msg"]["order_id"], payload["msg"]["order_number"] = None, " "

    problem = problem_of(payload)

    assert (problem.status, problem.title) == (422, "No order reference")
    assert "msg.order_id and msg.order_number are both empty" in problem.detail
    assert [error["field"] for error in problem.errors or []] == [
        "msg.order_id",
        "msg.order_number",
    ]


def test_the_order_number_alone_names_the_order() -> None:
    payload = load("cn-de-cainiao-delivered")
    payload["msg"]["order_id"] = ""

    assert update_of(payload).order == OrderRef(external_id=None, number="#1001")


def test_without_an_aftership_id_the_parcel_is_its_carrier_and_number() -> None:
    payload = load("cn-de-cainiao-delivered")
    del payload["msg"]["id"]

    assert update_of(payload).shipment_id == "cainiao:LP00698765432101"


@pytest.mark.parametrize(
    ("slug", "name"),
    [
        ("dhl", "DHL"),
        ("yamato", "Yamato"),
        ("usps", "USPS"),
        ("deutsch-post", "Deutsche Post"),
        ("korea-post", "Korea Post"),
        ("la-poste-colissimo", "Colissimo"),
        ("unrecognized", None),
    ],
)
def test_carrier_names_as_buyers_know_them(slug: str, name: str | None) -> None:
    assert aftership.carrier_name(slug) == name


@pytest.mark.parametrize(
    ("branded", "courier", "expected"),
    [
        ("https://lumen.aftership.com/LP1", "https://carrier.example/t/LP1", "https://lumen.aftership.com/LP1"),
        (None, "https://carrier.example/t/LP1", "https://carrier.example/t/LP1"),
        ("javascript:alert(1)", "ftp://carrier.example/LP1", None),
        ("https://", None, None),
    ],
)  # fmt: skip
def test_the_tracking_link_is_the_shops_aftership_page_else_the_carriers(
    branded: str | None, courier: str | None, expected: str | None
) -> None:
    payload = load("cn-de-cainiao-delivered")
    payload["msg"]["aftership_tracking_url"] = branded
    payload["msg"]["courier_tracking_link"] = courier

    assert update_of(payload).tracking_url == expected


def test_the_courier_destination_stands_in_for_a_missing_destination() -> None:
    payload = load("cn-de-cainiao-delivered")
    payload["msg"]["destination_country_region"] = None

    assert update_of(payload).destination_country == "DE"


def test_every_iso_country_has_an_alpha3_code() -> None:
    known = {aftership_steps.alpha2(code) for code in aftership_steps.alpha3_table()}

    assert {code.upper() for code in pytz.country_names} <= known


@pytest.mark.parametrize(
    ("alpha3", "alpha2"),
    [
        ("DEU", "DE"),
        ("CHN", "CN"),
        ("JPN", "JP"),
        ("USA", "US"),
        ("GBR", "GB"),
        ("HKG", "HK"),
        ("BEL", "BE"),
        ("deu", "DE"),
        ("XKX", "XK"),  # Kosovo as carriers write it
        ("SUN", None),  # the Soviet Union split into fifteen
        ("ZZZ", None),
        (None, None),
    ],
)
def test_alpha3_to_alpha2(alpha3: str | None, alpha2: str | None) -> None:
    assert aftership.alpha2(alpha3) == alpha2


# --- events that are not news ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "why"),
    [
        (
            "tracking_pending_time",
            "event 'tracking_pending_time': a tracking still pending after the shop's threshold "
            "is news for the seller, not the buyer",
        ),
        ("tracking_created", "event 'tracking_created': it is not handled"),
    ],
)
def test_events_other_than_news_are_ignored(event: str, why: str) -> None:
    payload = load("tracking-pending-time")
    payload["event"] = event
    payload["msg"] = {"anything": ["at all"]}  # not read

    translation = translate(payload)

    assert (translation.topic, translation.events, translation.ignored_because) == (event, (), why)


# --- verification -------------------------------------------------------------------------


def verify(payload: Any, *, now: datetime, secrets: tuple[str, ...] = (SECRET,)) -> Any:
    body = encode(payload)
    headers = Headers(
        {
            aftership.SIGNATURE_HEADER: sign(body, secrets[-1]),
            "User-Agent": "AfterShipTrackingWebhook/4.0.0 (https://www.aftership.com)",
            "as-webhook-version": "2026-07",
            "Content-Type": "application/json",
            "X-Forwarded-For": "34.70.29.163",
        }
    )
    return aftership.verify(headers, body, list(secrets), now, MAX_AGE)


def test_verify_names_the_delivery_by_its_event_id_and_time() -> None:
    payload = load("cn-de-cainiao-delivered")

    envelope = verify(payload, now=ts_of(payload), secrets=(OTHER_SECRET, SECRET))

    assert envelope.delivery_id == envelope.event_id == "6f1c2b7e-4d9a-4b35-9e2f-8a0d3c5e7b14"
    assert envelope.topic == "tracking_update"
    assert envelope.occurred_at == datetime(2026, 12, 2, 12, 43, 10, tzinfo=UTC)
    assert envelope.verification == "hmac-sha256 valid (secret 2 of 2)"
    assert set(envelope.headers) == {
        "aftership-hmac-sha256",
        "User-Agent",
        "as-webhook-version",
        "Content-Type",
    }


@pytest.mark.parametrize(
    ("offset", "title"),
    [
        (-MAX_AGE, None),
        (-MAX_AGE - timedelta(seconds=1), "Stale delivery"),
        (aftership.FUTURE_SKEW, None),
        (aftership.FUTURE_SKEW + timedelta(seconds=1), "Delivery from the future"),
    ],
)
def test_ts_is_held_against_the_injected_clock(offset: timedelta, title: str | None) -> None:
    payload = load("cn-de-cainiao-delivered")
    now = ts_of(payload) - offset

    if title is None:
        assert verify(payload, now=now).occurred_at == ts_of(payload)
        return
    with pytest.raises(Problem) as caught:
        verify(payload, now=now)
    assert (caught.value.status, caught.value.title) == (401, title)
    assert f"ts {payload['ts']} (2026-12-02T12:43:10+00:00)" in caught.value.detail


# --- hostile input ------------------------------------------------------------------------


def _set(payload: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    target: Any = payload
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[int(leaf) if leaf.isdigit() else leaf] = value


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("ts", "1796215390", "ts"),
        ("ts", 1796215390.0, "ts"),
        ("ts", True, "ts"),
        ("event_id", "6f1c2b7e 4d9a", "event_id"),
        ("event_id", "e" * 201, "event_id"),
        ("event", "", "event"),
        ("msg.slug", "Cainiao Express", "msg.slug"),
        ("msg.tracking_number", "L" * 101, "msg.tracking_number"),
        ("msg.tag", None, "msg.tag"),
        ("msg.order_id", "5" * 65, "msg.order_id"),
        ("msg.order_number", 1001, "msg.order_number"),
        ("msg.origin_country_region", "CN", "msg.origin_country_region"),
        ("msg.courier_tracking_link", "https://x.example/" + "a" * 2000, "msg.courier_tracking_link"),
        ("msg.latest_estimated_delivery", {"datetime": "soon"}, "msg.latest_estimated_delivery.datetime"),
        ("msg.expected_delivery", "2150-01-01", "msg.expected_delivery"),
        ("msg.checkpoints", [{}] * 501, "msg.checkpoints"),
        ("msg.checkpoints.3.message", "Departed\x00", "msg.checkpoints.3.message"),
        ("msg.checkpoints.3.city", "D" * 201, "msg.checkpoints.3.city"),
        ("msg.checkpoints.3.checkpoint_time", "2200-01-01T00:00:00+08:00", "msg.checkpoints.3.checkpoint_time"),
        ("msg.checkpoints.3.checkpoint_time", "yesterday", "msg.checkpoints.3.checkpoint_time"),
        ("msg.checkpoints.3.checkpoint_time", None, "msg.checkpoints.3.checkpoint_time"),
        ("msg.checkpoints.3.subtag", "InTransit 007", "msg.checkpoints.3.subtag"),
        ("msg.checkpoints.3.country_region", "China", "msg.checkpoints.3.country_region"),
    ],
)  # fmt: skip
def test_hostile_values_are_refused_by_field(path: str, value: Any, field: str) -> None:
    payload = load("cn-de-cainiao-delivered")
    _set(payload, path, value)

    with pytest.raises(Problem) as caught:
        verify_then_translate(payload)

    assert caught.value.status == 422
    assert field in {error["field"] for error in caught.value.errors or []}


def verify_then_translate(payload: dict[str, Any]) -> Translation:
    body = encode(payload)
    headers = Headers({aftership.SIGNATURE_HEADER: sign(body)})
    now = datetime(2026, 12, 2, 12, 44, tzinfo=UTC)
    return aftership.translate(aftership.verify(headers, body, [SECRET], now, MAX_AGE), body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
FUZZED = [
    "event", "event_id", "ts", "msg", "msg.id", "msg.slug", "msg.tracking_number", "msg.tag",
    "msg.subtag", "msg.order_id", "msg.order_number", "msg.origin_country_region",
    "msg.destination_country_iso3", "msg.aftership_tracking_url", "msg.latest_estimated_delivery",
    "msg.courier_estimated_delivery_date", "msg.order_promised_delivery_date",
    "msg.expected_delivery", "msg.checkpoints", "msg.checkpoints.9", "msg.checkpoints.9.tag",
    "msg.checkpoints.9.subtag", "msg.checkpoints.9.checkpoint_time",
    "msg.checkpoints.9.country_region", "msg.checkpoints.9.city", "msg.checkpoints.9.message",
]  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(path=st.sampled_from(FUZZED), value=json_values)
def test_any_value_anywhere_is_translated_or_refused_with_a_4xx(path: str, value: Any) -> None:
    payload = load("cn-de-cainiao-delivered")
    _set(payload, path, value)

    result = outcome(payload)

    if isinstance(result, Problem):
        assert 400 <= result.status < 500
        assert result.detail
    else:
        assert result.events or result.ignored_because


def outcome(payload: dict[str, Any]) -> Translation | Problem:
    try:
        return verify_then_translate(payload)
    except Problem as problem:
        return problem


offsets = st.one_of(
    st.none(),
    st.integers(min_value=-12 * 60, max_value=14 * 60).map(lambda m: timedelta(minutes=m)),
)
checkpoints = st.lists(
    st.tuples(
        # Naive on purpose: some carriers give checkpoint times without an offset.
        st.datetimes(
            min_value=datetime(2026, 11, 1),  # noqa: DTZ001
            max_value=datetime(2026, 12, 31),  # noqa: DTZ001
        ),
        offsets,
        st.sampled_from(
            ["InfoReceived", "InTransit", "OutForDelivery", "AttemptFail", "Exception"]
        ),
        st.sampled_from([None, "InTransit_004", "InTransit_006", "Exception_004", "Exception_013"]),
        st.sampled_from([None, "CHN", "DEU", "BEL", "USA"]),
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(cps=checkpoints)
def test_the_journey_is_always_in_carrier_time_order_up_to_as_of(cps: list[Any]) -> None:
    payload = load("cn-de-cainiao-delivered")
    payload["ts"] = int(datetime(2027, 1, 1, tzinfo=UTC).timestamp())
    payload["msg"]["checkpoints"] = [
        {
            "checkpoint_time": (local.replace(tzinfo=timezone(offset)) if offset else local).isoformat(),
            "tag": tag,
            "subtag": subtag,
            "country_region": country,
            "message": "scan",
        }
        for local, offset, tag, subtag, country in cps
    ]  # fmt: skip
    payload["msg"]["tag"] = "InTransit"

    update = update_of_at(payload, now=datetime(2027, 1, 1, tzinfo=UTC))

    times = [step.at for step in update.reached]
    assert times == sorted(times)
    assert all(time <= update.as_of <= ts_of(payload) for time in times)


def update_of_at(payload: dict[str, Any], *, now: datetime) -> ShipmentUpdated:
    body = encode(payload)
    headers = Headers({aftership.SIGNATURE_HEADER: sign(body)})
    [event] = aftership.translate(
        aftership.verify(headers, body, [SECRET], now, MAX_AGE), body
    ).events
    assert isinstance(event, ShipmentUpdated)
    return event


# === over HTTP, on a real database ==========================================================


def count(app: Flask, model: type) -> int:
    with services(app).sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def assert_problem(response: Any, status: int, title: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem: dict[str, Any] = response.json
    assert problem["status"] == status
    assert problem["title"]
    assert problem["detail"]
    if title is not None:
        assert problem["title"] == title
    return problem


@pytest.fixture
def aftership_shop(app: Flask, shopify_shop: Shop) -> Shop:
    """The Shopify shop `lumen`, with its AfterShip webhook secret set."""
    with services(app).sessions.begin() as session:
        shop = session.scalars(select(Shop).where(Shop.slug == "lumen")).one()
        shop.tracking_secrets = {"aftership": [SECRET]}
    return shopify_shop


@pytest.fixture
def placed_order(client: FlaskClient, aftership_shop: Shop) -> None:
    """Order #1001 (id 5523487293612), shipping from China to Berlin, placed through Shopify."""
    assert post_shopify(client, shopify_order()).status_code == 200


def post_aftership(
    client: FlaskClient,
    payload: dict[str, Any] | bytes,
    *,
    slug: str = "lumen",
    secret: str = SECRET,
    **header_changes: str | None,
) -> Any:
    body = payload if isinstance(payload, bytes) else encode(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "AfterShipTrackingWebhook/4.0.0 (https://www.aftership.com)",
        "as-webhook-version": "2026-07",
        "aftership-hmac-sha256": sign(body, secret),
    }
    for name, value in header_changes.items():
        headers.pop(name.replace("_", "-"), None)
        if value is not None:
            headers[name.replace("_", "-")] = value
    return client.post(f"/webhooks/aftership/{slug}", data=body, headers=headers)


def just_after(clock: FakeClock, payload: dict[str, Any]) -> dict[str, Any]:
    clock.set(ts_of(payload) + timedelta(minutes=1))
    return payload


@pytest.mark.usefixtures("placed_order")
def test_a_signed_tracking_update_is_stored_with_its_verdict(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    payload = just_after(clock, truncated(load("cn-de-cainiao-delivered"), 2))
    body = encode(payload)

    response = post_aftership(client, body)

    assert response.status_code == 200
    assert response.json["status"] == "accepted"
    assert response.json["delivery_id"] == payload["event_id"]
    with services(app).sessions() as session:
        event = session.scalars(
            select(InboundEvent).where(InboundEvent.source == "aftership")
        ).one()
        order = session.scalars(select(Order)).one()
    assert event.body == body
    assert event.topic == "tracking_update"
    assert event.delivery_id == event.event_id == payload["event_id"]
    assert event.occurred_at == ts_of(payload)
    assert event.received_at == clock.now()
    assert event.headers == {
        "aftership-hmac-sha256": sign(body),
        "as-webhook-version": "2026-07",
        "User-Agent": "AfterShipTrackingWebhook/4.0.0 (https://www.aftership.com)",
        "Content-Type": "application/json",
    }
    assert event.verification == "hmac-sha256 valid (secret 1 of 1)"
    assert event.outcome is EventOutcome.APPLIED
    assert event.order_id == order.id


@pytest.mark.usefixtures("aftership_shop")
def test_without_the_signature_header_is_401(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    payload = just_after(clock, load("cn-de-cainiao-delivered"))

    response = post_aftership(client, payload, aftership_hmac_sha256=None)

    problem = assert_problem(response, 401, "Missing signature")
    assert "aftership-hmac-sha256" in problem["detail"]
    assert count(app, InboundEvent) == 0


@pytest.mark.usefixtures("aftership_shop")
@pytest.mark.parametrize("signature", ["", "garbage", "\u00e9\u00e8", sign(b"{}")])
def test_a_signature_that_does_not_match_is_401(
    app: Flask, client: FlaskClient, clock: FakeClock, signature: str
) -> None:
    payload = just_after(clock, load("cn-de-cainiao-delivered"))

    response = post_aftership(client, payload, aftership_hmac_sha256=signature)

    assert_problem(response, 401)
    assert count(app, InboundEvent) == 0


@pytest.mark.usefixtures("aftership_shop")
def test_a_body_changed_after_signing_is_401(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    payload = just_after(clock, load("cn-de-cainiao-delivered"))
    body = encode(payload)
    forged = body.replace(b'"tag": "Delivered"', b'"tag": "Exception"')
    assert forged != body

    response = post_aftership(client, forged, aftership_hmac_sha256=sign(body))

    assert_problem(response, 401, "Invalid signature")
    assert count(app, InboundEvent) == 0


@pytest.mark.usefixtures("placed_order")
def test_the_previous_secret_still_verifies_while_the_new_one_rolls_out(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    with services(app).sessions.begin() as session:
        shop = session.scalars(select(Shop).where(Shop.slug == "lumen")).one()
        shop.tracking_secrets = {"aftership": [OTHER_SECRET, SECRET]}
    first = just_after(clock, truncated(load("cn-de-cainiao-delivered"), 2))
    second = truncated(load("cn-de-cainiao-delivered"), 3)
    second["event_id"] = "6f1c2b7e-4d9a-4b35-9e2f-8a0d3c5e7b15"

    old = post_aftership(client, first, secret=SECRET)
    new = post_aftership(client, second, secret=OTHER_SECRET)
    wrong = post_aftership(client, second, secret="not-the-secret-0123456789")

    assert (old.status_code, new.status_code) == (200, 200)
    assert_problem(wrong, 401, "Invalid signature")
    with services(app).sessions() as session:
        verdicts = session.scalars(
            select(InboundEvent.verification)
            .where(InboundEvent.source == "aftership")
            .order_by(InboundEvent.id)
        ).all()
    assert verdicts == ["hmac-sha256 valid (secret 2 of 2)", "hmac-sha256 valid (secret 1 of 2)"]


@pytest.mark.usefixtures("aftership_shop")
def test_a_delivery_older_than_the_max_age_is_refused(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    payload = load("cn-de-cainiao-delivered")
    max_age = timedelta(seconds=app.config["AFTERSHIP_MAX_AGE_SECONDS"])
    clock.set(ts_of(payload) + max_age + timedelta(seconds=1))

    response = post_aftership(client, payload)

    problem = assert_problem(response, 401, "Stale delivery")
    assert f"ts {payload['ts']}" in problem["detail"]
    assert "7 days, 0:00:01 old" in problem["detail"]
    assert count(app, InboundEvent) == 0


@pytest.mark.usefixtures("aftership_shop")
def test_a_delivery_from_the_future_is_refused(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    payload = load("cn-de-cainiao-delivered")
    clock.set(ts_of(payload) - timedelta(minutes=6))

    response = post_aftership(client, payload)

    assert "0:06:00 ahead" in assert_problem(response, 401, "Delivery from the future")["detail"]
    assert count(app, InboundEvent) == 0


@pytest.mark.usefixtures("aftership_shop")
@pytest.mark.parametrize(
    ("body", "title"),
    [
        (b"{not json", "Malformed JSON"),
        (b'{"event": "tracking_update", "msg": "\xff\xfe"}', "Malformed body"),
    ],
)
def test_a_signed_body_that_is_not_json_is_400(
    app: Flask, client: FlaskClient, body: bytes, title: str
) -> None:
    assert_problem(post_aftership(client, body), 400, title)
    assert count(app, InboundEvent) == 0


@pytest.mark.usefixtures("aftership_shop")
@pytest.mark.parametrize("body", [[], None, "tracking_update", {}, {"event": "tracking_update"}])
def test_json_that_is_not_a_delivery_is_422(app: Flask, client: FlaskClient, body: Any) -> None:
    assert_problem(post_aftership(client, encode(body)), 422, "Invalid payload")
    assert count(app, InboundEvent) == 0


@pytest.mark.usefixtures("aftership_shop")
def test_schema_errors_are_422_naming_each_field(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    payload = just_after(clock, load("cn-de-cainiao-delivered"))
    payload["msg"]["slug"] = "Cainiao!"
    payload["msg"]["checkpoints"][2]["checkpoint_time"] = "not a time"

    problem = assert_problem(post_aftership(client, payload), 422, "Invalid payload")

    assert {error["field"] for error in problem["errors"]} == {
        "msg.slug",
        "msg.checkpoints.2.checkpoint_time",
    }
    assert count(app, InboundEvent) == 0


@pytest.mark.usefixtures("aftership_shop")
def test_news_naming_no_order_is_422(app: Flask, client: FlaskClient, clock: FakeClock) -> None:
    payload = just_after(clock, load("cn-de-cainiao-delivered"))
    del payload["msg"]["order_id"], payload["msg"]["order_number"]

    problem = assert_problem(post_aftership(client, payload), 422, "No order reference")

    assert "cannot be matched to an order" in problem["detail"]
    assert count(app, InboundEvent) == 0


@pytest.mark.usefixtures("aftership_shop")
def test_a_body_over_the_limit_is_413(app: Flask, client: FlaskClient, clock: FakeClock) -> None:
    payload = just_after(clock, load("cn-de-cainiao-delivered"))
    payload["padding"] = "x" * app.config["WEBHOOK_MAX_BYTES"]

    assert_problem(post_aftership(client, payload), 413)
    assert count(app, InboundEvent) == 0


def test_a_shop_without_an_aftership_secret_is_403(
    app: Flask, client: FlaskClient, clock: FakeClock, shopify_shop: Shop
) -> None:
    payload = just_after(clock, load("cn-de-cainiao-delivered"))

    problem = assert_problem(post_aftership(client, payload), 403, "AfterShip not set up")

    assert "notifier shop set lumen aftership_secret=" in problem["detail"]
    assert count(app, InboundEvent) == 0


@pytest.mark.usefixtures("aftership_shop")
@pytest.mark.parametrize("slug", ["nobody", "Lumen", "lu_men", "a" * 65, "lumen%0A"])
def test_an_unknown_or_impossible_slug_is_404(
    app: Flask, client: FlaskClient, clock: FakeClock, slug: str
) -> None:
    payload = just_after(clock, load("cn-de-cainiao-delivered"))

    assert_problem(post_aftership(client, payload, slug=slug), 404, "Unknown shop")
    assert count(app, InboundEvent) == 0


@pytest.mark.usefixtures("placed_order")
def test_the_same_event_id_twice_changes_nothing(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    payload = just_after(clock, truncated(load("cn-de-cainiao-delivered"), 10))

    def state() -> tuple[Any, ...]:
        with services(app).sessions() as session:
            shipment = session.scalars(select(Shipment)).one()
            messages = session.execute(
                select(Message.id, Message.kind, Message.state).order_by(Message.id)
            ).all()
            events = session.scalar(select(func.count()).select_from(InboundEvent))
            return (shipment.journey, shipment.milestone, shipment.updated_at, messages, events)

    first = post_aftership(client, payload)
    before = state()
    clock.advance(timedelta(minutes=30))  # AfterShip retries the same event later
    again = post_aftership(client, payload)

    assert first.json["status"] == "accepted"
    assert again.status_code == 200
    assert again.json["status"] == "duplicate"
    assert again.json["event_id"] == first.json["event_id"]
    assert state() == before


@pytest.mark.usefixtures("placed_order")
def test_an_event_that_is_not_news_is_recorded_and_ignored(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    payload = just_after(clock, load("tracking-pending-time"))

    response = post_aftership(client, payload)

    assert response.status_code == 200
    assert response.json["status"] == "ignored"
    with services(app).sessions() as session:
        event = session.scalars(
            select(InboundEvent).where(InboundEvent.source == "aftership")
        ).one()
    assert event.outcome is EventOutcome.IGNORED
    assert event.topic == "tracking_pending_time"
    assert event.order_id is None
    assert count(app, Shipment) == 0


# --- end to end: the journey plans the buyer's emails -----------------------------------------


@pytest.mark.usefixtures("placed_order")
def test_end_to_end_aftership_news_plans_buyer_messages(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    """Three deliveries of one cross-border journey: each plans its news, and news still waiting
    for the buyer's window when newer news arrives is superseded, never sent out of order."""
    journey = load("cn-de-cainiao-delivered")
    deliveries = [truncated(journey, 2), truncated(journey, 10), journey]
    for number, payload in enumerate(deliveries):
        payload["event_id"] = f"6f1c2b7e-4d9a-4b35-9e2f-8a0d3c5e7b{number:02d}"
        newest = max(
            datetime.fromisoformat(checkpoint["checkpoint_time"])
            for checkpoint in payload["msg"]["checkpoints"]
        )
        payload["ts"] = int(newest.timestamp()) + 60
        # Nothing is dispatched in between, so each message is still waiting at the next news.
        assert post_aftership(client, just_after(clock, payload)).json["status"] == "accepted"

    with services(app).sessions() as session:
        shipment = session.scalars(select(Shipment)).one()
        news = session.execute(
            select(Message.kind, Message.state)
            .where(Message.shipment_id == shipment.id, Message.kind != "shipment_delayed")
            .order_by(Message.created_at, Message.id)
        ).all()
    assert (shipment.carrier, shipment.tracking_number) == ("Cainiao", "LP00698765432101")
    assert (shipment.origin_country, shipment.destination_country) == ("CN", "DE")
    assert shipment.milestone == "delivered"
    assert [step["milestone"] for step in shipment.journey][-1] == "delivered"
    assert [(kind, state) for kind, state in news] == [
        ("shipment_shipped", MessageState.SUPERSEDED),
        ("customs_action", MessageState.SUPERSEDED),
        ("delivered", MessageState.SCHEDULED),
    ]


@pytest.mark.usefixtures("aftership_shop")
def test_news_for_an_order_not_known_yet_is_stored_and_answered_2xx(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    """AfterShip may be quicker than the storefront: the news is kept, never a 500."""
    payload = just_after(clock, load("cn-de-cainiao-delivered"))

    response = post_aftership(client, payload)

    assert response.status_code == 200, response.get_data(as_text=True)
    with services(app).sessions() as session:
        event = session.scalars(select(InboundEvent)).one()
    assert event.order_id is None
    assert "no order '5523487293612' / '#1001' is known" in event.outcome_detail
