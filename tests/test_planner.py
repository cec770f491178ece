"""Pure timing: the first instant inside a kind's window in the buyer's own day, DST included."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
import pytz
from hypothesis import given, settings
from hypothesis import strategies as st

from notifier.planner import Window, plan

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
    assert "02:30 does not exist that day" in result.reason


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


ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "America/Phoenix",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
]


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(2025, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
        max_value=datetime(2028, 12, 31),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    zone=st.sampled_from(ZONES),
    start_hour=st.integers(0, 22),
    length=st.integers(2, 12),  # longer than any DST gap, so an opening can always move inside
)
def test_due_is_never_early_always_inside_and_minimal(
    moment: datetime, zone: str, start_hour: int, length: int
) -> None:
    window = Window(time(start_hour), time(min(start_hour + length, 23), 59))
    due = plan(moment, zone, window).due_at
    tz = pytz.timezone(zone)

    assert due >= moment
    assert window.contains(due.astimezone(tz).time())
    # Minimal: one minute earlier is either before the event or outside the window.
    earlier = due - timedelta(minutes=1)
    assert earlier < moment or not window.contains(earlier.astimezone(tz).time())
