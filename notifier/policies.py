"""When each kind of message may reach a buyer: DESIGN.md's defaults, overridable per shop.

A shop's `settings` hold only its departures from the defaults:
`{"windows": {"delivered": "10:00-20:00"}, "off": ["shipment_delayed"],
"survey": {"delay_days": 5, "skip_weekends": true, "consent": "existing_customer",
"sender": "Lumen <survey@lumen.example>"}}`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from datetime import date, time, timedelta
from functools import cache
from typing import Any

import holidays

from notifier import consent
from notifier.mime import HeaderRefused, parse_mailbox
from notifier.planner import DayRule, Window


@dataclass(frozen=True)
class Policy:
    window: Window | None  # None: immediate, the buyer just acted
    delay: timedelta = timedelta(0)
    skip_holidays: bool = False
    skip_weekends: bool = False
    enabled: bool = True


def _daytime(start: int, end: int) -> Window:
    return Window(time(start), time(end))


DEFAULTS: dict[str, Policy] = {
    "order_confirmation": Policy(None),
    "order_cancelled": Policy(_daytime(8, 21)),
    "shipment_shipped": Policy(_daytime(9, 21)),
    "departed_origin": Policy(_daytime(9, 21)),
    "arrived_destination": Policy(_daytime(9, 21)),
    "customs_action": Policy(_daytime(8, 21)),
    "out_for_delivery": Policy(_daytime(7, 21)),
    "delivery_failed": Policy(_daytime(8, 21)),
    "ready_for_pickup": Policy(_daytime(8, 21)),
    "delivered": Policy(_daytime(9, 21)),
    "shipment_exception": Policy(_daytime(9, 21)),
    "shipment_delayed": Policy(_daytime(10, 20)),
    "delivery_survey": Policy(_daytime(18, 20), delay=timedelta(days=3), skip_holidays=True),
    # To the shop's own support inbox, at once: an unhappy buyer is answered before a dispute.
    "survey_alert": Policy(None),
}
SURVEY = "delivery_survey"
# No carrier news for this long while a parcel travels: the buyer gets a reassurance.
STALL_DAYS = 7


class SettingError(ValueError):
    """A shop setting that cannot be stored, said so an operator can fix it."""


def for_shop(kind: str, settings: dict[str, Any]) -> Policy:
    policy = DEFAULTS[kind]
    window = settings.get("windows", {}).get(kind)
    if window is not None:
        policy = replace(policy, window=None if window == "immediate" else Window.parse(window))
    if kind in settings.get("off", []):
        policy = replace(policy, enabled=False)
    if kind == SURVEY:
        survey = settings.get("survey", {})
        if "delay_days" in survey:
            policy = replace(policy, delay=timedelta(days=survey["delay_days"]))
        if "skip_weekends" in survey:
            policy = replace(policy, skip_weekends=survey["skip_weekends"])
    return policy


def stall_after(settings: dict[str, Any]) -> timedelta:
    return timedelta(days=settings.get("stall", {}).get("days", STALL_DAYS))


def apply_setting(settings: dict[str, Any], key: str, value: str) -> dict[str, Any]:
    """A new settings mapping with one `shop set` KEY=VALUE applied; the old one is untouched."""
    section, _, name = key.partition(".")
    updated: dict[str, Any] = copy.deepcopy(settings)
    if section == "window" and name in DEFAULTS:
        if value != "immediate":
            try:
                Window.parse(value)
            except ValueError as error:
                raise SettingError(str(error)) from error
        updated.setdefault("windows", {})[name] = value
    elif section == "kind" and name in DEFAULTS and value in ("on", "off"):
        off = [kind for kind in updated.get("off", []) if kind != name]
        updated["off"] = off + ([name] if value == "off" else [])
    elif key == "survey.delay_days" and value.isdigit() and 0 <= int(value) <= 60:
        updated.setdefault("survey", {})["delay_days"] = int(value)
    elif key == "survey.skip_weekends" and value in ("true", "false"):
        updated.setdefault("survey", {})["skip_weekends"] = value == "true"
    elif key == "survey.consent" and value in consent.MODES:
        updated.setdefault("survey", {})["consent"] = value
    elif key == "survey.sender":
        try:
            parse_mailbox("survey.sender", value)
        except HeaderRefused as error:
            raise SettingError(str(error)) from error
        updated.setdefault("survey", {})["sender"] = value
    elif key == "stall.days" and value.isdigit() and 1 <= int(value) <= 60:
        updated.setdefault("stall", {})["days"] = int(value)
    else:
        raise SettingError(
            f"cannot set {key}={value!r}: use window.KIND=HH:MM-HH:MM (or immediate), "
            "kind.KIND=on|off, survey.delay_days=0..60, survey.skip_weekends=true|false, "
            "stall.days=1..60; "
            f"kinds: {', '.join(DEFAULTS)}"
        )
    return updated


def day_rule(policy: Policy, country: str | None, region: str | None) -> DayRule | None:
    """Which buyer-local days a policy skips: public holidays where the buyer is, weekends."""
    if not (policy.skip_holidays or policy.skip_weekends):
        return None

    def skip(day: date, _zone: str) -> str | None:
        if policy.skip_weekends and day.weekday() >= 5:
            return day.strftime("%A")
        if policy.skip_holidays and country:
            calendar = _holidays(country, region, day.year)
            if name := calendar.get(day):
                where = f"{country}-{calendar.subdiv}" if calendar.subdiv else country
                return f"{name} ({where} public holiday)"
        return None

    return skip


@cache
def _holidays(country: str, region: str | None, year: int) -> holidays.HolidayBase:
    """The public holidays of a country (and region, when the package knows it) in one year."""
    try:
        return holidays.country_holidays(country, subdiv=region, years=year)
    except NotImplementedError:  # an unknown region, or a country the package lacks
        try:
            return holidays.country_holidays(country, years=year)
        except NotImplementedError:
            return holidays.HolidayBase()
