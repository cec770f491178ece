"""Signed Shopify webhooks against the service, beside a bare Flask floor, at each concurrency.

Both run under the same production server (waitress, 16 threads, one process) on this machine in
the same run; the ratio is what matters. The service runs as the web tier of the production
layout (`waitress-serve wsgi:app`, no dispatcher in the process), once per apply mode: `inline`
(the webhook applies its news before answering) and `deferred` (it stores and answers; a worker
applies). For deferred, the worker's applier then drains what was stored, timed on its own, so
the cost moved off the request is printed too, never hidden.

The client is the same for both: one keep-alive connection per thread (http.client), bodies
signed before the clock starts, so the floor measures the server rather than the client.

    .venv/bin/python bench/webhook_latency.py [--requests 1000] [--concurrency 16,64]
        [--apply inline,deferred] [--postgres postgresql+psycopg://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import gc
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common

ROOT = common.ROOT
BENCH = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
# The floor reads the body and answers with nothing. Not 204: waitress closes the connection
# after every 204 (it may send no Content-Length), so that floor would pay a TCP handshake per
# request that the service, answering 200 with a length, does not. An empty 200 keeps it alive.
BARE_APP = """
from flask import Flask, request
app = Flask(__name__)
@app.post("/webhooks/shopify")
def hook():
    request.get_data()
    return "", 200
"""
DRAIN = """
import sys, time
from notifier import applier, create_app
app = create_app()
svc = app.extensions["notifier"]
started = time.perf_counter()
count = applier.apply_pending(svc.sessions, svc.clock, svc.renderer.locales)
print(count, time.perf_counter() - started)
"""
Signed = tuple[bytes, dict[str, str]]


@dataclass
class Run:
    name: str
    timings: list[float]
    wall: float

    @property
    def rate(self) -> float:
        return len(self.timings) / self.wall

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.timings)
        return ordered[max(int(len(ordered) * 0.99) - 1, 0)] * 1000

    def line(self) -> str:
        return (
            f"{self.name:>18}: {self.rate:7.0f} req/s  "
            f"p50 {statistics.median(self.timings) * 1000:6.2f} ms  p99 {self.p99_ms:6.2f} ms"
        )


@dataclass
class Result:
    database: str
    concurrency: int
    apply: str
    bare: Run
    least: Run  # bench/least_work.py: only what the contract requires, no framework of ours
    service: Run
    drained: tuple[int, float] | None  # deferred: (events applied, seconds)

    @property
    def ratio(self) -> float:
        return self.service.rate / self.bare.rate


def sign_all(first: int, count: int) -> list[Signed]:
    signed = []
    for number in range(first, first + count):
        body, headers = common.signed(common.example_order(number))
        headers["X-Shopify-Webhook-Id"] = f"bench-{number}"
        signed.append((body, headers))
    return signed


def post_all(port: int, deliveries: list[Signed], concurrency: int, name: str) -> Run:
    """Each delivery POSTed once by `concurrency` clients, each on its own keep-alive connection."""
    local = threading.local()

    def one(delivery: Signed) -> float:
        if not hasattr(local, "connection"):
            local.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        body, headers = delivery
        start = time.perf_counter()
        local.connection.request("POST", "/webhooks/shopify", body=body, headers=headers)
        response = local.connection.getresponse()
        answer = response.read()
        took = time.perf_counter() - start
        if response.status >= 300:
            raise SystemExit(f"{name} answered {response.status}: {answer[:300]!r}")
        return took

    gc.collect()
    gc.disable()  # a collection in this client would stall every request in flight at once
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            timings = list(pool.map(one, deliveries))
        return Run(name, timings, time.perf_counter() - started)
    finally:
        gc.enable()


SERVER = ["waitress"]  # or ["gunicorn", processes]: set by --server


def server_command(port: int, app: str) -> list[str]:
    if SERVER[0] == "gunicorn":
        processes = SERVER[1]
        return [str(BIN / "gunicorn"), "--workers", processes, "--threads", "16",
                "--worker-class", "gthread", "--bind", f"127.0.0.1:{port}", app]  # fmt: skip
    return [str(BIN / "waitress-serve"), "--threads", "16", "--port", str(port), app]


def serve(stack: ExitStack, command: list[str], cwd: Path, env: dict[str, str] | None) -> int:
    port = common.free_port()
    process = subprocess.Popen(
        server_command(port, *command),
        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def stop() -> None:
        process.terminate()
        process.wait(timeout=20)

    stack.callback(stop)
    for _ in range(200):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            return port
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{command} never came up")


def measure(
    *, requests: int, concurrencies: list[int], modes: list[str], postgres: str | None
) -> list[Result]:
    results = []
    database = "PostgreSQL" if postgres else "SQLite"
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        folder = Path(scratch)
        (folder / "bare.py").write_text(BARE_APP)
        bare_port = serve(stack, ["bare:app"], folder, None)
        offset = 0
        for mode in modes:
            for concurrency in concurrencies:
                offset += requests + 1
                deliveries = sign_all(offset, requests + 1)
                name = f"{mode}-c{concurrency}"
                with ExitStack() as service_stack:
                    env = _instance(service_stack, folder / name, postgres, name, mode)
                    port = serve(service_stack, ["wsgi:app"], ROOT, env)
                    least_port = serve(service_stack, ["least_work:app"], BENCH, _least(env))
                    for warmed in (port, bare_port, least_port):  # each warm
                        post_all(warmed, deliveries[:1], 1, "warm-up")
                    bare = post_all(bare_port, deliveries[1:], concurrency, "bare Flask")
                    least = post_all(least_port, deliveries[1:], concurrency, "least work")
                    service = post_all(port, deliveries[1:], concurrency, f"notifier {mode}")
                    drained = _drain(env) if mode == "deferred" else None
                results.append(Result(database, concurrency, mode, bare, least, service, drained))
    return results


def _instance(
    stack: ExitStack, folder: Path, postgres: str | None, name: str, mode: str
) -> dict[str, str]:
    """A migrated empty database with the bench shop, and the environment naming it."""
    folder.mkdir()
    url = stack.enter_context(common.database(postgres, folder, name.replace("-", "_")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    env.update(NOTIFIER_INSTANCE_PATH=str(folder), NOTIFIER_DATABASE_URL=url, NOTIFIER_APPLY=mode)
    subprocess.run(
        [str(BIN / "notifier"), "shop", "add", "bench", "--platform", "shopify", "--domain",
         common.DOMAIN, "--secret", common.SECRET, "--sender", "Bench <b@bench.example>"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    return env


def _least(env: dict[str, str]) -> dict[str, str]:
    """bench/least_work.py's environment: the run's database (its own table), the shop's secret."""
    url = env["NOTIFIER_DATABASE_URL"]
    database = url.removeprefix("sqlite:///") + "-least" if url.startswith("sqlite") else url
    return {**env, "LEAST_WORK_DATABASE": database, "LEAST_WORK_SECRET": common.SECRET}


def _drain(env: dict[str, str]) -> tuple[int, float]:
    """What a worker's applier takes to apply everything the deferred run stored."""
    done = subprocess.run(
        [sys.executable, "-c", DRAIN], env=env, cwd=ROOT, check=True, capture_output=True, text=True
    )
    count, seconds = done.stdout.split()
    return int(count), float(seconds)


def report(result: Result) -> list[str]:
    target = 0.5 if result.database == "SQLite" else 0.4
    lines = [
        f"{result.database}, concurrency {result.concurrency}, apply {result.apply}:",
        "  " + result.bare.line(),
        "  "
        + result.least.line()
        + f"  ({result.least.rate / result.bare.rate:.2f}: the contract's least work)",
        "  " + result.service.line(),
        f"  {'ratio':>18}: {result.ratio:.2f} of the bare floor (target {target}"
        + (", p99 < 50 ms)" if result.concurrency == 16 else ")"),
    ]
    if result.drained:
        count, seconds = result.drained
        lines.append(
            f"  {'then applied':>18}: {count} stored deliveries by one worker in {seconds:.1f} s "
            f"({count / seconds:.0f}/s)"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", default="16,64")
    parser.add_argument("--apply", default="inline,deferred")
    parser.add_argument("--postgres", default=None, help="a PostgreSQL server; default SQLite")
    parser.add_argument("--server", default="waitress", help="waitress, or gunicorn:PROCESSES")
    options = parser.parse_args()
    SERVER[:] = options.server.split(":")
    results = measure(
        requests=options.requests,
        concurrencies=[int(c) for c in options.concurrency.split(",")],
        modes=options.apply.split(","),
        postgres=options.postgres,
    )
    print(f"{options.requests} signed distinct webhooks per run")
    for result in results:
        print("\n".join(report(result)))


if __name__ == "__main__":
    main()
