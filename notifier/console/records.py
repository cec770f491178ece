"""What the console shows, read in a fixed, small number of queries whatever the order's size.

An order page is one timeline in time order: each webhook as received, each message as planned
(with its state now), and every other entry of the order's ledger chain (state changes, emails
handed over, notes, exports), each with its place in the chain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytz
from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session, defer, joinedload

from notifier import policies
from notifier.console.accounts import Viewer
from notifier.models import (
    PLANNED_ORDER,
    Delivery,
    DeliveryOutcome,
    InboundEvent,
    LedgerContent,
    LedgerEntry,
    Message,
    Order,
    Shipment,
    Shop,
    SurveyAnswer,
)

SEARCH_LIMIT = 50
# Milestones after which a parcel's silence is expected, not a worry.
QUIET_ENDS = frozenset({"delivered", "cancelled"})


def utc(instant: datetime | None, *, seconds: bool = False) -> str:
    if instant is None:
        return ""
    return instant.astimezone(pytz.utc).strftime(f"%Y-%m-%d %H:%M{':%S' if seconds else ''} UTC")


def local(instant: datetime | None, zone: str) -> str:
    if instant is None:
        return ""
    return instant.astimezone(pytz.timezone(zone)).strftime("%Y-%m-%d %H:%M %Z")


# --- orders an agent may see ---------------------------------------------------------------


def _visible(query: Select[Order], viewer: Viewer) -> Select[Order]:
    return query if viewer.all_shops else query.where(Order.shop_id.in_(viewer.shop_ids))


def search(session: Session, viewer: Viewer, text: str) -> list[Order]:
    """Orders by number (#1001 or 1001), storefront id, buyer email, or tracking number, exactly
    (indexed, so as fast with a million orders as with a thousand); failing that, by part of
    the buyer's email or name (a scan, newest first)."""
    wanted = text.strip()
    if not wanted:
        return []
    # The usual ways of typing a code stand in for case folding, so the indexes serve.
    spellings = {wanted, wanted.upper(), wanted.lower()}
    numbers = {form for code in spellings for form in (code.lstrip("#"), "#" + code.lstrip("#"))}
    exact: list[ColumnElement[bool]] = [
        Order.external_id.in_(spellings),
        Order.number.in_(numbers),
        Order.buyer_email.in_(spellings),
        Order.id.in_(select(Shipment.order_id).where(Shipment.tracking_number.in_(spellings))),
    ]
    found = _matching(session, viewer, exact)
    if found or len(wanted) < 2:
        return found
    partial: list[ColumnElement[bool]] = [
        Order.buyer_email.icontains(wanted, autoescape=True),
        Order.buyer_name.icontains(wanted, autoescape=True),
    ]
    return _matching(session, viewer, partial)


def _matching(session: Session, viewer: Viewer, matches: list[ColumnElement[bool]]) -> list[Order]:
    # One query per kind of match: an OR across columns would keep each index from serving.
    hits: dict[int, Order] = {}
    for match in matches:
        query = (
            select(Order)
            .options(joinedload(Order.shop))
            .where(match)
            .order_by(Order.placed_at.desc(), Order.id.desc())
            .limit(SEARCH_LIMIT + 1)
        )
        for order in session.scalars(_visible(query, viewer)):
            hits.setdefault(order.id, order)
    ordered = sorted(hits.values(), key=lambda order: (order.placed_at, order.id), reverse=True)
    return ordered[: SEARCH_LIMIT + 1]


def visible_order(session: Session, viewer: Viewer, order_id: int) -> Order | None:
    query = select(Order).options(joinedload(Order.shop)).where(Order.id == order_id)
    return session.scalar(_visible(query, viewer))


# --- flags --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    name: str  # exception, customs, stalled
    reason: str
    parcel: str | None
    since: str


def is_stalled(shipment: Shipment, shop: Shop, now: datetime) -> bool:
    if shipment.milestone in QUIET_ENDS:
        return False
    return now - shipment.last_heard_at > policies.stall_after(shop.settings)


def flags(order: Order, now: datetime) -> list[Flag]:
    found = [
        Flag(
            "customs" if raw.get("reason") == "customs_action" else str(raw.get("flag", "flag")),
            str(raw.get("reason", "")),
            raw.get("shipment"),
            str(raw.get("at", "")),
        )
        for raw in order.flags
    ]
    for shipment in order.shipments:
        if is_stalled(shipment, order.shop, now):
            found.append(
                Flag(
                    "stalled",
                    shipment.milestone or "",
                    shipment.tracking_number or shipment.external_id,
                    utc(shipment.last_heard_at),
                )
            )
    return found


# --- the timeline -------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryRef:
    seq: int
    sha256: str


@dataclass
class DeliveryView:
    id: int
    attempt: int
    handed_at: datetime
    transport: str
    outcome: str
    response: str
    possible_resend: bool
    sha256: str


@dataclass
class MessageView:
    id: str
    kind: str
    state: str
    rfc_message_id: str
    recipient: str
    locale: str
    locale_reason: str
    timezone: str
    due_at: datetime
    due_local: str
    reason: str  # why it is in its state now
    planned_reason: str  # why it was due when it was, as planned
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    created_at: datetime
    resend_of: str | None
    resent_as: list[str] = field(default_factory=list)
    deliveries: list[DeliveryView] = field(default_factory=list)

    @property
    def readable(self) -> bool:
        return any(d.outcome == DeliveryOutcome.ACCEPTED.value for d in self.deliveries)


@dataclass
class Row:
    """One line of the timeline: `type` is event, message or entry."""

    type: str
    at: datetime
    entry: EntryRef | None = None
    kind: str = ""  # the ledger entry's kind, for entry rows
    content: dict[str, Any] | None = None  # None: erased at the buyer's request, or never kept
    event: dict[str, Any] | None = None
    message: MessageView | None = None

    @property
    def sort_key(self) -> tuple[datetime, int, int]:
        order = {"event": 0, "message": 1, "entry": 2}[self.type]
        return (self.at, self.entry.seq if self.entry else 0, order)


def _messages(session: Session, order: Order, only: str | None = None) -> dict[str, MessageView]:
    """The order's messages with their deliveries; `only`: one message and its resends."""
    mine = Message.order_id == order.id
    if only is not None:
        mine &= (Message.id == only) | (Message.resend_of == only)
    rows = session.scalars(
        select(Message).options(defer(Message.context)).where(mine).order_by(*PLANNED_ORDER)
    )
    views = {
        m.id: MessageView(
            id=m.id,
            kind=m.kind,
            state=m.state.value,
            rfc_message_id=m.rfc_message_id,
            recipient=m.recipient,
            locale=m.locale,
            locale_reason=m.locale_reason,
            timezone=m.timezone,
            due_at=m.due_at,
            due_local=local(m.due_at, m.timezone),
            reason=m.reason,
            planned_reason=m.reason,
            attempts=m.attempts,
            last_error=m.last_error,
            sent_at=m.sent_at,
            created_at=m.created_at,
            resend_of=m.resend_of,
        )
        for m in rows
    }
    for view in views.values():
        if view.resend_of in views:
            views[view.resend_of].resent_as.append(view.id)
    deliveries = session.execute(
        select(
            Delivery.id,
            Delivery.message_id,
            Delivery.attempt,
            Delivery.handed_at,
            Delivery.transport,
            Delivery.outcome,
            Delivery.response,
            Delivery.possible_resend,
            Delivery.raw_sha256,
        )
        .join(Message, Message.id == Delivery.message_id)
        .where(mine)
        .order_by(Delivery.id)
    )
    for d in deliveries:
        views[d.message_id].deliveries.append(
            DeliveryView(
                d.id,
                d.attempt,
                d.handed_at,
                d.transport,
                d.outcome.value,
                d.response,
                d.possible_resend,
                d.raw_sha256,
            )
        )
    return views


def _events(session: Session, order: Order) -> dict[int, dict[str, Any]]:
    rows = session.execute(
        select(
            InboundEvent.id,
            InboundEvent.received_at,
            InboundEvent.source,
            InboundEvent.topic,
            InboundEvent.delivery_id,
            InboundEvent.verification,
            InboundEvent.outcome,
            InboundEvent.outcome_detail,
        )
        .where(InboundEvent.order_id == order.id)
        .order_by(InboundEvent.id)
    )
    return {
        row.id: {
            "id": row.id,
            "received_at": row.received_at,
            "source": row.source,
            "topic": row.topic,
            "delivery_id": row.delivery_id,
            "verification": row.verification,
            "outcome": row.outcome.value,
            "detail": row.outcome_detail,
        }
        for row in rows
    }


def _entries(
    session: Session, order: Order, subject: str | None = None
) -> list[tuple[LedgerEntry, dict[str, Any] | None]]:
    query = (
        select(LedgerEntry, LedgerContent.content)
        .outerjoin(LedgerContent, LedgerContent.sha256 == LedgerEntry.content_sha256)
        .where(LedgerEntry.chain == f"order:{order.id}")
        .order_by(LedgerEntry.seq)
    )
    if subject is not None:
        query = query.where(LedgerEntry.subject == subject)
    rows = session.execute(query)
    return [(entry, json.loads(content) if content else None) for entry, content in rows]


def timeline(session: Session, order: Order) -> list[Row]:
    """Events, messages and ledger entries of one order, merged in time order (four queries)."""
    messages = _messages(session, order)
    events = _events(session, order)
    rows: dict[str, Row] = {
        f"event {event_id}": Row("event", event["received_at"], event=event)
        for event_id, event in events.items()
    }
    rows |= {
        f"message {view.id}": Row("message", view.created_at, message=view)
        for view in messages.values()
    }
    loose: list[Row] = []
    for entry, content in _entries(session, order):
        ref = EntryRef(entry.seq, entry.entry_sha256)
        owner = rows.get(entry.subject)
        if entry.kind in ("event.received", "message.planned") and owner and owner.entry is None:
            owner.entry = ref
            if owner.message and content and content.get("reason"):
                owner.message.planned_reason = str(content["reason"])
            continue
        about = owner.message if owner else None
        loose.append(Row("entry", entry.recorded_at, ref, entry.kind, content, message=about))
    return sorted([*rows.values(), *loose], key=lambda row: row.sort_key)


def latest_survey_answer(session: Session, order: Order) -> SurveyAnswer | None:
    """The answer that counts now; earlier ones stay in the timeline."""
    return session.scalar(
        select(SurveyAnswer)
        .where(SurveyAnswer.order_id == order.id)
        .order_by(SurveyAnswer.answered_at.desc(), SurveyAnswer.id.desc())
        .limit(1)
    )


# --- one message and the email it became -------------------------------------------------


@dataclass
class SentEmail:
    delivery: DeliveryView
    raw: bytes | None  # None: erased at the buyer's request
    headers: list[tuple[str, str]] = field(default_factory=list)
    text: str | None = None
    html: str | None = None


def message_view(session: Session, order: Order, message_id: str) -> MessageView | None:
    """One message of this order with its deliveries (None if it belongs to another order)."""
    return _messages(session, order, only=message_id).get(message_id)


def message_history(session: Session, order: Order, message_id: str) -> list[Row]:
    """The ledger entries about one message, oldest first."""
    return [
        Row(
            "entry", entry.recorded_at, EntryRef(entry.seq, entry.entry_sha256), entry.kind, content
        )
        for entry, content in _entries(session, order, f"message {message_id}")
    ]


def sent_email(session: Session, view: MessageView) -> SentEmail | None:
    """The email exactly as the last accepted hand-over carried it, parsed for reading."""
    accepted = [d for d in view.deliveries if d.outcome == DeliveryOutcome.ACCEPTED.value]
    if not accepted:
        return None
    last = accepted[-1]
    delivery = session.get(Delivery, last.id)
    raw = delivery.raw if delivery else None
    email = SentEmail(last, raw)
    if raw:
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        email.headers = [(name, str(value)) for name, value in parsed.items()]
        email.text = _part(parsed, "plain")
        email.html = _part(parsed, "html")
    return email


def _part(message: EmailMessage, subtype: str) -> str | None:
    body = message.get_body(preferencelist=(subtype,))
    if body is None or body.get_content_subtype() != subtype:
        return None
    content = body.get_content()
    return content if isinstance(content, str) else None
