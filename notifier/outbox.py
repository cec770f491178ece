"""The outbox: rows of what is due, claimed by any number of dispatchers, each exactly once at a time."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr

from sqlalchemy import select, true, update
from sqlalchemy.orm import Session

from notifier import ledger
from notifier.kinds import Context, Kind
from notifier.locales import Choice
from notifier.models import Message, MessageState, Order, Shop
from notifier.planner import Plan


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str | None


def schedule(
    session: Session,
    *,
    shop: Shop,
    order: Order,
    kind: Kind,
    dedupe_key: str,
    recipient: Recipient,
    locale: Choice,
    timezone: str,
    plan: Plan,
    context: Context,
    now: datetime,
) -> Message:
    """Add a scheduled message in the caller's transaction, with a Message-ID fixed for life."""
    message_uuid = str(uuid.uuid4())
    domain = parseaddr(shop.sender)[1].rpartition("@")[2] or "notifier.invalid"
    message = Message(
        id=message_uuid,
        shop_id=shop.id,
        order_id=order.id,
        kind=kind.name,
        dedupe_key=dedupe_key,
        rfc_message_id=f"<{message_uuid}@{domain}>",
        recipient=recipient.email,
        recipient_name=recipient.name,
        locale=locale.locale,
        locale_reason=locale.reason,
        timezone=timezone,
        state=MessageState.SCHEDULED,
        due_at=plan.due_at,
        reason=plan.reason,
        next_attempt_at=plan.due_at,
        attempts=0,
        context=context,
        created_at=now,
        updated_at=now,
    )
    session.add(message)
    ledger.note_planned(session, message)
    return message


def already_planned(session: Session, dedupe_key: str) -> bool:
    found = session.scalar(select(Message.id).where(Message.dedupe_key == dedupe_key))
    return found is not None


def cancel_pending(session: Session, order: Order, reason: str, now: datetime) -> int:
    """Stop every message of an order that has not been handed to a transport yet."""
    pending = session.scalars(
        select(Message)
        .where(
            Message.order_id == order.id,
            Message.state.in_((MessageState.SCHEDULED, MessageState.RETRY)),
        )
        .with_for_update()
    ).all()
    for message in pending:
        end(session, message, MessageState.CANCELLED, reason, now)
    return len(pending)


def end(
    session: Session, message: Message, state: MessageState, reason: str, now: datetime
) -> None:
    """Move a message that was never sent to its last state (cancelled, superseded), and say why."""
    message.state = state
    message.reason = reason
    message.updated_at = now
    ledger.note_state(session, message, now)


@dataclass(frozen=True)
class Claim:
    message_id: str
    attempt: int


def claim_due(
    session: Session,
    *,
    worker: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    sending: Collection[str] = (),
) -> list[Claim]:
    """Lease up to `limit` due messages to `worker`; an expired lease is taken over, except on
    the messages this worker says it is `sending` still (their lease may have run out while
    they waited on a slow server: claiming them would send them twice).

    PostgreSQL skips rows other workers hold (SKIP LOCKED); on SQLite the engine's
    BEGIN IMMEDIATE serializes claimers instead. Commit promptly after calling.
    """
    # One index range per way of being due, each already in due order, merged here: an OR
    # or an IN across states would make the database sort every due row to find the first few,
    # which with a million waiting is most of the work.
    ways = (
        (Message.state == MessageState.SCHEDULED) & (Message.next_attempt_at <= now),
        (Message.state == MessageState.RETRY) & (Message.next_attempt_at <= now),
        (Message.state == MessageState.SENDING)
        & (Message.lease_until <= now)
        & (Message.id.not_in(sending) if sending else true()),
    )
    found = [
        row
        for way in ways
        for row in session.execute(
            select(Message.id, Message.next_attempt_at)
            .where(way)
            .order_by(Message.next_attempt_at, Message.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ]
    chosen = [row.id for row in sorted(found, key=lambda row: (row.next_attempt_at, row.id))]
    if not chosen:
        return []
    rows = session.execute(
        update(Message)
        .where(Message.id.in_(chosen[:limit]))
        .values(
            state=MessageState.SENDING,
            lease_owner=worker,
            lease_until=now + lease,
            attempts=Message.attempts + 1,
            updated_at=now,
        )
        .returning(Message.id, Message.attempts, Message.next_attempt_at, Message.created_at)
    ).all()
    # RETURNING keeps no order: send what was due first first, so news reaches the buyer in order.
    in_due_order = sorted(rows, key=lambda row: (row.next_attempt_at, row.created_at, row.id))
    return [Claim(row.id, row.attempts) for row in in_due_order]
