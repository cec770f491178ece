"""The benchmark suite: the service and, in the same run on the same machine, the floor it is held to.

    .venv/bin/python bench/run.py [--quick] [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
        [--only ingest,dispatch,growth,memory,scaleout]

Every figure is printed beside its floor (or its first size) and the ratio the target is about:

- ingest: bench/webhook_latency.py (signed webhooks against a bare Flask app under the same
  waitress), at concurrency 16 and 64, on SQLite and on PostgreSQL, with the webhook applying its
  news inline and deferred (stored, then applied by a worker: that drain is timed and printed).
  Target: at least 0.5 of the floor on SQLite, 0.4 on PostgreSQL, p99 under 50 ms at 16.
- dispatch: due messages claimed, rendered, built, sent to a local aiosmtpd sink and recorded,
  against raw smtplib sending prebuilt messages of the same size over one connection to the same
  sink. Target: at least 0.6 of the floor.
- growth: claiming due messages, planning (a new order's webhook), and the console's search and
  order page, with 10k / 100k / 1M scheduled messages and orders present. Target: 1M within
  1.5x of 10k.
- memory: peak RSS of a real `notifier worker` draining a fixed number of due messages with
  10k / 100k / 1M rows present. Target: under 150 MB whatever the backlog.
- scale-out: two `notifier worker` processes against one on PostgreSQL. Target: 1.6x.

The database is SQLite unless --database-url names a PostgreSQL server (a throwaway database is
created there and dropped); scale-out always needs PostgreSQL (the default is the test suite's
URL) and is skipped, saying so, without one. --quick stops the tables at 100k and drains less.
Speed goals live here only, as ratios against floors measured in this run; never in the tests.
"""

from __future__ import annotations

import argparse
import logging
import os
import smtplib
import statistics
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common
import _workers
import sqlalchemy as sa

BENCH = Path(__file__).resolve().parent
DEFAULT_POSTGRES = os.environ.get(
    "NOTIFIER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
VERDICTS: list[str] = []


def say(line: str = "") -> None:
    print(line, flush=True)


def verdict(name: str, ratio: float, target: float, *, at_least: bool) -> str:
    met = ratio >= target if at_least else ratio <= target
    word = "met" if met else "MISSED"
    relation = ">=" if at_least else "<="
    VERDICTS.append(f"{name}: {ratio:.2f} (target {relation} {target}) {word}")
    return f"{ratio:.2f} (target {relation} {target}: {word})"


def heading(title: str) -> None:
    say()
    say(f"== {title}   [loadavg {' '.join(common.loadavg_fields())}]")


# --- ingest -------------------------------------------------------------------------------


def ingest(options: argparse.Namespace, folder: Path) -> None:
    import webhook_latency

    requests = 400 if options.quick else 2000
    servers: list[str | None] = [None]
    postgres = options.database_url or DEFAULT_POSTGRES
    if common.postgres_reachable(postgres):
        servers.append(postgres)
    else:
        say(f"  (PostgreSQL unreachable at {postgres}: its ingest figures are skipped)")
    for server in servers:
        database = "PostgreSQL" if server else "SQLite"
        heading(
            f"ingest: {requests} signed distinct webhooks per run, {database}, waitress 16 threads"
        )
        results = webhook_latency.measure(
            requests=requests, concurrencies=[16, 64], modes=["inline", "deferred"], postgres=server
        )
        target = 0.5 if server is None else 0.4
        for result in results:
            for line in webhook_latency.report(result):
                say(line)
            name = f"ingest {database} c{result.concurrency} {result.apply}"
            verdict(name, result.ratio, target, at_least=True)
            if result.concurrency == 16:
                verdict(f"{name} p99 ms", result.service.p99_ms, 50, at_least=False)


# --- dispatch -----------------------------------------------------------------------------


def raw_smtplib(sink: common.Sink, raws: list[bytes]) -> float:
    """The floor: prebuilt messages over one smtplib connection to the same sink; messages/s."""
    connection = smtplib.SMTP("127.0.0.1", sink.port)
    connection.ehlo()
    started = time.perf_counter()
    for number, raw in enumerate(raws):
        connection.sendmail("orders@lumen.example", [f"buyer{number}@example.org"], raw)
    took = time.perf_counter() - started
    connection.quit()
    return len(raws) / took


def dispatch(options: argparse.Namespace, folder: Path) -> None:
    from notifier.dispatcher import Dispatcher
    from notifier.models import Delivery, LedgerContent
    from notifier.serve import settle_heap
    from notifier.transports.smtp import SMTPTransport

    count = 1000 if options.quick else 5000
    rounds = 5  # the box's speed drifts by a fifth within a minute: the median ratio of five
    database = "PostgreSQL" if options.database_url else "SQLite"
    heading(
        f"dispatch: {rounds} rounds of {count} due messages, {database}, one worker, aiosmtpd sink"
    )
    say("(each round: the worker drains its messages, then smtplib sends the very same bytes)")
    sink = common.Sink()
    measured: list[tuple[float, float, float]] = []  # (ratio, service, floor)
    costs: list[tuple[float, ...]] = []  # CPU ms a message: dispatcher, sending, sink; client, sink
    try:
        with common.database(options.database_url, folder, "dispatch") as url:
            app = common.make_app(url, folder / "dispatch-instance")
            svc = app.extensions["notifier"]
            seed = common.prepare(app)
            svc.renderer.warm()  # as `notifier worker` does when it starts,
            settle_heap()  # and then it keeps its start-up heap out of the collector's way
            for round_number in range(rounds):
                common.fill(
                    svc.engine,
                    seed,
                    count,
                    due=True,
                    now=svc.clock.now(),
                    start=1 + round_number * count,
                )
                dispatcher = Dispatcher(
                    svc.sessions,
                    SMTPTransport.from_url(sink.url(), 30),
                    svc.renderer,
                    svc.clock,
                    worker=f"bench-{round_number}",
                    links=svc.links,
                )
                others = common.child_pids()
                dispatcher.start_sending()  # as `notifier worker` does when it starts
                (sending,) = common.child_pids() - others
                cpu = _CPU(sink.process.pid, sending)
                started = time.perf_counter()
                outcome = dispatcher.run_once()  # which ends its sending process
                took = time.perf_counter() - started
                cpu.stop()
                with svc.sessions() as session:
                    raws = list(
                        session.scalars(
                            sa.select(LedgerContent.content)
                            .join(Delivery, Delivery.raw_sha256 == LedgerContent.sha256)
                            .order_by(Delivery.id.desc())  # this round's
                            .limit(count)
                        )
                    )
                assert outcome.sent >= count, outcome  # round 0 also sends prepare()'s order
                service = outcome.sent / took
                floor_cpu = _CPU(sink.process.pid)
                floor = raw_smtplib(sink, raws)  # the bytes the service just sent
                floor_cpu.stop()
                measured.append((service / floor, service, floor))
                costs.append(cpu.per_message(outcome.sent) + floor_cpu.per_message(len(raws)))
                say(
                    f"  round {round_number + 1}: {service:5.0f} messages/s against "
                    f"{floor:5.0f} ({service / floor:.2f}; "
                    f"{statistics.mean(map(len, raws)):.0f}-byte messages)"
                )
            svc.engine.dispose()
    finally:
        sink.stop()
    ratio, service, floor = sorted(measured)[len(measured) // 2]
    say(f"raw smtplib floor: {floor:7.0f} messages/s  (the median round's; one connection)")
    say(f"notifier dispatch: {service:7.0f} messages/s  (claimed, rendered, built, sent, recorded)")
    say(f"            ratio: {verdict('dispatch', ratio, 0.6, at_least=True)}")
    worker, sending, sink_ms, client, floor_sink = (
        statistics.median(c) for c in zip(*costs, strict=True)
    )
    box = 2000 / (worker + sending + sink_ms)
    say(
        f"  CPU a message (medians): dispatcher {worker:.2f} ms, its sending process "
        f"{sending:.2f}, the sink {sink_ms:.2f}: the dispatcher alone caps one worker at "
        f"{1000 / worker:.0f}/s ({1000 / worker / floor:.2f} of the median floor), the three "
        f"fill this box's cores at {box:.0f}/s ({box / floor:.2f}); the floor is smtplib "
        f"{client:.2f} + the sink {floor_sink:.2f}, one message at a time"
    )


class _CPU:
    """CPU used between now and `stop()` by this process, the SMTP sink, and (optionally) the
    sending process, which has ended and been waited for by then."""

    def __init__(self, sink: int, sending: int | None = None) -> None:
        self.sink, self.sending = sink, sending
        self.own = time.process_time()
        self.sink_cpu = common.cpu_seconds(sink)
        self.reaped = common.children_cpu()
        self.sending_cpu = common.cpu_seconds(sending) if sending else 0.0

    def stop(self) -> None:
        self.own = time.process_time() - self.own
        self.sink_cpu = common.cpu_seconds(self.sink) - self.sink_cpu
        if self.sending:
            self.sending_cpu = common.children_cpu() - self.reaped - self.sending_cpu

    def per_message(self, count: int) -> tuple[float, ...]:
        """ms a message: this process, the sending process (if any), the sink."""
        parts = (
            (self.own, self.sending_cpu, self.sink_cpu)
            if self.sending
            else (self.own, self.sink_cpu)
        )
        return tuple(1000 * part / count for part in parts)


# --- growth and memory --------------------------------------------------------------------


def growth_and_memory(options: argparse.Namespace, folder: Path, parts: set[str]) -> None:
    import _growth

    from notifier.models import Message

    sizes = [10_000, 100_000] if options.quick else [10_000, 100_000, 1_000_000]
    first, last = sizes[0], sizes[-1]
    drain = 2_000 if options.quick else 10_000
    database = "PostgreSQL" if options.database_url else "SQLite"
    heading(f"growth and memory: {', '.join(f'{s:,}' for s in sizes)} rows, {database}")
    say(
        f"(growth: each step timed in turns with the same step on a twin kept at {first:,} rows; "
        f"memory: a real `notifier worker` drains {drain:,} due messages with each size present;"
        " full drains of 1M would take too long at this box's rate)"
    )
    results: dict[int, dict[str, _growth.Paired]] = {}
    peaks: dict[int, float] = {}
    sink = common.Sink() if "memory" in parts else None
    try:
        with ExitStack() as databases:
            url = databases.enter_context(common.database(options.database_url, folder, "growth"))
            grown = _growth.Database(url, folder / "growth-instance")
            twin = None
            if "growth" in parts:
                twin_url = databases.enter_context(
                    common.database(options.database_url, folder, "twin")
                )
                twin = _growth.Database(twin_url, folder / "twin-instance")
                twin.grow(first)
                twin.add_due(10**8)
            for size in sizes:
                started = time.perf_counter()
                grown.grow(size)
                say(f"  {size:>9,} rows present (filled in {time.perf_counter() - started:.0f} s)")
                if twin is not None:
                    grown.add_due(10**8 + size)
                    large, small = grown.steps(size), twin.steps(first)
                    row = {
                        name: _growth.paired(large[name], small[name], _growth.REPEATS[name])
                        for name in _growth.STEPS
                    }
                    results[size] = row
                    say("    " + "  ".join(f"{k} {v.large * 1000:.2f} ms" for k, v in row.items()))
                    # The due rows leave, so the memory drain below sees only its own.
                    with grown.svc.engine.begin() as connection:
                        connection.execute(
                            sa.update(Message.__table__)
                            .where(Message.__table__.c.due_at <= grown.svc.clock.now())
                            .values(state="cancelled")
                        )
                if sink is not None:
                    peaks[size] = _workers.worker_peak_rss(
                        url, sink, grown.svc, grown.seed, drain, size, folder
                    )
                    grown.present += drain
                    say(f"    rss {peaks[size]:.0f} MB")
            for each in (grown, twin):
                if each is not None:
                    each.svc.engine.dispose()
    finally:
        if sink is not None:
            sink.stop()
    if results:
        say(f"  growth, {last:,} against {first:,} rows (the floor: the same step on the twin):")
        for name, step in results[last].items():
            say(f"    {name:>15}: {step.small * 1000:8.2f} ms -> {step.large * 1000:8.2f} ms"
                f"  ratio {verdict(f'growth {name} {last:,}/{first:,}', step.ratio, 1.5, at_least=False)}")  # fmt: skip
        at_first = ", ".join(f"{name} {step.ratio:.2f}" for name, step in results[first].items())
        say(f"    (at {first:,} against its twin, the same size: {at_first}; the noise)")
    for size, rss in peaks.items():
        met = "met" if rss < 150 else "MISSED"
        VERDICTS.append(f"memory with {size:,} rows: {rss:.0f} MB (target < 150 MB) {met}")
        say(f"    peak RSS with {size:>9,} rows: {rss:6.0f} MB (target < 150 MB: {met})")


def scaleout(options: argparse.Namespace, folder: Path) -> None:
    postgres = options.database_url or DEFAULT_POSTGRES
    count = 2_000 if options.quick else 8_000
    heading(f"scale-out: {count:,} due messages, `notifier worker` x1 then x2, PostgreSQL")
    try:
        sa.create_engine(postgres).connect().close()
    except sa.exc.OperationalError:
        say(f"  skipped: no PostgreSQL at {postgres}")
        VERDICTS.append("scale-out: skipped (no PostgreSQL)")
        return
    # Beside the SMTP sink and PostgreSQL on this box's cores, then against a sink that takes
    # 5 ms to accept each message, as a mail server elsewhere does: there the workers wait on
    # the server, not on the CPU, and what a second worker adds shows what claiming costs.
    for name, reply_delay in (("sink on this box", 0.0), ("a mail server 5 ms away", 0.005)):
        rates = {
            workers: _workers.scaleout_rate(postgres, folder, count, workers, reply_delay)
            for workers in (1, 2)
        }
        say(f"  {name}:")
        say(f"    one worker:  {rates[1]:7.0f} messages/s (the floor)")
        say(f"    two workers: {rates[2]:7.0f} messages/s")
        say(
            f"          ratio: "
            f"{verdict(f'scale-out, {name}', rates[2] / rates[1], 1.6, at_least=True)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few minutes: tables up to 100k")
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server (admin URL)")
    parser.add_argument("--only", default="ingest,dispatch,growth,memory,scaleout")
    options = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("notifier").setLevel(logging.WARNING)
    parts = set(options.only.split(","))
    folder = common.scratch()
    say(f"notifier benchmarks ({'quick' if options.quick else 'full'}), {os.cpu_count()} cores, "
        f"run {uuid.uuid4().hex[:8]}")  # fmt: skip
    try:
        if "ingest" in parts:
            ingest(options, folder)
        if "dispatch" in parts:
            dispatch(options, folder)
        if parts & {"growth", "memory"}:
            growth_and_memory(options, folder, parts)
        if "scaleout" in parts:
            scaleout(options, folder)
    finally:
        common.remove(folder)
    say()
    say(f"== verdicts   [loadavg {' '.join(common.loadavg_fields())}]")
    for line in VERDICTS:
        say(f"  {line}")


if __name__ == "__main__":
    main()
