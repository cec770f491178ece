"""Each shop's list of addresses it must not write to, checked by the dispatcher at send time.

An unsubscribe stops surveys only (the buyer still hears about the parcel they paid for); a hard
bounce, a spam complaint or an agent's decision stops everything. Entries are lifted, never
deleted, so the record says who allowed mail again and when.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier import ledger
from notifier.models import Message, Suppression, SuppressionReason

# Reasons that stop transactional mail too; an unsubscribe only stops what is not transactional.
STOPS_EVERYTHING = frozenset(
    {SuppressionReason.HARD_BOUNCE, SuppressionReason.COMPLAINT, SuppressionReason.AGENT}
)


def normalized(address: str) -> str:
    return address.strip().lower()


def active(session: Session, shop_id: int, address: str) -> list[Suppression]:
    return list(
        session.scalars(
            select(Suppression)
            .where(
                Suppression.shop_id == shop_id,
                Suppression.address == normalized(address),
                Suppression.lifted_at.is_(None),
            )
            .order_by(Suppression.created_at, Suppression.id)
        )
    )


def active_among(
    session: Session, recipients: Collection[tuple[int, str]]
) -> dict[tuple[int, str], list[Suppression]]:
    """The active entries of many (shop, address) pairs at once: one query for a whole batch."""
    wanted = {(shop_id, normalized(address)) for shop_id, address in recipients}
    found: dict[tuple[int, str], list[Suppression]] = {}
    if not wanted:
        return found
    rows = session.scalars(
        select(Suppression)
        .where(
            Suppression.address.in_({address for _shop, address in wanted}),
            Suppression.shop_id.in_({shop for shop, _address in wanted}),
            Suppression.lifted_at.is_(None),
        )
        .order_by(Suppression.created_at, Suppression.id)
    )
    for entry in rows:
        key = (entry.shop_id, entry.address)
        if key in wanted:
            found.setdefault(key, []).append(entry)
    return found


def first_blocking(entries: Iterable[Suppression], *, transactional: bool) -> Suppression | None:
    """The entry that forbids this mail, if any: the first that applies to its kind."""
    for entry in entries:
        if entry.reason in STOPS_EVERYTHING or not transactional:
            return entry
    return None


def describe(entry: Suppression) -> str:
    """One sentence for the outbox row and the console: what, since when, on whose word."""
    scope = "all mail" if entry.reason in STOPS_EVERYTHING else "surveys"
    when = entry.created_at.isoformat(timespec="seconds")
    return (
        f"{entry.address} is suppressed for {scope} since {when} "
        f"({entry.reason.value}, {entry.source}: {entry.detail})"
    )


def add(
    session: Session,
    *,
    shop_id: int,
    address: str,
    reason: SuppressionReason,
    detail: str,
    source: str,
    now: datetime,
    message: Message | None = None,
) -> Suppression:
    """Suppress an address (idempotent: an active entry for the same reason is returned as is)."""
    for entry in active(session, shop_id, address):
        if entry.reason is reason:
            return entry
    entry = Suppression(
        shop_id=shop_id,
        address=normalized(address),
        reason=reason,
        detail=detail,
        source=source,
        message_id=message.id if message else None,
        created_at=now,
    )
    session.add(entry)
    order_id = message.order_id if message else None

    def build() -> ledger.Built:
        content = {
            "suppression": entry.id,
            "address": entry.address,
            "reason": entry.reason.value,
            "detail": entry.detail,
            "source": entry.source,
            "message": entry.message_id,
        }
        return order_id, shop_id, f"suppression {entry.id}", content

    ledger.note(session, "suppression.added", build, now)
    return entry


def lift(session: Session, *, shop_id: int, address: str, by: str, now: datetime) -> int:
    """Allow mail to an address again; returns how many entries were lifted."""
    entries = active(session, shop_id, address)
    for entry in entries:
        entry.lifted_at = now
        entry.lifted_by = by

        def build(entry: Suppression = entry) -> ledger.Built:
            content = {"suppression": entry.id, "address": entry.address, "lifted_by": by}
            return None, shop_id, f"suppression {entry.id}", content

        ledger.note(session, "suppression.lifted", build, now)
    return len(entries)
