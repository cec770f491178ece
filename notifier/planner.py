"""When a message may leave: pure functions of (earliest instant, buyer timezone, window).

No database, no clock reads: the caller passes the instant. All arithmetic happens in UTC and
local wall times are made only through pytz's localize/astimezone (see research/ecosystem.md §3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import pytz


@dataclass(frozen=True)
class Window:
    """Buyer-local hours in which a kind may be delivered: [start, end)."""

    start: time
    end: time

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, moment: time) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True)
class Plan:
    due_at: datetime
    reason: str


def plan(earliest: datetime, timezone: str, window: Window | None) -> Plan:
    """The first instant at or after `earliest` that falls inside `window` in `timezone`."""
    if earliest.tzinfo is None:
        raise ValueError("plan() needs an aware instant")
    if window is None:
        return Plan(earliest, "immediate kind: sent at once")
    zone = pytz.timezone(timezone)
    local = earliest.astimezone(zone)
    if window.contains(local.time().replace(tzinfo=None)):
        return Plan(earliest, f"{local:%H:%M} {timezone} is inside {window}; sent at once")
    day = local.date() if local.time().replace(tzinfo=None) < window.start else None
    if day is None:
        day = (local + timedelta(days=1)).date()
    opening, adjusted = _local_instant(zone, datetime.combine(day, window.start))
    note = f" ({adjusted})" if adjusted else ""
    return Plan(
        opening.astimezone(UTC),
        f"{local:%H:%M} {timezone} is outside {window}; sent at the window's opening, "
        f"{opening.astimezone(zone):%H:%M} {timezone} on {day.isoformat()}{note}",
    )


def _local_instant(zone: pytz.BaseTzInfo, wall: datetime) -> tuple[datetime, str]:
    """A wall time as a UTC instant, deciding deliberately when DST makes it missing or double."""
    try:
        return zone.localize(wall, is_dst=None).astimezone(pytz.utc), ""
    except pytz.NonExistentTimeError:
        # Skipped by spring-forward: take the first valid instant after the gap, found by
        # stepping back to where the offset changed (gaps are whole minutes, at most hours).
        instant = zone.localize(wall, is_dst=False).astimezone(pytz.utc)
        after = instant.astimezone(zone).utcoffset()
        for _ in range(24 * 60):
            earlier = instant - timedelta(minutes=1)
            if earlier.astimezone(zone).utcoffset() != after:
                break
            instant = earlier
        return instant, f"{wall:%H:%M} does not exist that day; the gap ends then"
    except pytz.AmbiguousTimeError:
        instant = zone.localize(wall, is_dst=True).astimezone(pytz.utc)
        return instant, f"{wall:%H:%M} occurs twice that day; the earlier one"
