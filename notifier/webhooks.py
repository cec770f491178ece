"""Inbound webhooks, in a fixed order: size, shop, signature, freshness, body; store, apply, plan.

The answer is 2xx only after the raw body, its headers of record and the verdict are committed
together with whatever the news changed (invariant 1); with NOTIFIER_APPLY=deferred, after the
body is committed as pending, for a worker to apply (notifier.applier). Nothing here sends mail.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy.exc import DataError, IntegrityError

from notifier import applier, intake, metrics
from notifier.events import Translation
from notifier.models import EventOutcome, Platform, Shop
from notifier.problems import Problem
from notifier.services import services
from notifier.shop_directory import ShopKeys
from notifier.sources import Envelope, aftership, shopify, standard, woocommerce

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
SOURCES = frozenset({"shopify", "standard", "woocommerce", "aftership"})


@bp.before_request
def _limit_body_size() -> None:
    request.max_content_length = current_app.config["WEBHOOK_MAX_BYTES"]


@bp.after_request
def _count(response: Response) -> Response:
    """Every answer counts, refusals included: by source and verdict (a 200's status)."""
    source = request.path.split("/")[2] if request.path.count("/") >= 2 else "unknown"
    verdict = g.get("verdict") if response.status_code == 200 else None
    metrics.count_webhook(
        source if source in SOURCES else "unknown", verdict or str(response.status_code)
    )
    return response


def _answer(status: str, **fields: object) -> Response:
    g.verdict = status
    return jsonify(status=status, **fields)


def _body() -> bytes:
    return request.get_data(cache=True)


def _shop(platform: Platform | None, column: str, value: str) -> ShopKeys | None:
    """The shop a delivery names, if it is of `platform` (None: any platform)."""
    shop = services().shops.find(column, value)
    if shop is None or (platform is not None and shop.platform is not platform):
        return None
    return shop


def _known_shop(platform: Platform, column: str, value: str) -> ShopKeys:
    shop = _shop(platform, column, value)
    if shop is None:
        raise Problem(404, "Unknown shop", f"No {platform.value} shop has {column} {value!r}.")
    return shop


def _slug(slug: str) -> str:
    if not SLUG.fullmatch(slug):
        raise Problem(404, "Unknown shop", "A shop slug is 1-64 lowercase letters, digits or '-'.")
    return slug


@bp.post("/shopify")
def shopify_delivery() -> Response:
    body = _body()
    shop = _known_shop(Platform.SHOPIFY, "domain", shopify.shop_domain(request.headers))
    envelope = shopify.verify(request.headers, body, shop.webhook_secrets)
    return _accept(shopify.NAME, shop, envelope, shopify.translate(envelope, body), body)


@bp.post("/standard/<slug>")
def standard_delivery(slug: str) -> Response:
    body = _body()
    shop = _known_shop(Platform.STANDARD, "slug", _slug(slug))
    tolerance = timedelta(seconds=current_app.config["STANDARD_WEBHOOK_TOLERANCE_SECONDS"])
    envelope = standard.verify(
        request.headers, body, shop.webhook_secrets, services().clock.now(), tolerance
    )
    return _accept(standard.NAME, shop, envelope, standard.translate(envelope, body), body)


@bp.post("/woocommerce/<slug>")
def woocommerce_delivery(slug: str) -> Response:
    body = _body()
    shop = _known_shop(Platform.WOOCOMMERCE, "slug", _slug(slug))
    envelope = woocommerce.verify(request.headers, body, shop.webhook_secrets)
    if envelope.topic is None:  # the unsigned-looking ping WooCommerce sends on creation
        return _answer("ignored", detail="webhook ping acknowledged; nothing stored")
    return _accept(woocommerce.NAME, shop, envelope, woocommerce.translate(envelope, body), body)


@bp.post("/aftership/<slug>")
def aftership_delivery(slug: str) -> Response:
    """Tracking news for a shop of any platform, signed with the shop's AfterShip secret."""
    body = _body()
    shop = _shop(None, "slug", _slug(slug))
    if shop is None:
        raise Problem(404, "Unknown shop", f"No shop has slug {slug!r}.")
    secrets = shop.aftership_secrets
    if not secrets:
        raise Problem(
            403,
            "AfterShip not set up",
            f"Shop {slug!r} has no AfterShip webhook secret; "
            f"set one with `notifier shop set {slug} aftership_secret=...`.",
        )
    max_age = timedelta(seconds=current_app.config["AFTERSHIP_MAX_AGE_SECONDS"])
    envelope = aftership.verify(request.headers, body, secrets, services().clock.now(), max_age)
    return _accept(aftership.NAME, shop, envelope, aftership.translate(envelope, body), body)


def _accept(
    source: str, shop: ShopKeys, envelope: Envelope, translation: Translation, body: bytes
) -> Response:
    """Store, dedupe, apply and plan in one transaction; a racing twin retries and finds itself."""
    for _ in range(3):
        try:
            return _store_and_apply(source, shop, envelope, translation, body)
        except IntegrityError:
            log.info("concurrent delivery for %s/%s; retrying", source, envelope.delivery_id)
    raise Problem(409, "Conflict", "This delivery raced with another; retry it.")


def _store_and_apply(
    source: str, keys: ShopKeys, envelope: Envelope, translation: Translation, body: bytes
) -> Response:
    svc = services()
    now = svc.clock.now()
    if translation.ignored_because is None and (
        current_app.config["APPLY"] == "deferred" or intake.has_pending(svc.read_engine, keys.id)
    ):  # news behind stored deliveries waits its turn, or it could overtake its own order
        row = intake.pending_row(
            source=source,
            shop_id=keys.id,
            envelope=envelope,
            topic=translation.topic,
            body=body,
            received_at=now,
        )
        try:
            stored = svc.pending.store(row)
        except (IntegrityError, DataError) as refused:
            # Not a race (a twin is taken by ON CONFLICT): the row itself, which our checks
            # should have refused first. Trying again would fail the same way.
            said = str(refused.orig).strip().splitlines()
            reason = (said[0] if said else type(refused.orig).__name__)[:200]
            log.warning(
                "the database refused delivery %s/%s: %s", source, envelope.delivery_id, reason
            )
            raise Problem(
                422,
                "Refused by the database",
                f"This delivery could not be stored as it is ({reason}); nothing was kept.",
            ) from refused
        if not stored.duplicate:
            svc.wake_dispatcher.set()
        return _receipt(stored)
    with svc.sessions.begin() as session:
        shop = session.get(Shop, keys.id)
        if shop is None:  # shops are never deleted; a restore from an older backup could
            raise Problem(404, "Unknown shop", f"Shop {keys.slug!r} is gone.")
        earlier = intake.find_duplicate(session, source, shop, envelope)
        if earlier is not None:
            return _receipt(intake.Stored.of(earlier, duplicate=True))
        verdict = applier.apply_translation(
            session, shop, translation, now=now, locales=svc.renderer.locales
        )
        event = intake.record(
            session,
            source=source,
            shop=shop,
            envelope=envelope,
            topic=translation.topic,
            body=body,
            received_at=now,
            verdict=verdict,
        )
    if verdict.planned:
        svc.wake_dispatcher.set()
    return _receipt(intake.Stored.of(event))


_STATUS = {
    EventOutcome.APPLIED: "accepted",
    EventOutcome.IGNORED: "ignored",
    EventOutcome.PENDING: "stored",
}


def _receipt(stored: intake.Stored) -> Response:
    if stored.duplicate:
        status, detail = "duplicate", "already received; nothing changed"
    else:
        status, detail = _STATUS[stored.outcome], stored.detail
    return _answer(
        status,
        event_id=stored.event_id,
        delivery_id=stored.delivery_id,
        received_at=stored.received_at.isoformat(),
        detail=detail,
    )
