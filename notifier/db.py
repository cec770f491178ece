"""Engine and session setup that behaves the same on SQLite (one box) and PostgreSQL (many)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as naive UTC and reads them back aware (SQLAlchemy's documented recipe)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise TypeError("naive datetime refused: every stored instant must be aware")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


# A connection option for transactions that only read: on SQLite they take no write lock.
READ_ONLY = "notifier_read_only"
WRITER_WAIT_SECONDS = 30
TURN = "notifier_write_turn"


class WritersBusy(OperationalError):
    """No turn to write came within the wait: the database is too busy to serve this now."""


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10) -> Engine:
    """An engine whose SQLite transactions take the write lock up front, so claims never race.

    A process holds at most `pool_size + max_overflow` connections: at least its web threads
    (and its dispatcher's one), or requests wait for a connection and may answer 503.
    """
    parsed = make_url(url)
    pool = {"pool_size": pool_size, "max_overflow": max_overflow}
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **pool)
    if parsed.database in (None, "", ":memory:"):
        pool = {}  # one in-memory database per connection: SQLAlchemy's own pool for it
    engine = create_engine(url, connect_args={"timeout": WRITER_WAIT_SECONDS}, **pool)
    _serialize_sqlite_writers(engine)
    return engine


def read_only(engine: Engine) -> Engine:
    """The same pool, for lookups that never write (a shop by its domain): no transaction is
    opened around them (autocommit), so no write lock, no BEGIN and no ROLLBACK round trips.
    Each statement sees the database as of itself: keep such sessions to single lookups."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{READ_ONLY: True})
    return engine.execution_options(isolation_level="AUTOCOMMIT", **{READ_ONLY: True})


def without_mapping(engine: Engine) -> None:
    """For a dispatcher-only process: no mmap, so its resident memory stays its own (mapped
    pages of a large database would count in its RSS); its claims need no big reads."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _no_mmap(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA mmap_size=0")
        cursor.close()

    engine.dispose()  # connections made before this get no second chance


def _serialize_sqlite_writers(engine: Engine) -> None:
    # Python's sqlite3 defers BEGIN and skips it before DDL; SQLAlchemy's documented fix is to
    # take over transaction control. BEGIN IMMEDIATE stands in for FOR UPDATE SKIP LOCKED,
    # which the SQLite dialect silently drops.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        # FULL: a webhook answered 2xx survives a power cut too, not only a crash (invariant 1).
        cursor.execute("PRAGMA synchronous=FULL")
        # Read through the OS page cache shared by every connection, instead of each
        # connection's own 2 MB one: index lookups stay cheap as tables reach millions of rows.
        cursor.execute("PRAGMA mmap_size=1073741824")
        cursor.close()

    # SQLite has one writer at a time. Threads of this process take turns in a queue of their
    # own instead of in SQLite's busy handler, which sleeps in steps of up to 100 ms and lets a
    # waiting writer starve (a p99 in seconds under 16 concurrent webhooks). Other processes
    # (workers) still meet the busy timeout.
    # The turn is held from BEGIN until the connection goes back to the pool, after COMMIT or
    # ROLLBACK has really finished (the engine's commit event fires before them).
    turn = threading.Lock()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            return  # no BEGIN: each statement reads on its own, as autocommit does elsewhere
        if not connection.info.get(TURN):  # a connection may run several transactions
            if not turn.acquire(timeout=WRITER_WAIT_SECONDS):
                raise WritersBusy("BEGIN IMMEDIATE", None, TimeoutError("no turn to write"))
            connection.info[TURN] = True
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    def _end_turn(_dbapi_connection: Any, record: Any, *_: Any) -> None:
        if record is not None and record.info.pop(TURN, False):
            turn.release()

    event.listen(engine.pool, "checkin", _end_turn)
    event.listen(engine.pool, "invalidate", _end_turn)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
