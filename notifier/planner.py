"""When a message may leave: pure functions of (earliest instant, buyer zones, window, day rule).

No database and no clock: the caller passes the instant. Arithmetic happens on UTC instants;
local wall times are made only through pytz's localize(is_dst=None)/astimezone, and the two DST
accidents are decided deliberately: a wall time skipped by spring-forward becomes the first
instant after the gap, a wall time that happens twice takes the earlier one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pytz

# How far ahead a window is looked for: enough for a run of holidays around a weekend.
HORIZON_DAYS = 14

# (local date, zone) -> why that day is skipped (a public holiday, a weekend), or None.
DayRule = Callable[[date, str], str | None]


@dataclass(frozen=True)
class Window:
    """Buyer-local hours in which a kind may be delivered: [start, end), within one day."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise ValueError(f"a window opens before it closes: {self}")

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, wall: time) -> bool:
        return self.start <= wall < self.end

    @classmethod
    def parse(cls, text: str) -> Window:
        """`09:00-21:00`."""
        try:
            start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
        except ValueError as error:
            raise ValueError(f"{text!r} is not a window like 09:00-21:00") from error
        return cls(start, end)


@dataclass(frozen=True)
class Plan:
    due_at: datetime
    reason: str


def plan(
    earliest: datetime,
    zones: str | Sequence[str],
    window: Window | None,
    skip: DayRule | None = None,
) -> Plan:
    """The first instant at or after `earliest` inside `window` in every one of `zones`.

    One zone is the usual case; several when the buyer could be in any of them (a country
    spanning zones, an address without its state), so only an instant safe in all will do.
    """
    if earliest.tzinfo is None:
        raise ValueError("plan() needs an aware instant")
    zones = (zones,) if isinstance(zones, str) else tuple(zones)
    if not zones:
        raise ValueError("plan() needs at least one zone")
    earliest = earliest.astimezone(UTC)
    if window is None:
        return Plan(earliest, "immediate kind: sent at once")
    found = _first_fit(earliest, zones, window, skip)
    if found is None and len(zones) > 1:
        # Zones too far apart to share an hour of this window: suit the most populous one.
        primary = _first_fit(earliest, zones[:1], window, skip)
        if primary is not None:
            due, skipped = primary
            return Plan(
                due,
                f"no hour inside {window} suits all of {', '.join(zones)}; planned for "
                f"{zones[0]}, where most of them live: "
                + _reason(earliest, due, zones[:1], window, skipped),
            )
    if found is None:
        raise ValueError(f"no instant within {HORIZON_DAYS} days is inside {window} in {zones}")
    due, skipped = found
    return Plan(due, _reason(earliest, due, zones, window, skipped))


def _first_fit(
    earliest: datetime, zones: Sequence[str], window: Window, skip: DayRule | None
) -> tuple[datetime, dict[tuple[date, str], str]] | None:
    tzs = [pytz.timezone(zone) for zone in zones]
    skipped: dict[tuple[date, str], str] = {}
    for candidate in _candidates(earliest, tzs, window):
        if all(_open_at(candidate, tz, window, skip, skipped) for tz in tzs):
            return candidate, skipped
    return None


def _candidates(
    earliest: datetime, tzs: Sequence[pytz.BaseTzInfo], window: Window
) -> list[datetime]:
    """`earliest` and every later window opening: the answer is always one of these."""
    openings = {earliest}
    for tz in tzs:
        first_day = earliest.astimezone(tz).date() - timedelta(days=1)
        for offset in range(HORIZON_DAYS + 2):
            opening = local_instant(tz, first_day + timedelta(days=offset), window.start)[0]
            if opening > earliest:
                openings.add(opening)
    return sorted(openings)


def _open_at(
    instant: datetime,
    tz: pytz.BaseTzInfo,
    window: Window,
    skip: DayRule | None,
    skipped: dict[tuple[date, str], str],
) -> bool:
    day = instant.astimezone(tz).date()
    opens = local_instant(tz, day, window.start)[0]
    closes = local_instant(tz, day, window.end)[0]
    if not opens <= instant < closes:
        return False
    if skip is not None and (why := skip(day, tz.zone or "")) is not None:
        skipped[(day, tz.zone or "")] = why
        return False
    return True


def local_instant(tz: pytz.BaseTzInfo, day: date, wall: time) -> tuple[datetime, str]:
    """A local wall time on a day as a UTC instant, and what DST made of it (or "")."""
    naive = datetime.combine(day, wall)
    try:
        return tz.localize(naive, is_dst=None).astimezone(UTC), ""
    except pytz.NonExistentTimeError:
        # Skipped by spring-forward: step back from just after the gap to where the offset changed.
        instant = tz.localize(naive, is_dst=False).astimezone(UTC)
        after = instant.astimezone(tz).utcoffset()
        for _ in range(24 * 60):
            earlier = instant - timedelta(minutes=1)
            if earlier.astimezone(tz).utcoffset() != after:
                break
            instant = earlier
        return instant, f"{wall:%H:%M} does not exist on {day.isoformat()}; the gap ends then"
    except pytz.AmbiguousTimeError:
        instant = tz.localize(naive, is_dst=True).astimezone(UTC)
        return instant, f"{wall:%H:%M} occurs twice on {day.isoformat()}; the earlier one"


def _reason(
    earliest: datetime,
    due: datetime,
    zones: Sequence[str],
    window: Window,
    skipped: dict[tuple[date, str], str],
) -> str:
    zone = zones[0]
    tz = pytz.timezone(zone)
    local = earliest.astimezone(tz)
    where = f"{local:%H:%M} {zone}" + (
        f" (and {len(zones) - 1} other zones)" if len(zones) > 1 else ""
    )
    days_skipped = sorted({f"{day.isoformat()} {why}" for (day, _), why in skipped.items()})
    skipping = f"; skipped {', '.join(days_skipped)}" if days_skipped else ""
    if due == earliest:
        return f"{where} is inside {window}; sent at once"
    due_local = due.astimezone(tz)
    note = local_instant(tz, due_local.date(), window.start)[1]
    dst = f" ({note})" if note and len(zones) == 1 else ""
    if len(zones) == 1:
        what = "is inside" if _inside(local, window) else "is outside"
        return (
            f"{where} {what} {window}; sent at the window's opening, "
            f"{due_local:%H:%M} {zone} on {due_local.date().isoformat()}{dst}{skipping}"
        )
    return (
        f"{where}: the buyer may be in any of {', '.join(zones)}; sent at the first instant inside "
        f"{window} in all of them, {due_local:%H:%M} {zone} on {due_local.date().isoformat()}{skipping}"
    )


def _inside(local: datetime, window: Window) -> bool:
    return window.contains(local.time().replace(tzinfo=None))
