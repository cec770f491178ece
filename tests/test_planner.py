"""Pure timing: the first instant inside a kind's window in the buyer's own day, DST included."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
import pytz
from hypothesis import given, settings
from hypothesis import strategies as st

from notifier.planner import Window, plan
from notifier.policies import DEFAULTS

DAYTIME = Window(time(9), time(21))


def local(zone: str, *args: int) -> datetime:
    wall = datetime(*args)  # noqa: DTZ001 - a wall time, localized on the next line
    return pytz.timezone(zone).localize(wall, is_dst=None).astimezone(UTC)


def test_an_immediate_kind_goes_at_once() -> None:
    moment = datetime(2026, 11, 23, 2, 40, tzinfo=UTC)

    assert plan(moment, "Europe/Berlin", None).due_at == moment
    assert plan(moment, "Europe/Berlin", None).reason == "immediate kind: sent at once"


def test_late_evening_in_berlin_waits_for_nine_next_morning() -> None:
    result = plan(local("Europe/Berlin", 2026, 11, 23, 23, 40), "Europe/Berlin", DAYTIME)

    assert result.due_at == local("Europe/Berlin", 2026, 11, 24, 9, 0)
    assert result.reason == (
        "23:40 Europe/Berlin is outside 09:00-21:00; sent at the window's opening, "
        "09:00 Europe/Berlin on 2026-11-24"
    )


def test_early_morning_waits_for_the_same_days_opening() -> None:
    result = plan(local("Asia/Tokyo", 2026, 11, 23, 6, 5), "Asia/Tokyo", DAYTIME)

    assert result.due_at == local("Asia/Tokyo", 2026, 11, 23, 9, 0)


def test_inside_the_window_goes_at_once() -> None:
    moment = local("America/Sao_Paulo", 2026, 11, 23, 14, 0)

    assert plan(moment, "America/Sao_Paulo", DAYTIME).due_at == moment


def test_the_window_end_is_exclusive() -> None:
    result = plan(local("Europe/Berlin", 2026, 11, 23, 21, 0), "Europe/Berlin", DAYTIME)

    assert result.due_at == local("Europe/Berlin", 2026, 11, 24, 9, 0)


def test_an_opening_inside_the_spring_forward_gap_moves_to_the_gaps_end() -> None:
    result = plan(
        local("Europe/Berlin", 2026, 3, 29, 0, 30), "Europe/Berlin", Window(time(2, 30), time(21))
    )

    assert result.due_at == local("Europe/Berlin", 2026, 3, 29, 3, 0)
    assert "02:30 does not exist on 2026-03-29" in result.reason


def test_lord_howes_half_hour_gap() -> None:
    result = plan(
        local("Australia/Lord_Howe", 2026, 10, 4, 0, 30),
        "Australia/Lord_Howe",
        Window(time(2, 15), time(21)),
    )

    assert result.due_at == local("Australia/Lord_Howe", 2026, 10, 4, 2, 30)


def test_an_opening_that_happens_twice_takes_the_earlier() -> None:
    result = plan(
        datetime(2026, 10, 24, 23, 0, tzinfo=UTC), "Europe/Berlin", Window(time(2, 30), time(21))
    )

    assert result.due_at == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    assert "occurs twice" in result.reason


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        plan(datetime(2026, 11, 23, 9, 0), "UTC", DAYTIME)  # noqa: DTZ001


US_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "America/Adak",
    "Pacific/Honolulu",
)


def test_phoenix_and_new_york_on_the_night_new_york_falls_back() -> None:
    first_one_thirty = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT in New York
    second_one_thirty = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST, an hour later

    assert plan(first_one_thirty, "America/New_York", DAYTIME).due_at == local(
        "America/New_York", 2026, 11, 1, 9, 0
    )
    assert plan(second_one_thirty, "America/New_York", DAYTIME).due_at == datetime(
        2026, 11, 1, 14, 0, tzinfo=UTC
    )
    # Phoenix keeps MST all year: its 09:00 is two hours after New York's that morning.
    assert plan(second_one_thirty, "America/Phoenix", DAYTIME).due_at == datetime(
        2026, 11, 1, 16, 0, tzinfo=UTC
    )


def test_manaus_and_sao_paulo_are_an_hour_apart() -> None:
    moment = datetime(2026, 11, 24, 0, 30, tzinfo=UTC)  # 21:30 in São Paulo, 20:30 in Manaus

    assert plan(moment, "America/Manaus", DAYTIME).due_at == moment
    assert plan(moment, "America/Sao_Paulo", DAYTIME).due_at == local(
        "America/Sao_Paulo", 2026, 11, 24, 9, 0
    )


def test_a_us_buyer_without_a_state_gets_an_hour_good_in_every_us_zone() -> None:
    moment = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)  # 08:00 New York, 03:00 Honolulu

    result = plan(moment, US_ZONES, DAYTIME)

    assert result.due_at == datetime(2026, 11, 23, 19, 0, tzinfo=UTC)  # 09:00 Honolulu
    for zone in US_ZONES:
        assert DAYTIME.contains(result.due_at.astimezone(pytz.timezone(zone)).time())
    assert result.reason.startswith("08:00 America/New_York (and 7 other zones): the buyer may be")


def test_zones_too_far_apart_for_a_common_hour_suit_the_first() -> None:
    evening = Window(time(18), time(20))
    zones = ("Europe/Moscow", "Asia/Kamchatka")

    result = plan(datetime(2026, 11, 23, tzinfo=UTC), zones, evening)

    assert result.due_at == local("Europe/Moscow", 2026, 11, 23, 18, 0)
    assert result.reason.startswith(
        "no hour inside 18:00-20:00 suits all of Europe/Moscow, Asia/Kamchatka; "
        "planned for Europe/Moscow, where most of them live: 03:00 Europe/Moscow is outside"
    )


def test_a_day_rule_that_skips_everything_is_an_error_not_a_hang() -> None:
    with pytest.raises(ValueError, match="no instant within 14 days"):
        plan(datetime(2026, 11, 23, tzinfo=UTC), "UTC", DAYTIME, skip=lambda day, zone: "closed")


def test_skipped_days_are_passed_over_and_named() -> None:
    evening = Window(time(18), time(20))
    christmas = {date(2026, 12, 25): "Christmas Day", date(2026, 12, 26): "Second Day"}

    result = plan(
        local("Europe/Berlin", 2026, 12, 25, 18, 30),
        "Europe/Berlin",
        evening,
        skip=lambda day, _zone: christmas.get(day),
    )

    assert result.due_at == local("Europe/Berlin", 2026, 12, 27, 18, 0)
    assert result.reason == (
        "18:30 Europe/Berlin is inside 18:00-20:00; sent at the window's opening, "
        "18:00 Europe/Berlin on 2026-12-27; skipped 2026-12-25 Christmas Day, 2026-12-26 Second Day"
    )


def test_a_window_must_open_before_it_closes() -> None:
    with pytest.raises(ValueError, match="opens before it closes"):
        Window.parse("21:00-09:00")
    with pytest.raises(ValueError, match="not a window"):
        Window.parse("9 to 5")


# --- the property over every zone -----------------------------------------------------------

COMMON_ZONES = sorted(pytz.common_timezones)
SPAN = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))


def _transitions() -> list[tuple[str, datetime]]:
    """Every DST or offset change of 2026 and 2027 in every common zone.

    pytz keeps them only in a private list; it has no public accessor for them.
    """
    found = []
    for zone in COMMON_ZONES:
        for moment in getattr(pytz.timezone(zone), "_utc_transition_times", []):
            aware = moment.replace(tzinfo=UTC)
            if SPAN[0] <= aware < SPAN[1]:
                found.append((zone, aware))
    return found


TRANSITIONS = _transitions()
WINDOWS = sorted({policy.window for policy in DEFAULTS.values() if policy.window}, key=str)

anywhere = st.tuples(
    st.sampled_from(COMMON_ZONES),
    st.datetimes(
        min_value=datetime(2026, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
        max_value=datetime(2027, 12, 31, 23, 59),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
)
near_a_transition = st.builds(
    lambda pair, minutes: (pair[0], pair[1] + timedelta(minutes=minutes)),
    st.sampled_from(TRANSITIONS),
    st.integers(-26 * 60, 26 * 60),
)


def test_there_are_transitions_to_test() -> None:
    assert len(TRANSITIONS) > 200
    assert ("Australia/Lord_Howe", datetime(2026, 4, 4, 15, 0, tzinfo=UTC)) in TRANSITIONS


@settings(max_examples=1500, deadline=None)
@given(case=st.one_of(anywhere, near_a_transition), window=st.sampled_from(WINDOWS))
def test_due_is_never_early_always_inside_the_earliest_and_within_a_day(
    case: tuple[str, datetime], window: Window
) -> None:
    zone, moment = case
    tz = pytz.timezone(zone)

    due = plan(moment, zone, window).due_at

    assert due >= moment
    assert window.contains(due.astimezone(tz).time())
    earlier = due - timedelta(minutes=1)
    assert due == moment or not window.contains(earlier.astimezone(tz).time())
    assert due - moment <= timedelta(hours=25)


def test_every_transition_of_2026_and_2027_in_every_zone() -> None:
    """Not a sample: each offset change, approached from before and after, in every window."""
    failures = []
    for zone, transition in TRANSITIONS:
        tz = pytz.timezone(zone)
        for minutes in (-90, -31, 0, 29, 90):
            moment = transition + timedelta(minutes=minutes)
            for window in WINDOWS:
                due = plan(moment, zone, window).due_at
                inside = window.contains(due.astimezone(tz).time())
                earliest = due == moment or not window.contains(
                    (due - timedelta(minutes=1)).astimezone(tz).time()
                )
                if not (moment <= due <= moment + timedelta(hours=25) and inside and earliest):
                    failures.append((zone, moment.isoformat(), str(window), due.isoformat()))
    assert failures == []
