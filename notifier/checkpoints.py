"""Checkpoints: every so often, the head of each chain that grew, recorded in a chain of their own.

A chain that later loses its tail, or vanishes with its order, no longer reaches the head a
checkpoint saw, and `ledger verify` (notifier.audit) says so.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from notifier.ledger import CHECKPOINTS, GENESIS, canonical, entry_hash, keep
from notifier.models import LedgerContent, LedgerEntry


def checkpoint(session: Session, now: datetime) -> LedgerEntry | None:
    """Record the head of every chain that grew since the last checkpoint; None if none grew.

    Checkpoints are incremental, so each stays small however many orders there are; their own
    chain links them.
    """
    last = session.scalar(
        select(LedgerEntry)
        .where(LedgerEntry.chain == CHECKPOINTS)
        .order_by(LedgerEntry.seq.desc())
        .limit(1)
        .with_for_update()
    )
    since = 0
    if last is not None:
        kept = session.get(LedgerContent, last.content_sha256)
        since = json.loads(kept.content)["max_entry_id"] if kept else 0
    grown = session.execute(
        select(LedgerEntry.chain, func.max(LedgerEntry.seq), func.max(LedgerEntry.id))
        .where(LedgerEntry.id > since, LedgerEntry.chain != CHECKPOINTS)
        .group_by(LedgerEntry.chain)
    ).all()
    if not grown:
        return None
    heads = {}
    for chain, seq, _ in grown:
        own = session.scalar(
            select(LedgerEntry.entry_sha256).where(
                LedgerEntry.chain == chain, LedgerEntry.seq == seq
            )
        )
        heads[chain] = [seq, own]
    content = {"max_entry_id": max(row[2] for row in grown), "heads": heads}
    digest = keep(session, canonical(content))
    seq, prev = (last.seq, last.entry_sha256) if last else (0, GENESIS)
    subject = f"{len(heads)} chains"
    entry = LedgerEntry(
        chain=CHECKPOINTS,
        seq=seq + 1,
        recorded_at=now,
        kind="checkpoint",
        order_id=None,
        subject=subject,
        content_sha256=digest,
        prev_sha256=prev,
        entry_sha256=entry_hash(CHECKPOINTS, seq + 1, now, "checkpoint", subject, digest, prev),
    )
    session.add(entry)
    session.flush()
    return entry
