"""The region table and the zone resolver: pure, no database, no clock."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
import pytz
from hypothesis import given, settings
from hypothesis import strategies as st

from notifier.timezones import (
    RegionRow,
    RegionTableError,
    ZoneChoice,
    parse_table,
    region_table,
    resolve,
)

SAMPLES = [datetime(year, month, 15, 12) for year in (2026, 2027) for month in range(1, 13)]  # noqa: DTZ001 - naive on purpose: pytz takes wall times

# ISO 3166-2:US lists these outlying areas as US subdivisions, but zone.tab files their zones
# under their own ISO 3166-1 codes. Their rows may use exactly the zones of that code.
OWN_COUNTRY_CODE = {("US", code): code for code in ("AS", "GU", "MP", "PR", "UM", "VI")}

US_STATES = """
    AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO
    MT NE NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY
"""


def pattern(zone: str) -> tuple[timedelta | None, ...]:
    tz = pytz.timezone(zone)
    return tuple(tz.utcoffset(moment, is_dst=False) for moment in SAMPLES)


def multi_offset_countries() -> set[str]:
    return {
        country
        for country, zones in pytz.country_timezones.items()
        if len({pattern(zone) for zone in zones}) > 1
    }


ROWS = region_table().rows
SUBDIVISIONS = [row for row in ROWS if row.code != "*"]


def codes(country: str) -> set[str]:
    return {row.code for row in SUBDIVISIONS if row.country == country}


def by_code(country: str, code: str) -> RegionRow:
    (row,) = [r for r in ROWS if (r.country, r.code) == (country, code)]
    return row


def address(
    country: str | None,
    region_code: str | None = None,
    region_name: str | None = None,
    explicit: str | None = None,
) -> ZoneChoice:
    return resolve(
        explicit=explicit,
        country_code=country,
        region_code=region_code,
        region_name=region_name,
        shop_default="Europe/Berlin",
    )


# --- the table ------------------------------------------------------------------------------


def test_the_table_covers_exactly_the_countries_with_several_offsets() -> None:
    # Recomputed from the installed pytz, so a future split (or merge) fails here.
    assert set(region_table().country_wide) == multi_offset_countries()


def test_every_zone_exists_and_is_a_common_name() -> None:
    for row in ROWS:
        for zone in row.zones:
            assert zone in pytz.common_timezones_set, (row.label, zone)


def test_every_zone_belongs_to_its_country() -> None:
    for row in ROWS:
        owner = OWN_COUNTRY_CODE.get((row.country, row.code), row.country)
        assert set(row.zones) <= set(pytz.country_timezones[owner]), row.label


def test_star_rows_hold_one_zone_per_offset_pattern() -> None:
    for country, row in region_table().country_wide.items():
        patterns = [pattern(zone) for zone in row.zones]
        assert len(set(patterns)) == len(patterns), f"{country}: two zones share offsets"
        assert set(patterns) == {pattern(z) for z in pytz.country_timezones[country]}, country


def test_no_duplicate_rows_or_colliding_codes() -> None:
    counts = Counter((row.country, row.code) for row in ROWS)
    assert [key for key, n in counts.items() if n > 1] == []
    for country in region_table().country_wide:
        labels = Counter(
            label.upper()
            for row in SUBDIVISIONS
            if row.country == country
            for label in (row.code, *row.aliases)
        )
        assert [label for label, n in labels.items() if n > 1] == [], country


def test_the_loader_refuses_bad_tables() -> None:
    with pytest.raises(RegionTableError, match=r"x\.tsv:2: .*Mars/Olympus"):
        parse_table("XX\t*\tX\tEurope/Berlin\t\nXX\tA\tA\tMars/Olympus\t\n", origin="x.tsv")
    with pytest.raises(RegionTableError, match="already defined"):
        parse_table("XX\t*\tX\tUTC\t\nXX\tA\tA\tUTC\t\nXX\tA\tB\tUTC\t\n")
    with pytest.raises(RegionTableError, match="also matches"):
        parse_table("XX\t*\tX\tUTC\t\nXX\tA\tA\tUTC\tQ\nXX\tB\tB\tUTC\tQ\n")
    with pytest.raises(RegionTableError, match="no \\* row"):
        parse_table("XX\tA\tA\tUTC\t\n")


def test_subdivision_counts() -> None:
    states = set(US_STATES.split())
    assert len(states) == 50
    assert states | {"DC"} <= codes("US")
    assert codes("US") - states == {"DC", "AS", "GU", "MP", "PR", "UM", "VI"}
    assert len(codes("BR")) == 27
    assert len(codes("MX")) == 32
    assert len(codes("AU")) == 8
    assert len(codes("CA")) == 13
    assert len(codes("RU")) == 83
    assert len(codes("ID")) == 38
    assert {"PD", "PE", "PS", "PT"} <= codes("ID")  # the 2022 Papuan provinces


@pytest.mark.parametrize(
    ("country", "code", "first", "zones"),
    [
        ("US", "AZ", "America/Phoenix", ("America/Phoenix",)),
        ("US", "NY", "America/New_York", None),
        ("US", "IN", "America/Indiana/Indianapolis", None),
        ("BR", "AM", "America/Manaus", None),
        ("BR", "SP", "America/Sao_Paulo", None),
        # Lord Howe Island (~400 people, at most 30 minutes off Sydney) is deliberately not in
        # NSW's row, so a Sydney order keeps its full window; it is in the AU * row.
        ("AU", "NSW", "Australia/Sydney", ("Australia/Sydney", "Australia/Broken_Hill")),
        ("RU", "MOW", "Europe/Moscow", ("Europe/Moscow",)),
        ("RU", "KGD", "Europe/Kaliningrad", ("Europe/Kaliningrad",)),
        ("ES", "CN", "Atlantic/Canary", ("Atlantic/Canary",)),
        ("CN", "XJ", "Asia/Shanghai", ("Asia/Shanghai", "Asia/Urumqi")),
        ("UA", "43", "Europe/Simferopol", ("Europe/Simferopol",)),
        ("EC", "W", "Pacific/Galapagos", ("Pacific/Galapagos",)),
    ],
)
def test_named_regions(country: str, code: str, first: str, zones: tuple[str, ...] | None) -> None:
    choice = address(country, code)
    assert choice.zone == first
    if zones is not None:
        assert choice.zones == zones
    assert choice.source == f"address {country}-{code} ({by_code(country, code).name})"


def test_states_that_span_zones_list_them_all() -> None:
    assert address("US", "TX").zones == ("America/Chicago", "America/Denver")
    assert "America/Chicago" in address("US", "FL").zones
    assert "Australia/Lord_Howe" in address("AU").zones


# --- the resolver ---------------------------------------------------------------------------


def test_arizona_by_full_code_and_any_case() -> None:
    for code in ("US-AZ", "us-az", "az", " AZ "):
        choice = address("us", code)
        assert choice == ZoneChoice(("America/Phoenix",), "address US-AZ (Arizona)")


def test_mexico_by_shopify_alias() -> None:
    for code in ("CDMX", "DF", "MX-CMX"):
        assert address("MX", code).zones == ("America/Mexico_City",)
    assert address("MX", "Q ROO").zones == ("America/Cancun",)
    assert address("MX", "TAMPS").zone == "America/Matamoros"


def test_region_by_name_alone_ignores_case_and_accents() -> None:
    for name in ("São Paulo", "Sao Paulo", "SÃO PAULO", "sao-paulo"):
        choice = address("BR", None, name)
        assert choice.zones == ("America/Sao_Paulo",)
        assert choice.source == "address BR-SP (São Paulo)"
    assert address("CA", "", "Québec").zone == "America/Toronto"


def test_a_us_order_without_a_state_gets_the_eight_zone_window() -> None:
    choice = address("US")
    assert choice.zones == (
        "America/New_York",
        "America/Chicago",
        "America/Denver",
        "America/Phoenix",
        "America/Los_Angeles",
        "America/Anchorage",
        "America/Adak",
        "Pacific/Honolulu",
    )
    assert choice.source == (
        "country US has 8 zones and no usable state/province: a window safe in all of them"
    )


def test_an_unrecognised_state_falls_back_to_the_window_and_says_so() -> None:
    choice = address("US", "Atlantis")
    assert len(choice.zones) == 8
    assert "'Atlantis' not recognised" in choice.source


def test_a_single_offset_country_needs_no_region() -> None:
    assert address("DE", "BY", "Bayern") == ZoneChoice(("Europe/Berlin",), "country DE")
    assert address("JP").zones == ("Asia/Tokyo",)


def test_an_explicit_valid_zone_wins_over_the_address() -> None:
    choice = address("US", "AZ", explicit="America/Denver")
    assert choice == ZoneChoice(("America/Denver",), "storefront: America/Denver")


def test_an_explicit_invalid_zone_is_ignored_and_said_so() -> None:
    choice = address("US", "AZ", explicit="Mars/Olympus_Mons")
    assert choice.zones == ("America/Phoenix",)
    assert choice.source.startswith("address US-AZ (Arizona); ")
    assert "'Mars/Olympus_Mons' ignored" in choice.source
    assert address("DE", explicit="Europe/Berlinn").source == (
        "country DE; storefront time zone 'Europe/Berlinn' ignored: not an IANA time zone"
    )


def test_an_unknown_or_missing_country_gets_the_shop_default() -> None:
    assert address("ZZ", "AZ") == ZoneChoice(
        ("Europe/Berlin",), "shop default Europe/Berlin; unknown country 'ZZ'"
    )
    assert address(None) == ZoneChoice(("Europe/Berlin",), "shop default Europe/Berlin")


def test_a_broken_shop_default_still_yields_a_real_zone() -> None:
    choice = resolve(
        explicit=None, country_code=None, region_code=None, region_name=None, shop_default="Nope"
    )
    assert choice.zones == ("UTC",)
    assert "'Nope'" in choice.source


def code_forms(row: RegionRow) -> st.SearchStrategy[str]:
    plain = [row.code, *row.aliases]
    forms = [*plain, *(f"{row.country}-{c}" for c in plain), *(c.lower() for c in plain)]
    return st.sampled_from(forms)


@settings(max_examples=500, deadline=None)
@given(data=st.data(), row=st.sampled_from(SUBDIVISIONS))
def test_every_row_resolves_to_exactly_its_zones(data: st.DataObject, row: RegionRow) -> None:
    code = data.draw(code_forms(row), label="code")
    choice = address(row.country, code)
    assert choice.zones == row.zones
    assert choice.source == f"address {row.country}-{row.code} ({row.name})"
    assert address(row.country.lower(), None, row.name).zones == row.zones
