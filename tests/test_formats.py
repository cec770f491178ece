"""Formats a buyer reads that Babel alone does not settle: spans of delivery days."""

from __future__ import annotations

from datetime import date

import pytest

from notifier.rendering import Formats

THIN = "\u2009"  # CLDR sets a thin space around the dash of a span


@pytest.mark.parametrize(
    ("locale", "same_month", "two_months", "two_years", "one_day"),
    [
        (
            "en",
            f"Dec 1{THIN}–{THIN}4, 2026",
            f"Nov 28{THIN}–{THIN}Dec 4, 2026",
            f"Dec 28, 2026{THIN}–{THIN}Jan 4, 2027",
            "Dec 1, 2026",
        ),
        (
            "de",
            "1.–4. Dez. 2026",
            f"28. Nov.{THIN}–{THIN}4. Dez. 2026",
            f"28. Dez. 2026{THIN}–{THIN}4. Jan. 2027",
            "1. Dez. 2026",
        ),
        (
            "ja",
            "2026年12月1日～4日",
            "2026年11月28日～12月4日",
            "2026年12月28日～2027年1月4日",
            "2026年12月1日",
        ),
        (
            "ar",
            "1–4 ديسمبر 2026",
            "28 نوفمبر – 4 ديسمبر 2026",
            "28 ديسمبر 2026 – 4 يناير 2027",
            "1 ديسمبر 2026",
        ),
    ],
)
def test_a_date_range_is_written_the_locale_s_way(
    locale: str, same_month: str, two_months: str, two_years: str, one_day: str
) -> None:
    fmt = Formats(locale, "Europe/Berlin")

    assert fmt.date_range("2026-12-01", "2026-12-04") == same_month
    assert fmt.date_range("2026-11-28", "2026-12-04") == two_months
    assert fmt.date_range("2026-12-28", "2027-01-04") == two_years
    assert fmt.date_range("2026-12-01", "2026-12-01") == one_day


def test_a_single_day_is_one_date_however_it_is_given() -> None:
    fmt = Formats("en", "UTC")

    assert fmt.date_range("2026-12-01") == "Dec 1, 2026"
    assert fmt.date_range("2026-12-01", None) == "Dec 1, 2026"
    assert fmt.date_range(date(2026, 12, 1), date(2026, 12, 1)) == "Dec 1, 2026"


def test_calendar_days_are_not_moved_into_the_reader_s_timezone() -> None:
    """A carrier's "December 1" is December 1 for a reader at UTC+14 and at UTC-11 alike."""
    ahead = Formats("en", "Pacific/Kiritimati").date_range("2026-12-01", "2026-12-04")
    behind = Formats("en", "Pacific/Pago_Pago").date_range("2026-12-01", "2026-12-04")

    assert ahead == behind == f"Dec 1{THIN}–{THIN}4, 2026"


def test_a_span_given_backwards_still_reads_forwards() -> None:
    fmt = Formats("de", "Europe/Berlin")

    assert fmt.date_range("2026-12-04", "2026-12-01") == "1.–4. Dez. 2026"
