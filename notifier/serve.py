"""Running the service: web and dispatcher together on one box, or dispatchers alone."""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import threading
from datetime import datetime, timedelta
from types import FrameType

from flask import Flask
from sqlalchemy.exc import IntegrityError
from waitress.server import create_server

from notifier import applier, checkpoints, migrate
from notifier.dispatcher import Dispatcher
from notifier.recording import RetryPolicy
from notifier.services import Services
from notifier.transports import describe, from_url

log = logging.getLogger(__name__)


class SchemaOutdated(RuntimeError):
    pass


def ensure_schema(svc: Services, *, upgrade_new: bool) -> None:
    """Create a brand-new database; refuse to run on one that needs `notifier db upgrade`."""
    current, head = migrate.current_revision(svc.engine), migrate.head_revision()
    if current == head:
        return
    if current is None and upgrade_new:
        log.info("new database: creating the schema")
        migrate.upgrade(svc.engine)
        return
    raise SchemaOutdated(
        f"the database is at revision {current or '(empty)'} but this release needs {head}; "
        "run `notifier db upgrade`"
    )


class Checkpointer:
    """Checkpoints the ledger at most every `every`, from whichever dispatcher gets there first."""

    def __init__(self, svc: Services, every: timedelta) -> None:
        self.svc = svc
        self.every = every
        self.last: datetime | None = None

    def __call__(self) -> None:
        now = self.svc.clock.now()
        if self.last is not None and now - self.last < self.every:
            return
        self.last = now
        try:
            with self.svc.sessions.begin() as session:
                entry = checkpoints.checkpoint(session, now)
        except IntegrityError:  # another worker checkpointed at the same moment
            return
        if entry is not None:  # logged, so a copy of each head lives outside the database
            log.info(
                "ledger checkpoint #%d over %s: %s", entry.seq, entry.subject, entry.entry_sha256
            )


def make_dispatcher(app: Flask, svc: Services) -> Dispatcher:
    config = app.config
    return Dispatcher(
        svc.sessions,
        from_url(config["MAIL_URL"], config["MAIL_TIMEOUT_SECONDS"]),
        svc.renderer,
        svc.clock,
        worker=f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}",
        batch_size=config["DISPATCH_BATCH_SIZE"],
        lease=timedelta(seconds=config["DISPATCH_LEASE_SECONDS"]),
        retry=RetryPolicy(max_attempts=config["DISPATCH_MAX_ATTEMPTS"]),
        housekeeping=Checkpointer(svc, timedelta(seconds=config["LEDGER_CHECKPOINT_SECONDS"])),
        links=svc.links,
        apply_stored=lambda: applier.apply_pending(svc.sessions, svc.clock, svc.renderer.locales),
    )


def _stop_on_signals(stop: threading.Event, also: list[object]) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        stop.set()
        for server in also:
            server.close()  # type: ignore[attr-defined]

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def settle_heap() -> None:
    """Move everything built at start-up out of the collector's sight before serving.

    A full collection otherwise walks every module, model and compiled statement: 15-45 ms
    with the world stopped, the p99 of a burst of webhooks. Long-running processes only.
    """
    gc.collect()
    gc.freeze()


def run_worker(app: Flask, svc: Services) -> None:
    log.info("compiled %d email templates", svc.renderer.warm())
    settle_heap()
    stop = threading.Event()
    _stop_on_signals(stop, [])
    dispatcher = make_dispatcher(app, svc)
    dispatcher.start_sending()
    log.info("worker sending through %s", describe(app.config["MAIL_URL"]))
    dispatcher.run_forever(stop, svc.wake_dispatcher, app.config["DISPATCH_POLL_SECONDS"])


def run_serve(app: Flask, svc: Services, host: str, port: int, threads: int) -> None:
    """A production WSGI server (waitress) and one dispatcher thread in the same process."""
    log.info("compiled %d email templates", svc.renderer.warm())
    settle_heap()
    stop = threading.Event()
    server = create_server(app, host=host, port=port, threads=threads, ident="notifier")
    dispatcher = make_dispatcher(app, svc)
    dispatcher.start_sending()
    thread = threading.Thread(
        target=dispatcher.run_forever,
        args=(stop, svc.wake_dispatcher, app.config["DISPATCH_POLL_SECONDS"]),
        name="dispatcher",
        daemon=True,
    )
    _stop_on_signals(stop, [server])
    thread.start()
    log.info(
        "serving on http://%s:%s/ ; mail goes to %s",
        host,
        port,
        describe(app.config["MAIL_URL"]),
    )
    try:
        server.run()
    except OSError:  # the listening socket was closed by the signal handler
        if not stop.is_set():
            raise
    finally:
        stop.set()
        svc.wake_dispatcher.set()
        thread.join(timeout=30)
