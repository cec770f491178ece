"""Real `notifier worker` processes for the benchmarks: started, waited on, measured."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common as common

BIN = Path(sys.executable).parent


def worker_peak_rss(
    url: str, sink: common.Sink, svc: Any, seed: Any, drain: int, size: int, folder: Path
) -> float:
    """Peak RSS (VmHWM) of one `notifier worker` draining `drain` due messages, with its sending
    process's (each one's peak, summed: at worst they peaked together); in MB."""
    common.fill(svc.engine, seed, drain, due=True, now=svc.clock.now(), start=10**9 + size)
    before = sink.received
    process = start_worker(url, sink, folder / f"worker-{size}")
    try:
        wait_for(lambda: sink.received - before >= drain, 1800)
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        peaks = [peak_rss_mb(pid) for pid in [process.pid, *map(int, children)]]
    finally:
        process.terminate()
        process.wait(30)
    return sum(peaks)


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    peak = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(peak.split()[1]) / 1024


def start_worker(url: str, sink: common.Sink, instance: Path) -> subprocess.Popen[bytes]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("NOTIFIER_")}
    env.update(
        NOTIFIER_DATABASE_URL=url,
        NOTIFIER_MAIL_URL=sink.url(),
        NOTIFIER_INSTANCE_PATH=str(instance),
        NOTIFIER_DISPATCH_POLL_SECONDS="0.1",
    )
    return subprocess.Popen(
        [str(BIN / "notifier"), "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(condition: Callable[[], bool], limit: float) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the workers")
        time.sleep(0.05)


# --- scale-out ----------------------------------------------------------------------------


def scaleout_rate(
    postgres: str, folder: Path, count: int, workers: int, reply_delay: float
) -> float:
    """Messages a second that `workers` worker processes deliver together."""
    sink = common.Sink(reply_delay)
    try:
        label = f"scale{workers}-{int(reply_delay * 1000)}"
        with common.database(postgres, folder, label.replace("-", "_")) as url:
            app = common.make_app(url, folder / f"{label}-instance")
            svc = app.extensions["notifier"]
            seed = common.prepare(app)
            common.fill(svc.engine, seed, count, due=True, now=svc.clock.now())
            svc.engine.dispose()
            before = sink.received
            processes = [start_worker(url, sink, folder / f"{label}-{n}") for n in range(workers)]
            try:
                # Timed from the 10th to the 90th percent received: start-up is not the point.
                wait_for(lambda b=before: sink.received - b >= count // 10, 600)
                started = time.perf_counter()
                wait_for(lambda b=before: sink.received - b >= count * 9 // 10, 1800)
                rate = (count * 8 // 10) / (time.perf_counter() - started)
                engine = svc.engine
                wait_for(lambda e=engine: common.count_sent(e) >= count, 600)
            finally:
                for process in processes:
                    process.terminate()
                for process in processes:
                    process.wait(30)
                svc.engine.dispose()
    finally:
        sink.stop()
    return rate
