"""Which shop a webhook names and the secrets that sign its deliveries, kept a few seconds.

Every delivery looks its shop up before anything else, and at a few thousand a second that
lookup was a fifth of a request's time. A change committed through this app's sessions (the
console, a command run in this process) clears what is kept at once; a change made by another
process (`notifier shop set` in a shell) counts within NOTIFIER_SHOP_CACHE_SECONDS. Only
verification reads from here: what a delivery changes is applied with the shop read afresh.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Engine, Table, bindparam, event, select
from sqlalchemy.orm import Session, sessionmaker

from notifier.models import Platform, Shop, TrackingService

_SHOPS = cast(Table, Shop.__table__)
_BY = {
    column: select(
        _SHOPS.c.id,
        _SHOPS.c.slug,
        _SHOPS.c.platform,
        _SHOPS.c.domain,
        _SHOPS.c.webhook_secrets,
        _SHOPS.c.tracking_secrets,
    ).where(_SHOPS.c[column] == bindparam("value"))
    for column in ("domain", "slug")
}


@dataclass(frozen=True)
class ShopKeys:
    """A shop as a webhook's verification needs it: who it is and what signs for it."""

    id: int
    slug: str
    platform: Platform
    domain: str | None
    webhook_secrets: tuple[str, ...]
    aftership_secrets: tuple[str, ...]


class ShopDirectory:
    def __init__(
        self,
        engine: Engine,
        *,
        keep_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.keep_seconds = keep_seconds
        self._monotonic = monotonic
        self._kept: dict[tuple[str, str], tuple[float, ShopKeys]] = {}
        self._lock = threading.Lock()
        # Counts forgettings: a row read before one is never kept after it.
        self._generation = 0

    def find(self, column: str, value: str) -> ShopKeys | None:
        """The shop whose `column` ("domain" or "slug") is `value`; unknown ones are not kept."""
        now = self._monotonic()
        kept = self._kept.get((column, value))
        if kept is not None and now - kept[0] < self.keep_seconds:
            return kept[1]
        generation = self._generation
        with self.engine.connect() as connection:
            row = connection.execute(_BY[column], {"value": value}).mappings().first()
        if row is None:
            return None
        keys = _keys(row)
        if self.keep_seconds > 0:
            with self._lock:
                if generation == self._generation:
                    self._kept[(column, value)] = (now, keys)
        return keys

    def forget(self) -> None:
        with self._lock:
            self._generation += 1
            self._kept.clear()

    def watch(self, sessions: sessionmaker[Session]) -> None:
        """Forget everything once a session of `sessions` commits a change to a shop."""
        changed_key = f"notifier_shops_changed_{id(self)}"  # each directory hears for itself

        @event.listens_for(sessions, "after_flush")
        def _note(session: Session, _context: Any) -> None:
            changed = (*session.new, *session.dirty, *session.deleted)
            if any(isinstance(instance, Shop) for instance in changed):
                session.info[changed_key] = True

        @event.listens_for(sessions, "after_commit")
        def _forget(session: Session) -> None:
            if session.info.pop(changed_key, False):
                self.forget()

        @event.listens_for(sessions, "after_soft_rollback")
        def _drop(session: Session, _previous: Any) -> None:
            session.info.pop(changed_key, None)


def _keys(row: Any) -> ShopKeys:
    tracking = row["tracking_secrets"] or {}
    return ShopKeys(
        id=row["id"],
        slug=row["slug"],
        platform=row["platform"],
        domain=row["domain"],
        webhook_secrets=tuple(row["webhook_secrets"] or ()),
        aftership_secrets=tuple(tracking.get(TrackingService.AFTERSHIP, ())),
    )
