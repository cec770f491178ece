"""Proves the ledger intact: every chain link, every content digest, every copy kept elsewhere.

Reads chain by chain in (chain, seq) order, in batches, so memory stays flat however long the
record is. The first problem found in each chain is reported with the entry it concerns, since
everything after a broken link is unproven rather than wrong.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from notifier.ledger import CHECKPOINTS, ERASURE, GENESIS, entry_hash, sha256
from notifier.models import Delivery, InboundEvent, LedgerContent, LedgerEntry, Message

BATCH = 500
# Content fields that name another stored content by digest (a webhook body, an email's bytes).
BLOB_FIELDS = ("body_sha256", "raw_sha256")


@dataclass
class Report:
    entries: int = 0
    chains: int = 0
    erased: int = 0  # contents dropped at a buyer's request, their digests still in the chain
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


def _describe(entry: LedgerEntry) -> str:
    return f"entry {entry.id} ({entry.chain} #{entry.seq}, {entry.kind}, {entry.subject})"


def verify(session: Session) -> Report:
    report = Report()
    erased = erased_digests(session)
    broken: set[str] = set()
    previous: LedgerEntry | None = None
    for batch in _batches(session):
        contents = _contents(session, batch)
        for entry in batch:
            report.entries += 1
            if previous is None or previous.chain != entry.chain:
                report.chains += 1
                previous = None
            if entry.chain not in broken:
                problem = _link_problem(entry, previous) or _content_problem(
                    session, entry, contents, erased, report
                )
                if problem:
                    broken.add(entry.chain)
                    report.problems.append(f"{_describe(entry)}: {problem}")
            previous = entry
    report.problems += _checkpoint_problems(session)
    report.problems += _unrecorded(session)
    return report


def _checkpoint_problems(session: Session) -> list[str]:
    """Every chain head a checkpoint saw must still be there, with the same hash."""
    seen: dict[str, tuple[int, str, int]] = {}
    for entry in session.scalars(
        select(LedgerEntry).where(LedgerEntry.chain == CHECKPOINTS).order_by(LedgerEntry.seq)
    ):
        body = session.scalar(
            select(LedgerContent.content).where(LedgerContent.sha256 == entry.content_sha256)
        )
        if body is None:
            continue  # reported by the chain walk
        for chain, (seq, own) in json.loads(body)["heads"].items():
            seen[chain] = (seq, own, entry.seq)
    problems = []
    for chain, (seq, own, at) in sorted(seen.items()):
        found = session.scalar(
            select(LedgerEntry.entry_sha256).where(
                LedgerEntry.chain == chain, LedgerEntry.seq == seq
            )
        )
        if found is None:
            last = session.scalar(
                select(func.max(LedgerEntry.seq)).where(LedgerEntry.chain == chain)
            )
            problems.append(
                f"chain {chain} vanished: checkpoint #{at} saw it reach #{seq}"
                if last is None
                else f"chain {chain} ends at #{last}, but checkpoint #{at} saw it reach #{seq}"
            )
        elif found != own:
            problems.append(f"chain {chain}: #{seq} is not the entry checkpoint #{at} saw")
    return problems


def _batches(session: Session) -> Iterator[list[LedgerEntry]]:
    after: tuple[str, int] = ("", 0)
    while True:
        batch = list(
            session.scalars(
                select(LedgerEntry)
                .where(
                    (LedgerEntry.chain > after[0])
                    | ((LedgerEntry.chain == after[0]) & (LedgerEntry.seq > after[1]))
                )
                .order_by(LedgerEntry.chain, LedgerEntry.seq)
                .limit(BATCH)
            )
        )
        if not batch:
            return
        yield batch
        after = (batch[-1].chain, batch[-1].seq)
        session.expunge_all()


def _contents(session: Session, batch: list[LedgerEntry]) -> dict[str, bytes]:
    wanted = {entry.content_sha256 for entry in batch}
    rows = session.execute(
        select(LedgerContent.sha256, LedgerContent.content).where(LedgerContent.sha256.in_(wanted))
    )
    return {row.sha256: row.content for row in rows}


def _link_problem(entry: LedgerEntry, previous: LedgerEntry | None) -> str | None:
    expected_seq = previous.seq + 1 if previous else 1
    if entry.seq != expected_seq:
        return f"expected #{expected_seq} here: entries are missing before it"
    expected_prev = previous.entry_sha256 if previous else GENESIS
    if entry.prev_sha256 != expected_prev:
        return "does not link to the entry before it"
    recomputed = entry_hash(
        entry.chain,
        entry.seq,
        entry.recorded_at,
        entry.kind,
        entry.subject,
        entry.content_sha256,
        entry.prev_sha256,
    )
    if recomputed != entry.entry_sha256:
        return "its fields were changed after it was written"
    return None


def erased_digests(session: Session) -> set[str]:
    """Every digest an erasure entry lists: contents that are gone on purpose."""
    listed = select(LedgerEntry.content_sha256).where(LedgerEntry.kind == ERASURE)
    erased: set[str] = set()
    for body in session.scalars(
        select(LedgerContent.content).where(LedgerContent.sha256.in_(listed))
    ):
        erased.update(json.loads(body)["erased"])
    return erased


def _content_problem(
    session: Session,
    entry: LedgerEntry,
    contents: dict[str, bytes],
    erased: set[str],
    report: Report,
) -> str | None:
    body = contents.get(entry.content_sha256)
    if body is None and entry.content_sha256 in erased:
        report.erased += 1
        return None
    if body is None:
        return "its content is missing"
    if sha256(body) != entry.content_sha256:
        return "its content was changed after it was written"
    content: dict[str, Any] = json.loads(body)
    for name in BLOB_FIELDS:
        digest = content.get(name)
        if digest is None:
            continue
        blob = session.scalar(select(LedgerContent.content).where(LedgerContent.sha256 == digest))
        if blob is None and digest in erased:
            continue
        if blob is None:
            return f"the content its {name} names is missing"
        if sha256(blob) != digest:
            return f"the content its {name} names was changed"
    return _copy_problem(session, entry, content)


def _copy_problem(session: Session, entry: LedgerEntry, content: dict[str, Any]) -> str | None:
    """The working tables name the bytes by digest too: they must still name the same ones."""
    if entry.kind == "event.received":
        event_id = int(entry.subject.removeprefix("event "))
        named = session.scalar(select(InboundEvent.body_sha256).where(InboundEvent.id == event_id))
        if named != content["body_sha256"]:
            return f"event {event_id} no longer names the body that was received"
    if entry.kind == "message.handed_over":
        delivery = content["delivery"]
        named = session.scalar(select(Delivery.raw_sha256).where(Delivery.id == delivery))
        if named != content["raw_sha256"]:
            return f"delivery {delivery} no longer names the email that was sent"
    return None


def _unrecorded(session: Session) -> list[str]:
    """Rows of history with no entry: written around the ledger, or their entry removed."""
    problems = []
    recorded = set(
        session.scalars(select(LedgerEntry.subject).where(LedgerEntry.kind == "event.received"))
    )
    for event_id in session.scalars(select(InboundEvent.id)):
        if f"event {event_id}" not in recorded:
            problems.append(f"event {event_id} has no ledger entry")
    planned = set(
        session.scalars(select(LedgerEntry.subject).where(LedgerEntry.kind == "message.planned"))
    )
    for message_id in session.scalars(select(Message.id)):
        if f"message {message_id}" not in planned:
            problems.append(f"message {message_id} has no ledger entry")
    return problems
