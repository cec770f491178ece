"""The written trail: an append-only, hash-chained record of what came in, was planned and was sent.

Code that changes history notes it with `note_*` in its own transaction; just before that
transaction commits, the notes become ledger entries, events first, then the rest in the order
noted. Each order has its own chain (news that reached no order goes to its shop's), so writers of
different orders never wait for each other; the order's row lock orders writers of the same one.

An entry's hash covers its place (chain, seq), time, kind, subject, the SHA-256 of its content and
the previous entry's hash. Contents are kept apart, by digest, so a buyer's personal data can be
erased while every digest, and so the chain, still verifies.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import event, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from notifier.models import (
    Delivery,
    DeliveryOutcome,
    InboundEvent,
    LedgerContent,
    LedgerEntry,
    Message,
    MessageState,
    Order,
    Shop,
)

GENESIS = "0" * 64
EVENT_RECEIVED = "event.received"
ERASURE = "erasure"
CHECKPOINTS = "checkpoints"  # the chain of checkpoints over every other chain's head


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical(content: dict[str, Any]) -> bytes:
    """One byte string per content, whoever writes it: sorted keys, no spaces, UTF-8."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(
    chain: str,
    seq: int,
    recorded_at: datetime,
    kind: str,
    subject: str,
    content_sha256: str,
    prev_sha256: str,
) -> str:
    fields = (chain, str(seq), recorded_at.isoformat(), kind, subject, content_sha256, prev_sha256)
    return sha256("\n".join(fields).encode())


# What a note says once ids exist: (the chain's order id or None, shop id, subject, content).
Built = tuple[int | None, int, str, dict[str, Any]]


@dataclass(frozen=True)
class _Note:
    kind: str
    build: Callable[[], Built]
    at: datetime
    message_kind: str | None = None  # for notes about a message: its kind, for the metrics


def pending_message_notes(session: Session) -> list[tuple[str, str]]:
    """(message kind, ledger kind) of what this transaction will record about messages."""
    return [(n.message_kind, n.kind) for n in _notes(session) if n.message_kind is not None]


def _notes(session: Session) -> list[_Note]:
    notes: list[_Note] = session.info.setdefault("ledger_notes", [])
    return notes


def note_event(session: Session, inbound: InboundEvent) -> None:
    def build() -> Built:
        content = {
            "source": inbound.source,
            "topic": inbound.topic,
            "delivery_id": inbound.delivery_id,
            "event_id": inbound.event_id,
            "received_at": inbound.received_at.isoformat(),
            "headers": inbound.headers,
            "verification": inbound.verification,
            "outcome": inbound.outcome.value,
            "detail": inbound.outcome_detail,
            "body_sha256": inbound.body_sha256,
        }
        return inbound.order_id, inbound.shop_id, f"event {inbound.id}", content

    _notes(session).append(_Note(EVENT_RECEIVED, build, inbound.received_at))


def note_planned(session: Session, message: Message) -> None:
    def build() -> Built:
        content = {
            "message": message.id,
            "kind": message.kind,
            "message_id": message.rfc_message_id,
            "recipient": message.recipient,
            "recipient_name": message.recipient_name,
            "locale": message.locale,
            "locale_reason": message.locale_reason,
            "timezone": message.timezone,
            "due_at": message.due_at.isoformat(),
            "reason": message.reason,
            "context": message.context,
            "caused_by_event": message.caused_by_event_id,
        }
        return message.order_id, message.shop_id, f"message {message.id}", content

    _notes(session).append(_Note("message.planned", build, message.created_at, message.kind))


class MessageFacts(Protocol):
    """What the ledger's notes read of a message: a `Message`, or the record step's view of one."""

    @property
    def id(self) -> str: ...
    @property
    def order_id(self) -> int: ...
    @property
    def shop_id(self) -> int: ...
    @property
    def kind(self) -> str: ...


class StateFacts(MessageFacts, Protocol):
    """A message and where it stands now, for the note of its new state."""

    @property
    def state(self) -> MessageState: ...
    @property
    def reason(self) -> str: ...
    @property
    def last_error(self) -> str | None: ...


class HandedOverFacts(Protocol):
    """What the ledger's note reads of a hand-over: a `Delivery`, or one about to be written."""

    @property
    def id(self) -> int | None: ...
    @property
    def message_id(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def transport(self) -> str: ...
    @property
    def rfc_message_id(self) -> str: ...
    @property
    def raw_sha256(self) -> str: ...
    @property
    def outcome(self) -> DeliveryOutcome: ...
    @property
    def response(self) -> str: ...
    @property
    def provider_message_id(self) -> str | None: ...
    @property
    def possible_resend(self) -> bool: ...


def note_state(session: Session, message: StateFacts, at: datetime) -> None:
    """A message moved on (superseded, cancelled, sent, retry, failed): its state and why."""
    state, reason, error = message.state.value, message.reason, message.last_error

    def build() -> Built:
        content = {"message": message.id, "state": state, "reason": reason, "error": error}
        return message.order_id, message.shop_id, f"message {message.id}", content

    _notes(session).append(_Note(f"message.{state}", build, at, message.kind))


def note_handed_over(
    session: Session, delivery: HandedOverFacts, message: MessageFacts, at: datetime
) -> None:
    """The exact bytes handed to a transport, and what it answered."""

    def build() -> Built:
        content = {
            "message": delivery.message_id,
            "delivery": delivery.id,
            "attempt": delivery.attempt,
            "transport": delivery.transport,
            "message_id": delivery.rfc_message_id,
            "raw_sha256": delivery.raw_sha256,
            "outcome": delivery.outcome.value,
            "response": delivery.response,
            "provider_message_id": delivery.provider_message_id,
            "possible_resend": delivery.possible_resend,
        }
        return message.order_id, message.shop_id, f"message {message.id}", content

    _notes(session).append(_Note("message.handed_over", build, at))


def note_erasure(
    session: Session, order: Order, digests: list[str], requested_by: str, at: datetime
) -> None:
    """Which contents of the chain were dropped at the buyer's request (digests only)."""
    order_id, shop_id = order.id, order.shop_id

    def build() -> Built:
        content = {"erased": digests, "requested_by": requested_by, "reason": "buyer request"}
        return order_id, shop_id, f"order {order_id}", content

    _notes(session).append(_Note(ERASURE, build, at))


def note_export(
    session: Session, order: Order, requested_by: str, manifest: bytes, at: datetime
) -> None:
    """An evidence export: who asked, when, and the digest of its manifest (which names the rest)."""
    order_id, shop_id = order.id, order.shop_id

    def build() -> Built:
        content = {"requested_by": requested_by, "manifest_sha256": sha256(manifest)}
        return order_id, shop_id, f"order {order_id}", content

    _notes(session).append(_Note("evidence.exported", build, at))


def backfill(session: Session) -> int:
    """Entries for history older than the ledger, at the times it happened; returns how many.

    For a database upgraded from before the ledger existed: its events, plans, hand-overs and
    last states are chained as they stand now, so what follows links onto them.
    """
    if session.scalar(select(LedgerEntry.id).limit(1)) is not None:
        return 0
    for inbound in session.scalars(select(InboundEvent).order_by(InboundEvent.id)):
        note_event(session, inbound)
    for message in session.scalars(select(Message).order_by(Message.created_at, Message.id)):
        note_planned(session, message)
        for delivery in session.scalars(
            select(Delivery).where(Delivery.message_id == message.id).order_by(Delivery.id)
        ):
            note_handed_over(session, delivery, message, delivery.handed_at)
        if message.state.value not in ("scheduled", "sending"):
            note_state(session, message, message.updated_at)
    notes = session.info.get("ledger_notes", [])
    _write_notes(session, chronological=True)
    return len(notes)


def _write_notes(session: Session, *, chronological: bool = False) -> None:
    notes = session.info.pop("ledger_notes", [])
    if not notes:
        _store_kept(session)
        return
    session.flush()  # ids for what the notes describe
    if chronological:
        ordered = sorted(notes, key=lambda note: note.at)
    else:
        # Causes first; the sort is stable, so the rest keep the order they were noted in.
        ordered = sorted(notes, key=lambda note: note.kind != EVENT_RECEIVED)
    built = [(note, *note.build()) for note in ordered]
    owners: dict[str, tuple[int | None, int]] = {}
    for _note, order_id, shop_id, _subject, _content in built:
        owners.setdefault(_chain(order_id, shop_id), (order_id, shop_id))
    heads = _lock_heads(session, owners)
    entries: list[dict[str, Any]] = []
    for note, order_id, shop_id, subject, content in built:
        chain = _chain(order_id, shop_id)
        seq, prev = heads[chain]
        digest = keep(session, canonical(content))
        own = entry_hash(chain, seq + 1, note.at, note.kind, subject, digest, prev)
        entries.append(
            {
                "chain": chain,
                "seq": seq + 1,
                "recorded_at": note.at,
                "kind": note.kind,
                "order_id": order_id,
                "subject": subject,
                "content_sha256": digest,
                "prev_sha256": prev,
                "entry_sha256": own,
            }
        )
        heads[chain] = (seq + 1, own)
    _store_kept(session)
    session.execute(insert(LedgerEntry), entries)  # one statement, however many notes
    session.info.pop("ledger_locked", None)
    session.info.pop("ledger_new", None)


def holding_order(session: Session, order: Order, *, created: bool = False) -> None:
    """Tell the ledger this transaction holds `order`'s row lock (or made the order), so writing
    its chain needs neither another lock nor, for a new order, a look for its head."""
    session.info.setdefault("ledger_locked", set()).add(order.id)
    if created:
        session.info.setdefault("ledger_new", set()).add(order.id)


def _chain(order_id: int | None, shop_id: int) -> str:
    return f"order:{order_id}" if order_id is not None else f"shop:{shop_id}"


def _lock_heads(
    session: Session, owners: dict[str, tuple[int | None, int]]
) -> dict[str, tuple[int, str]]:
    """Each chain's last (seq, hash), with its owner's row locked so no one appends between.

    Owners are locked orders first, then shops, each in id order, and every head is read with
    one statement, however many chains a transaction writes (a dispatcher's batch: fifty). On
    SQLite the transaction already holds the database's only write lock (BEGIN IMMEDIATE).
    """
    new = session.info.get("ledger_new", ())
    held = session.info.get("ledger_locked", ())
    # Made in this very transaction: nothing can precede us.
    heads = {chain: (0, GENESIS) for chain, (order, _s) in owners.items() if order in new}
    rest = [chain for chain in owners if chain not in heads]
    if not rest:
        return heads
    if session.get_bind().dialect.name != "sqlite":
        orders = sorted(
            {o for o, _s in (owners[c] for c in rest) if o is not None and o not in held}
        )
        shops = sorted({s for o, s in (owners[c] for c in rest) if o is None})
        if orders:
            locking = select(Order.id).where(Order.id.in_(orders)).order_by(Order.id)
            session.execute(locking.with_for_update()).all()
        if shops:
            locking = select(Shop.id).where(Shop.id.in_(shops)).order_by(Shop.id)
            session.execute(locking.with_for_update()).all()
    latest = (
        select(LedgerEntry.chain, func.max(LedgerEntry.seq).label("seq"))
        .where(LedgerEntry.chain.in_(rest))
        .group_by(LedgerEntry.chain)
        .subquery()
    )
    found = {
        row.chain: (row.seq, row.entry_sha256)
        for row in session.execute(
            select(LedgerEntry.chain, LedgerEntry.seq, LedgerEntry.entry_sha256).join(
                latest,
                (LedgerEntry.chain == latest.c.chain) & (LedgerEntry.seq == latest.c.seq),
            )
        )
    }
    heads.update({chain: found.get(chain, (0, GENESIS)) for chain in rest})
    return heads


def keep(session: Session, data: bytes) -> str:
    """Store a content once by its digest and return it; a twin written meanwhile is the same.

    Kept contents are written together just before the transaction commits (one statement).
    """
    digest = sha256(data)
    session.info.setdefault("ledger_kept", {})[digest] = data
    return digest


def _store_kept(session: Session) -> None:
    kept: dict[str, bytes] = session.info.pop("ledger_kept", {})
    if not kept:
        return
    dialect = session.get_bind().dialect.name
    insert_content = postgresql.insert if dialect == "postgresql" else sqlite.insert
    rows = [{"sha256": digest, "content": data} for digest, data in kept.items()]
    session.execute(insert_content(LedgerContent).on_conflict_do_nothing(), rows)


def _forget_notes(session: Session, *_: object) -> None:
    """What a rolled-back transaction noted (or kept) never happened."""
    for key in ("ledger_notes", "ledger_kept", "ledger_locked", "ledger_new"):
        session.info.pop(key, None)


def install(sessions: sessionmaker[Session]) -> None:
    """Write the notes of every transaction of `sessions` just before it commits."""
    event.listen(sessions, "before_commit", _write_notes)
    event.listen(sessions, "after_soft_rollback", _forget_notes)


def note_agent_note(
    session: Session, order: Order, author_email: str, text: str, at: datetime
) -> None:
    """A support agent's note on an order: added to its chain, never edited or removed."""
    order_id, shop_id = order.id, order.shop_id

    def build() -> Built:
        return order_id, shop_id, f"order {order_id}", {"author": author_email, "text": text}

    _notes(session).append(_Note("note", build, at))


def note(session: Session, kind: str, build: Callable[[], Built], at: datetime) -> None:
    """Any other fact for the record (a suppression, a survey answer, a provider's report).

    `build` runs just before commit, when the rows it describes have their ids.
    """
    _notes(session).append(_Note(kind, build, at))
