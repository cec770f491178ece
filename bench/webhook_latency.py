"""Sequential signed Shopify webhooks against `notifier serve`, beside a bare Flask floor.

Both run under waitress on this machine in the same run; the ratio is what matters. Also times
how long the first email takes to appear in the .eml outbox after its webhook was answered.

    .venv/bin/python bench/webhook_latency.py [--requests 300]
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
import time
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


def run(url: str, count: int, offset: int) -> list[float]:
    session = requests.Session()
    timings = []
    for number in range(offset, offset + count):
        body, headers = signed(number)
        start = time.perf_counter()
        response = session.post(url, data=body, headers=headers, timeout=10)
        timings.append(time.perf_counter() - start)
        if response.status_code >= 300:
            raise SystemExit(f"{url} answered {response.status_code}: {response.text}")
    return timings


def describe(name: str, timings: list[float]) -> str:
    ordered = sorted(timings)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    return (
        f"{name:>9}: {len(timings) / sum(timings):7.0f} req/s  "
        f"p50 {statistics.median(ordered) * 1000:6.2f} ms  p99 {p99 * 1000:6.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    count = parser.parse_args().requests
    with tempfile.TemporaryDirectory() as folder:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
        env["NOTIFIER_INSTANCE_PATH"] = folder
        notifier = str(BIN / "notifier")
        subprocess.run(
            [notifier, "shop", "add", "bench", "--platform", "shopify", "--domain",
             "bench.myshopify.com", "--secret", SECRET, "--sender", "Bench <b@bench.example>"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        (Path(folder) / "bare.py").write_text(BARE_APP)
        service_port, bare_port = free_port(), free_port()
        service = subprocess.Popen(
            [notifier, "serve", "--port", str(service_port)], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        bare = subprocess.Popen(
            [str(BIN / "waitress-serve"), "--threads", "8", "--port", str(bare_port), "bare:app"],
            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_up(f"http://127.0.0.1:{service_port}/healthz")
            wait_up(f"http://127.0.0.1:{bare_port}/")
            outbox = Path(folder) / "outbox"
            body, headers = signed(0)
            url = f"http://127.0.0.1:{service_port}/webhooks/shopify"
            requests.post(url, data=body, headers=headers, timeout=10)
            answered = time.perf_counter()
            while not list(outbox.glob("*.eml")):
                time.sleep(0.001)
            first_email = time.perf_counter() - answered
            bare_timings = run(f"http://127.0.0.1:{bare_port}/webhooks/shopify", count, 1)
            service_timings = run(url, count, 1)
        finally:
            service.terminate()
            bare.terminate()
            service.wait(timeout=20)
            bare.wait(timeout=20)
    print(describe("bare", bare_timings))
    print(describe("notifier", service_timings))
    ratio = (len(service_timings) / sum(service_timings)) / (len(bare_timings) / sum(bare_timings))
    print(f"    ratio: {ratio:.2f} of the bare floor (sequential, SQLite, synchronous=FULL)")
    print(f"first email in the outbox {first_email * 1000:.0f} ms after its webhook was answered")


if __name__ == "__main__":
    main()
