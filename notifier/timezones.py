"""Which time zone a buyer lives in, and why we think so.

`resolve` walks a short chain of rules and records which one won, so support agents can see
where an email's hour came from:

1. the storefront's explicit IANA zone, if it is a real one;
2. a country whose zones all keep the same offsets: that country's zone;
3. a country with several offsets and a state/province we recognise: that region's zones
   (from ``data/region_zones.tsv``, a reviewed table);
4. such a country without a usable region: one zone per offset pattern, to be used as a window
   that is decent in all of them;
5. otherwise the shop's default.

Pure: no database, no clock. The table is read on first use, not at import.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources

import pytz

TABLE = "region_zones.tsv"
COUNTRY_WIDE = "*"


@dataclass(frozen=True)
class ZoneChoice:
    zones: tuple[str, ...]  # one zone; or several when only a window safe in all of them will do
    source: str  # human-readable, stored and shown to support agents

    @property
    def zone(self) -> str:
        return self.zones[0]


@dataclass(frozen=True)
class RegionRow:
    """One row of the region table."""

    country: str
    code: str  # ISO 3166-2 suffix, or "*" for the country-wide row
    name: str
    zones: tuple[str, ...]
    aliases: tuple[str, ...]
    line: int

    @property
    def label(self) -> str:
        return f"{self.country}-{self.code} ({self.name})"


class RegionTableError(ValueError):
    """The region table is malformed; raised on first use, naming the offending line."""


@dataclass(frozen=True)
class RegionTable:
    rows: tuple[RegionRow, ...]
    country_wide: Mapping[str, RegionRow]  # country -> its "*" row
    by_key: Mapping[tuple[str, str], RegionRow]  # (country, normalised code/alias/name) -> row


def _key(text: str) -> str:
    """Fold case, accents and punctuation: "São Paulo", "sao-paulo" and "SAO PAULO" agree."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed.casefold() if ch.isalnum())


def _split(cell: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in cell.split(",") if part.strip())


def parse_table(text: str, origin: str = TABLE) -> RegionTable:
    rows: list[RegionRow] = []
    country_wide: dict[str, RegionRow] = {}
    by_key: dict[tuple[str, str], RegionRow] = {}
    seen: dict[tuple[str, str], RegionRow] = {}

    def fail(line: int, message: str) -> RegionTableError:
        return RegionTableError(f"{origin}:{line}: {message}")

    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        cells = raw.split("\t")
        if len(cells) == 4:
            cells.append("")
        if len(cells) != 5:
            raise fail(number, f"expected 5 tab-separated columns, found {len(cells)}")
        country, code, name = (cell.strip() for cell in cells[:3])
        zones, aliases = _split(cells[3]), _split(cells[4])
        if len(country) != 2 or not country.isascii() or not country.isupper():
            raise fail(number, f"country {country!r} is not an ISO 3166-1 alpha-2 code")
        if not code or not name:
            raise fail(number, "code and name must not be empty")
        if not zones:
            raise fail(number, f"{country}-{code} lists no zones")
        unknown = [zone for zone in zones if zone not in pytz.all_timezones_set]
        if unknown:
            raise fail(number, f"{country}-{code}: not IANA time zones known to pytz: {unknown}")
        if len(set(zones)) != len(zones):
            raise fail(number, f"{country}-{code} lists a zone twice")
        row = RegionRow(country, code, name, zones, aliases, number)
        if (country, code) in seen:
            raise fail(
                number, f"{country}-{code} already defined on line {seen[country, code].line}"
            )
        seen[country, code] = row
        rows.append(row)
        if code == COUNTRY_WIDE:
            if aliases:
                raise fail(number, f"the {country} * row takes no aliases")
            country_wide[country] = row
            continue
        for label in (code, *aliases, name):
            key = (country, _key(label))
            other = by_key.get(key)
            if other is not None and other is not row:
                raise fail(
                    number, f"{country} {label!r} also matches {other.label} (line {other.line})"
                )
            by_key[key] = row

    for row in rows:
        if row.country not in country_wide:
            raise RegionTableError(f"{origin}:{row.line}: {row.country} has rows but no * row")
    return RegionTable(tuple(rows), country_wide, by_key)


@functools.cache
def region_table() -> RegionTable:
    resource = resources.files("notifier").joinpath("data", TABLE)
    return parse_table(resource.read_text(encoding="utf-8"), origin=f"notifier/data/{TABLE}")


def _region_row(
    table: RegionTable, country: str, candidates: Iterable[str | None]
) -> RegionRow | None:
    for candidate in candidates:
        if not candidate or not candidate.strip():
            continue
        text = candidate.strip()
        forms = [text]
        # "US-AZ" and "AZ" both name Arizona.
        if len(text) > 3 and text[:2].upper() == country and text[2] in "-_ ":
            forms.insert(0, text[3:])
        for form in forms:
            row = table.by_key.get((country, _key(form)))
            if row is not None:
                return row
    return None


def _quote(values: Iterable[str | None]) -> str:
    return " / ".join(repr(v.strip()) for v in values if v and v.strip())


def resolve(
    *,
    explicit: str | None,
    country_code: str | None,
    region_code: str | None,
    region_name: str | None,
    shop_default: str,
) -> ZoneChoice:
    """The buyer's zone(s), with the rule that chose them in `source`."""
    notes: list[str] = []

    def choice(zones: tuple[str, ...], source: str) -> ZoneChoice:
        return ZoneChoice(zones, "; ".join([source, *notes]))

    # 1. What the storefront says, if it names a real zone.
    wanted = (explicit or "").strip()
    if wanted:
        if wanted in pytz.all_timezones_set:
            return ZoneChoice((wanted,), f"storefront: {wanted}")
        notes.append(f"storefront time zone {wanted!r} ignored: not an IANA time zone")

    country = (country_code or "").strip().upper()
    if country and country in pytz.country_timezones:
        table = region_table()
        star = table.country_wide.get(country)
        # 2. One offset pattern for the whole country (the table lists every country with more).
        if star is None:
            return choice((pytz.country_timezones[country][0],), f"country {country}")
        # 3. A state/province we know.
        row = _region_row(table, country, (region_code, region_name))
        if row is not None:
            return choice(row.zones, f"address {row.country}-{row.code} ({row.name})")
        # 4. No usable region: a window safe in every zone of the country.
        given = _quote((region_code, region_name))
        if given:
            notes.append(f"state/province {given} not recognised")
        return choice(
            star.zones,
            f"country {country} has {len(star.zones)} zones and no usable state/province: "
            "a window safe in all of them",
        )
    if country:
        notes.append(f"unknown country {country!r}")

    # 5. The shop's own zone.
    if shop_default in pytz.all_timezones_set:
        return choice((shop_default,), f"shop default {shop_default}")
    notes.append(f"shop default {shop_default!r} is not an IANA time zone")
    return choice(("UTC",), "UTC")
