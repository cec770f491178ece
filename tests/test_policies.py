"""Delivery policies: DESIGN.md's defaults, a shop's overrides, and the days a survey skips."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest

from notifier.planner import Window
from notifier.policies import DEFAULTS, SettingError, apply_setting, day_rule, for_shop


def test_the_defaults_are_designs_table() -> None:
    assert DEFAULTS["order_confirmation"].window is None
    assert str(DEFAULTS["out_for_delivery"].window) == "07:00-21:00"
    assert str(DEFAULTS["customs_action"].window) == "08:00-21:00"
    assert str(DEFAULTS["shipment_delayed"].window) == "10:00-20:00"
    survey = DEFAULTS["delivery_survey"]
    assert (str(survey.window), survey.delay, survey.skip_holidays) == (
        "18:00-20:00",
        timedelta(days=3),
        True,
    )


def test_a_shop_overrides_windows_kinds_and_the_survey() -> None:
    settings: dict = {}
    for key, value in [
        ("window.delivered", "10:00-19:30"),
        ("window.order_confirmation", "09:00-21:00"),
        ("kind.shipment_delayed", "off"),
        ("survey.delay_days", "5"),
        ("survey.skip_weekends", "true"),
    ]:
        settings = apply_setting(settings, key, value)

    assert for_shop("delivered", settings).window == Window(time(10), time(19, 30))
    assert for_shop("order_confirmation", settings).window == Window(time(9), time(21))
    assert for_shop("shipment_delayed", settings).enabled is False
    survey = for_shop("delivery_survey", settings)
    assert (survey.delay, survey.skip_weekends) == (timedelta(days=5), True)
    assert for_shop("out_for_delivery", settings) == DEFAULTS["out_for_delivery"]


def test_turning_a_kind_back_on_and_going_immediate() -> None:
    settings = apply_setting({}, "kind.delivered", "off")
    settings = apply_setting(settings, "kind.delivered", "on")
    settings = apply_setting(settings, "window.delivered", "immediate")

    assert for_shop("delivered", settings).enabled is True
    assert for_shop("delivered", settings).window is None


def test_apply_setting_leaves_the_original_untouched() -> None:
    original = {"windows": {"delivered": "10:00-20:00"}}

    apply_setting(original, "window.delivered", "11:00-20:00")

    assert original == {"windows": {"delivered": "10:00-20:00"}}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("window.delivered", "21:00-09:00"),
        ("window.delivered", "soon"),
        ("window.teleported", "09:00-21:00"),
        ("kind.delivered", "maybe"),
        ("survey.delay_days", "-1"),
        ("survey.delay_days", "99"),
        ("survey.skip_weekends", "yes"),
        ("colour.theme", "blue"),
    ],
)
def test_nonsense_settings_are_refused(key: str, value: str) -> None:
    with pytest.raises(SettingError):
        apply_setting({}, key, value)


def test_the_survey_skips_the_buyers_public_holidays() -> None:
    skip = day_rule(DEFAULTS["delivery_survey"], "DE", "BY")
    assert skip is not None

    assert skip(date(2026, 12, 25), "Europe/Berlin") == "Christmas Day (DE-BY public holiday)"
    assert skip(date(2026, 1, 6), "Europe/Berlin") == "Epiphany (DE-BY public holiday)"
    assert skip(date(2026, 11, 24), "Europe/Berlin") is None


def test_a_region_the_holiday_data_lacks_falls_back_to_the_country() -> None:
    skip = day_rule(DEFAULTS["delivery_survey"], "DE", "ZZ")
    assert skip is not None

    assert skip(date(2026, 10, 3), "Europe/Berlin") == "German Unity Day (DE public holiday)"
    assert skip(date(2026, 1, 6), "Europe/Berlin") is None  # Epiphany is Bavarian, not German


def test_weekends_are_skipped_only_when_the_shop_says_so() -> None:
    survey = for_shop("delivery_survey", apply_setting({}, "survey.skip_weekends", "true"))
    skip = day_rule(survey, None, None)
    assert skip is not None

    assert skip(date(2026, 11, 28), "UTC") == "Saturday"
    assert skip(date(2026, 11, 27), "UTC") is None
    assert day_rule(DEFAULTS["delivered"], "DE", None) is None
