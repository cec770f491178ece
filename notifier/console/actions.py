"""What an agent can change: add a note, resend a message. Both only ever add to the record."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier import ledger, outbox
from notifier.kinds import KINDS
from notifier.locales import Choice
from notifier.models import HANDED_OVER_STATES, Message, MessageState, Order
from notifier.planner import Plan

# A resend repeats news the buyer was sent (or that failed); pending or withdrawn news is not
# the agent's to push out.
RESENDABLE = frozenset({*HANDED_OVER_STATES, MessageState.FAILED})


def add_note(session: Session, order: Order, author: str, text: str, at: datetime) -> None:
    ledger.note_agent_note(session, order, author, text, at)


def resend(
    session: Session, order: Order, original: Message, agent: str, nonce: str, now: datetime
) -> Message:
    """A new message (new id and Message-ID) with the original's content, due at once.

    `nonce` comes from the form, so a double-clicked button plans one resend, not two: the
    second finds the first by its dedupe key.
    """
    dedupe_key = f"resend:{original.id}:{nonce}"
    existing = session.scalar(select(Message).where(Message.dedupe_key == dedupe_key))
    if existing is not None:
        return existing
    message = outbox.schedule(
        session,
        shop=order.shop,
        order=order,
        kind=KINDS[original.kind],
        dedupe_key=dedupe_key,
        recipient=outbox.Recipient(original.recipient, original.recipient_name),
        locale=Choice(original.locale, f"as the original message {original.id}"),
        timezone=original.timezone,
        plan=Plan(now, f"resent by agent {agent} from message {original.id}; due at once"),
        context=original.context,
        now=now,
    )
    message.shipment_id = original.shipment_id
    message.resend_of = original.id
    return message


def new_nonce() -> str:
    return uuid.uuid4().hex
