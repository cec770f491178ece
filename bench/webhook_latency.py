"""Signed Shopify webhooks against the service, beside a bare Flask floor, at a concurrency.

Both run under the same production server (waitress, 16 threads, one process) on this machine in
the same run; the ratio is what matters. The service runs as the web tier of the production
layout (`waitress-serve wsgi:app`): no dispatcher in the process, as workers run apart.

    .venv/bin/python bench/webhook_latency.py [--requests 300] [--concurrency 16]
        [--database-url postgresql+psycopg://postgres@127.0.0.1/bench]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SECRET = "shpss_bench_secret_0123456789"
BARE_APP = """
from flask import Flask, request
app = Flask(__name__)
@app.post("/webhooks/shopify")
def hook():
    request.get_data()
    return "", 204
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_up(url: str) -> None:
    for _ in range(200):
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise SystemExit(f"{url} never came up")


def signed(number: int) -> tuple[bytes, dict[str, str]]:
    order = json.loads((ROOT / "examples" / "shopify-order.json").read_text())
    order.update(id=10**12 + number, name=f"#B{number}")
    body = json.dumps(order).encode()
    digest = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return body, {
        "Content-Type": "application/json",
        "X-Shopify-Shop-Domain": "bench.myshopify.com",
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": f"bench-{number}",
        "X-Shopify-Hmac-Sha256": digest,
    }


def run(url: str, count: int, offset: int, concurrency: int) -> tuple[list[float], float]:
    """Latencies of `count` distinct deliveries sent by `concurrency` clients, and the wall time."""
    local = threading.local()

    def one(number: int) -> float:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        body, headers = signed(number)
        start = time.perf_counter()
        response = local.session.post(url, data=body, headers=headers, timeout=30)
        took = time.perf_counter() - start
        if response.status_code >= 300:
            raise SystemExit(f"{url} answered {response.status_code}: {response.text}")
        return took

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        timings = list(pool.map(one, range(offset, offset + count)))
    return timings, time.perf_counter() - started


def describe(name: str, timings: list[float], wall: float) -> str:
    ordered = sorted(timings)
    p99 = ordered[max(int(len(ordered) * 0.99) - 1, 0)]
    return (
        f"{name:>9}: {len(timings) / wall:7.0f} req/s  "
        f"p50 {statistics.median(ordered) * 1000:6.2f} ms  p99 {p99 * 1000:6.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--database-url", default=None, help="an empty database; default SQLite")
    options = parser.parse_args()
    count, concurrency = options.requests, options.concurrency
    with tempfile.TemporaryDirectory() as folder:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
        env["NOTIFIER_INSTANCE_PATH"] = folder
        if options.database_url:
            env["NOTIFIER_DATABASE_URL"] = options.database_url
            subprocess.run([str(BIN / "notifier"), "db", "upgrade"], env=env, check=True)
        notifier = str(BIN / "notifier")
        subprocess.run(
            [notifier, "shop", "add", "bench", "--platform", "shopify", "--domain",
             "bench.myshopify.com", "--secret", SECRET, "--sender", "Bench <b@bench.example>"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        (Path(folder) / "bare.py").write_text(BARE_APP)
        service_port, bare_port = free_port(), free_port()
        if not options.database_url:
            subprocess.run([notifier, "db", "upgrade"], env=env, check=True, capture_output=True)
        service = subprocess.Popen(
            [str(BIN / "waitress-serve"), "--threads", "16", "--port", str(service_port),
             "wsgi:app"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        floor = subprocess.Popen(
            [str(BIN / "waitress-serve"), "--threads", "16", "--port", str(bare_port), "bare:app"],
            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_up(f"http://127.0.0.1:{service_port}/healthz")
            wait_up(f"http://127.0.0.1:{bare_port}/")
            url = f"http://127.0.0.1:{service_port}/webhooks/shopify"
            body, headers = signed(0)  # warm up both
            requests.post(url, data=body, headers=headers, timeout=10)
            requests.post(f"http://127.0.0.1:{bare_port}/webhooks/shopify", data=body, timeout=10)
            bare = run(f"http://127.0.0.1:{bare_port}/webhooks/shopify", count, 1, concurrency)
            service_run = run(url, count, 1, concurrency)
        finally:
            service.terminate()
            floor.terminate()
            service.wait(timeout=20)
            floor.wait(timeout=20)
    database = "PostgreSQL" if options.database_url else "SQLite"
    print(f"{count} signed distinct webhooks, concurrency {concurrency}, {database}")
    print(describe("bare", *bare))
    print(describe("notifier", *service_run))
    ratio = (len(service_run[0]) / service_run[1]) / (len(bare[0]) / bare[1])
    print(f"    ratio: {ratio:.2f} of the bare floor (target 0.5 SQLite, 0.4 PostgreSQL)")


if __name__ == "__main__":
    main()
