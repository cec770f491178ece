"""Shop settings as an operator gives them: checked before they are stored, secrets never echoed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import pytz
from babel import Locale, UnknownLocaleError
from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier import mime, policies
from notifier.models import Platform, Shop, TrackingService
from notifier.sources import standard

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
DOMAIN = re.compile(
    r"^(?=.{1,255}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$"
)
SETTABLE = (
    "sender",
    "support_email",
    "locale",
    "timezone",
    "return_policy_url",
    "domain",
    "secret",
    "aftership_secret",
)


class ShopError(ValueError):
    """A setting that cannot be stored, with the reason in words an operator can act on."""


@dataclass(frozen=True)
class NewShop:
    slug: str
    platform: Platform
    secret: str
    sender: str
    domain: str | None = None
    support_email: str | None = None
    locale: str = "en"
    timezone: str = "UTC"
    return_policy_url: str | None = None


def _email(value: str, what: str) -> str:
    if re.search(r"[\x00-\x1f\x7f]", value) or not re.fullmatch(
        r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+", value
    ):
        raise ShopError(f"{what} {value!r} is not an email address")
    return value


def check_sender(value: str) -> str:
    """A sender the mailer will accept for every email: exactly one mailbox, nothing smuggled."""
    value = value.strip()
    try:
        _name, address = mime.parse_mailbox("the sender", value)
    except mime.HeaderRefused as error:
        raise ShopError(f'{error}; write it as "Shop Name <orders@shop.example>"') from error
    _email(address, "the sender address")
    return value


def check_locale(value: str) -> str:
    try:
        return str(Locale.parse(value.replace("-", "_")))
    except (ValueError, UnknownLocaleError) as error:
        raise ShopError(f"{value!r} is not a locale Babel knows (e.g. en, de, pt_BR)") from error


def check_timezone(value: str) -> str:
    if value not in pytz.all_timezones_set:
        raise ShopError(f"{value!r} is not an IANA timezone (e.g. Europe/Berlin)")
    return value


def check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ShopError(f"{value!r} is not an http(s) URL")
    return value


def check_domain(value: str) -> str:
    domain = value.strip().lower()
    if not DOMAIN.fullmatch(domain):
        raise ShopError(f"{value!r} is not a domain name (e.g. lumen.myshopify.com)")
    return domain


def check_secret(platform: Platform, secret: str) -> str:
    secret = secret.strip()
    if len(secret) < 16:
        raise ShopError("the webhook secret is shorter than 16 characters")
    if platform is Platform.STANDARD:
        try:
            standard.check_secret(secret)
        except ValueError as error:
            raise ShopError(str(error)) from error
    return secret


def add(session: Session, new: NewShop, now: datetime) -> Shop:
    if not SLUG.fullmatch(new.slug):
        raise ShopError(
            "a slug is 1-64 lowercase letters, digits or '-', starting with a letter or digit"
        )
    if new.platform is Platform.SHOPIFY and not new.domain:
        raise ShopError("a Shopify shop needs --domain (its myshopify.com domain)")
    domain = check_domain(new.domain) if new.domain else None
    if session.scalar(select(Shop.id).where(Shop.slug == new.slug)) is not None:
        raise ShopError(f"a shop named {new.slug!r} exists already; use `notifier shop set`")
    if domain and session.scalar(select(Shop.id).where(Shop.domain == domain)) is not None:
        raise ShopError(f"another shop already has the domain {domain!r}")
    shop = Shop(
        slug=new.slug,
        platform=new.platform,
        domain=domain,
        webhook_secrets=[check_secret(new.platform, new.secret)],
        sender=check_sender(new.sender),
        support_email=_email(new.support_email, "the support address")
        if new.support_email
        else None,
        locale=check_locale(new.locale),
        timezone=check_timezone(new.timezone),
        return_policy_url=check_url(new.return_policy_url) if new.return_policy_url else None,
        created_at=now,
    )
    session.add(shop)
    return shop


def update(session: Session, shop: Shop, key: str, value: str) -> str:
    """Change one setting and say what changed (never the secret itself)."""
    if "." in key:  # window.KIND, kind.KIND, survey.*: delivery policies
        try:
            shop.settings = policies.apply_setting(shop.settings, key, value)
        except policies.SettingError as error:
            raise ShopError(str(error)) from error
        return f"{key} = {value}"
    if key == "secret":
        # The new secret signs from now on; the previous one stays valid while senders switch.
        shop.webhook_secrets = [check_secret(shop.platform, value), *shop.webhook_secrets[:1]]
        return "secret replaced; the previous one stays valid until the next change"
    if key == "aftership_secret":
        value = value.strip()
        if len(value) < 16:
            raise ShopError("the AfterShip webhook secret is shorter than 16 characters")
        previous = shop.tracking_secrets.get(TrackingService.AFTERSHIP, [])[:1]
        shop.tracking_secrets = {
            **shop.tracking_secrets,
            TrackingService.AFTERSHIP.value: [value, *previous],
        }
        return "AfterShip secret replaced; the previous one stays valid until the next change"
    if key == "sender":
        shop.sender = check_sender(value)
    elif key == "support_email":
        shop.support_email = _email(value, "the support address") if value else None
    elif key == "locale":
        shop.locale = check_locale(value)
    elif key == "timezone":
        shop.timezone = check_timezone(value)
    elif key == "return_policy_url":
        shop.return_policy_url = check_url(value) if value else None
    elif key == "domain":
        shop.domain = check_domain(value)
    else:
        raise ShopError(
            f"unknown setting {key!r}; settable: {', '.join(SETTABLE)}, "
            "window.KIND, kind.KIND, survey.delay_days, survey.skip_weekends, stall.days"
        )
    return f"{key} = {value}"
