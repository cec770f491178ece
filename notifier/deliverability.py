"""Applies what email providers report after the hand-over: the message's state, the shop's
suppression list, a flag for agents, and the record of it all in the order's chain.

A report changes things once: a redelivery (same provider, same event id) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier import ledger, suppression
from notifier.models import (
    HANDED_OVER_STATES,
    Delivery,
    Message,
    MessageState,
    Order,
    ProviderEvent,
    ProviderVerdict,
    SuppressionReason,
)
from notifier.provider_reports import ProviderReport

HANDED_OVER = frozenset(HANDED_OVER_STATES)
# Where each verdict may move a message from. Delivered only refines "sent"; a hard bounce can
# follow a delivery (some servers accept, then bounce); a complaint proves delivery, so nothing
# after it (not even a bounce) takes it back.
# A report may also come while the message is still "sending": the provider has it, and the
# dispatcher has not recorded the hand-over yet. The dispatcher then keeps what the report said.
MOVES_FROM: dict[MessageState, frozenset[MessageState]] = {
    MessageState.DELIVERED: frozenset({MessageState.SENDING, MessageState.SENT}),
    MessageState.BOUNCED: frozenset(
        {MessageState.SENDING, MessageState.SENT, MessageState.DELIVERED}
    ),
    MessageState.COMPLAINED: (HANDED_OVER | {MessageState.SENDING}) - {MessageState.COMPLAINED},
}


@dataclass(frozen=True)
class Recorded:
    """What became of one report: `accepted`, `duplicate` or `ignored`, and a sentence saying why."""

    status: str
    detail: str

    def __str__(self) -> str:
        return self.detail


def record(session: Session, report: ProviderReport, body: bytes, now: datetime) -> Recorded:
    """Store the report once, and apply it to the message it is about, if it is one of ours."""
    label = f"{report.provider} event {report.event_id}"
    earlier = session.scalar(
        select(ProviderEvent.id).where(
            ProviderEvent.provider == report.provider,
            ProviderEvent.provider_event_id == report.event_id,
        )
    )
    if earlier is not None:
        return Recorded("duplicate", f"{label} was received before; nothing changed")
    message = _locked_message(session, report)
    event = ProviderEvent(
        provider=report.provider,
        provider_event_id=report.event_id,
        provider_message_id=report.provider_message_id,
        message_id=message.id if message else None,
        verdict=report.verdict,
        recipient=report.recipient,
        detail=report.detail,
        occurred_at=report.occurred_at,
        received_at=now,
    )
    session.add(event)
    if message is None:
        named = report.rfc_message_id or report.provider_message_id or "no message id"
        return Recorded("ignored", f"{label}: no message of ours is {named}; stored, not applied")
    _note_report(session, message, event, ledger.keep(session, body), now)
    moved = _move(message, report, now)
    if moved:
        ledger.note_state(session, message, now)
    consequences = _stop_mail_to(session, message, report, now)
    what = f"{report.verdict.value}" + (" (permanent)" if report.permanent else "")
    state = f"now {message.state.value}" if moved else f"stays {message.state.value}"
    return Recorded("accepted", f"{label}: {what} for message {message.id}, {state}{consequences}")


def _locked_message(session: Session, report: ProviderReport) -> Message | None:
    """The message by our Message-ID, else by the provider's id; its order locked first, then it
    (the dispatcher's order, so the two never wait on each other)."""
    message_id = None
    if report.rfc_message_id:
        message_id = session.scalar(
            select(Message.id).where(Message.rfc_message_id == report.rfc_message_id)
        )
    if message_id is None and report.provider_message_id:
        message_id = session.scalar(
            select(Delivery.message_id)
            .where(Delivery.provider_message_id == report.provider_message_id)
            .order_by(Delivery.id.desc())
            .limit(1)
        )
    if message_id is None:
        return None
    order_id = session.scalar(select(Message.order_id).where(Message.id == message_id))
    session.get(Order, order_id, with_for_update=True)
    return session.get(Message, message_id, with_for_update=True)


def _note_report(
    session: Session, message: Message, event: ProviderEvent, body_sha256: str, now: datetime
) -> None:
    """The report in the order's chain, naming the body it came in (which an erasure may drop)."""

    def build() -> ledger.Built:
        content: dict[str, Any] = {
            "message": message.id,
            "provider_event": event.id,
            "provider": event.provider,
            "event_id": event.provider_event_id,
            "provider_message_id": event.provider_message_id,
            "verdict": event.verdict.value,
            "recipient": event.recipient,
            "detail": event.detail,
            "occurred_at": event.occurred_at.isoformat(),
            "body_sha256": body_sha256,
        }
        return message.order_id, message.shop_id, f"message {message.id}", content

    ledger.note(session, "provider.report", build, now)


def _move(message: Message, report: ProviderReport, now: datetime) -> bool:
    """Refine the message's state as the report allows; False if it stays where it is."""
    target = _target(report)
    if target is None or message.state not in MOVES_FROM[target]:
        return False
    message.state = target
    message.updated_at = now
    at = report.occurred_at.isoformat(timespec="seconds")
    if target is MessageState.DELIVERED:
        message.reason = f"{report.provider} reported it delivered at {at}: {report.detail}"
    elif target is MessageState.BOUNCED:
        message.reason = f"{report.provider} reported a permanent bounce at {at}"
        message.last_error = f"{report.provider}: {report.detail}"
    else:
        message.reason = f"the buyer marked it as spam ({report.provider}, {at})"
        message.last_error = f"{report.provider}: {report.detail}"
    return True


def _target(report: ProviderReport) -> MessageState | None:
    if report.verdict is ProviderVerdict.DELIVERED:
        return MessageState.DELIVERED
    if report.verdict is ProviderVerdict.BOUNCED and report.permanent:
        return MessageState.BOUNCED
    if report.verdict is ProviderVerdict.COMPLAINED:
        return MessageState.COMPLAINED
    return None  # a soft bounce or a delay: the provider keeps trying; recorded only


def _stop_mail_to(session: Session, message: Message, report: ProviderReport, now: datetime) -> str:
    """A hard bounce or a complaint suppresses the address for the shop and flags the order."""
    if report.verdict is ProviderVerdict.BOUNCED and report.permanent:
        reason, flag = SuppressionReason.HARD_BOUNCE, "bounce"
    elif report.verdict is ProviderVerdict.COMPLAINED:
        reason, flag = SuppressionReason.COMPLAINT, "complaint"
    else:
        return ""
    address = report.recipient or message.recipient
    suppression.add(
        session,
        shop_id=message.shop_id,
        address=address,
        reason=reason,
        detail=report.detail,
        source=report.provider,
        now=now,
        message=message,
    )
    _flag(message, flag, report, now)
    return f"; {suppression.normalized(address)} suppressed ({reason.value}), order flagged"


def _flag(message: Message, flag: str, report: ProviderReport, now: datetime) -> None:
    """Agents see it on the order; the same flag for the same message is raised once."""
    order = message.order
    if any(f.get("flag") == flag and f.get("message") == message.id for f in order.flags):
        return
    raised = {
        "flag": flag,
        "reason": report.detail,
        "message": message.id,
        "kind": message.kind,
        "provider": report.provider,
        "at": report.occurred_at.isoformat(),
        "raised_at": now.isoformat(),
    }
    order.flags = [*order.flags, raised]
