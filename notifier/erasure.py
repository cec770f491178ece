"""A buyer's right to erasure: their personal data goes, the proof that the record is whole stays.

Every content of the buyer's orders' chains (webhook bodies, plans with addresses, the emails
themselves) is dropped from ledger_contents; the entries keep their digests, and an erasure
entry in each chain lists what was dropped, so `ledger verify` reports those as erased rather
than missing. The working rows lose names, addresses and the email address; what was sent when,
and why, stays readable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from notifier import ledger, outbox
from notifier.audit import BLOB_FIELDS
from notifier.models import (
    LedgerContent,
    LedgerEntry,
    Message,
    MessageState,
    Order,
    ProviderEvent,
    SurveyAnswer,
)

ERASED_RECIPIENT = "erased@erased.invalid"


@dataclass(frozen=True)
class Erased:
    orders: int
    contents: int


def erase_buyer(session: Session, email: str, *, requested_by: str, now: datetime) -> Erased:
    """Erase everything personal about the buyer with this address, in the caller's transaction."""
    orders = session.scalars(
        select(Order)
        .where(func.lower(Order.buyer_email) == email.strip().lower())
        .order_by(Order.id)
        .with_for_update()
    ).all()
    dropped = 0
    for order in orders:
        digests = _contents_of(session, order)
        if digests:
            gone = session.execute(
                delete(LedgerContent)
                .where(LedgerContent.sha256.in_(digests))
                .returning(LedgerContent.sha256)
            )
            dropped += len(gone.all())
        _scrub(session, order, now)
        ledger.note_erasure(session, order, sorted(digests), requested_by, now)
    return Erased(len(orders), dropped)


def _contents_of(session: Session, order: Order) -> set[str]:
    """The digests of every content in the order's chain, and of the bytes those contents name."""
    digests = set(
        session.scalars(
            select(LedgerEntry.content_sha256).where(
                LedgerEntry.chain == f"order:{order.id}", LedgerEntry.kind != ledger.ERASURE
            )
        )
    )
    for body in session.scalars(
        select(LedgerContent.content).where(LedgerContent.sha256.in_(digests))
    ):
        content = json.loads(body)
        digests.update(content[name] for name in BLOB_FIELDS if content.get(name))
    return digests


def _scrub(session: Session, order: Order, now: datetime) -> None:
    """Names, addresses and the email address leave the working rows; amounts and times stay."""
    for message in session.scalars(select(Message).where(Message.order_id == order.id)):
        if message.state in (MessageState.SCHEDULED, MessageState.RETRY):
            outbox.end(session, message, MessageState.CANCELLED, "the buyer's data was erased", now)
        message.recipient = ERASED_RECIPIENT
        message.recipient_name = None
        message.context = {}
    # What the buyer wrote goes; the score stays (it names no one).
    session.execute(
        update(SurveyAnswer).where(SurveyAnswer.order_id == order.id).values(comment=None)
    )
    session.execute(
        update(ProviderEvent)
        .where(ProviderEvent.message_id.in_(select(Message.id).where(Message.order_id == order.id)))
        .values(recipient=None)
    )
    # The suppression list keeps the address on purpose: it is how the buyer's "no more mail"
    # is still honoured after the erasure (the legal basis for keeping that one fact).
    order.buyer_email = None
    order.buyer_name = None
    order.details = {
        key: value
        for key, value in order.details.items()
        if key not in ("shipping_address", "status_url")
    }
    order.updated_at = now
