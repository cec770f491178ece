"""The JSON API for helpdesks: an order's timeline, its ledger entries and notes, per-shop tokens.

A token belongs to one shop and is kept only as its SHA-256, so the database never holds one
that works. An order of another shop is answered exactly like one that does not exist.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, g, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier import timeline
from notifier.models import ApiToken, LedgerContent, LedgerEntry, Order, Shop
from notifier.problems import Problem
from notifier.services import services

bp = Blueprint("api", __name__, url_prefix="/api/v1")
TOKEN_PREFIX = "ntk_"  # noqa: S105 - a marker that makes leaked tokens easy to scan for
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="notifier"'}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_token(session: Session, shop: Shop, label: str | None, now: datetime) -> str:
    """A new random token for `shop`; the caller shows it once, since only its hash is kept."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(shop_id=shop.id, token_sha256=_digest(token), label=label, created_at=now))
    return token


@bp.before_request
def _authenticate() -> None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401,
            "Unauthorized",
            "Send the shop's API token as `Authorization: Bearer <token>`.",
            headers=CHALLENGE,
        )
    with services().sessions() as session:
        found = session.execute(
            select(Shop.id, Shop.slug)
            .join(ApiToken, ApiToken.shop_id == Shop.id)
            .where(ApiToken.token_sha256 == _digest(token.strip()))
        ).first()
    if found is None:
        raise Problem(401, "Unauthorized", "This API token is not valid.", headers=CHALLENGE)
    g.api_shop_id, g.api_shop_slug = found.id, found.slug


def _the_order(session: Session, shop_slug: str, ref: str) -> Order:
    not_found = Problem(404, "Not Found", f"No order {ref!r} in shop {shop_slug!r}.")
    if shop_slug != g.api_shop_slug:
        raise not_found  # the same answer as a missing order: another shop's orders stay unseen
    orders = timeline.find_orders(session, ref, shop_slug)
    if not orders:
        raise not_found
    by_id = [order for order in orders if order.external_id == ref]
    return (by_id or orders)[0]


def _ledger(session: Session, order: Order) -> list[dict[str, Any]]:
    rows = session.execute(
        select(LedgerEntry, LedgerContent.content)
        .outerjoin(LedgerContent, LedgerContent.sha256 == LedgerEntry.content_sha256)
        .where(LedgerEntry.chain == f"order:{order.id}")
        .order_by(LedgerEntry.seq)
    )
    return [
        {
            "seq": entry.seq,
            "recorded_at": entry.recorded_at.isoformat(),
            "kind": entry.kind,
            "subject": entry.subject,
            "content_sha256": entry.content_sha256,
            "prev_sha256": entry.prev_sha256,
            "entry_sha256": entry.entry_sha256,
            # None once erased at the buyer's request: the digest above still proves the chain.
            "content": json.loads(content) if content else None,
        }
        for entry, content in rows
    ]


@bp.get("/orders/<shop_slug>/<ref>/timeline")
def order_timeline(shop_slug: str, ref: str) -> Response:
    """Like `notifier timeline --json`, plus the order's ledger entries and agents' notes."""
    with services().sessions() as session:
        order = _the_order(session, shop_slug, ref)
        record = timeline.build(session, order)
        record["ledger"] = _ledger(session, order)
    record["notes"] = [
        {
            "at": entry["recorded_at"],
            "author": (entry["content"] or {}).get("author"),
            "text": (entry["content"] or {}).get("text"),
            "entry_sha256": entry["entry_sha256"],
        }
        for entry in record["ledger"]
        if entry["kind"] == "note"
    ]
    response = Response(json.dumps(record, ensure_ascii=False), mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response
