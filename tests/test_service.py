"""The service as a new user runs it: real processes, real HTTP, the default .eml outbox."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
import requests

from .conftest import EXAMPLES, SHOPIFY_SECRET, shopify_headers
from .test_dispatch import free_port

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


def notifier(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "notifier"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def wait_for(predicate, seconds: float = 20.0):  # type: ignore[no-untyped-def]
    """Poll an outside process's visible state, bounded; the service's own timing is not tested here."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"not true within {seconds} s")


@pytest.fixture
def served(environment: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "notifier"), "serve", "--port", str(port)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(f"{base}/healthz", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        wait_for(up)
        yield base, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


def test_a_signed_shopify_order_lands_as_a_german_eml(
    environment: dict[str, str], served: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    base, process = served
    added = notifier(
        "shop", "add", "lumen", "--platform", "shopify", "--domain", "lumen.myshopify.com",
        "--secret", SHOPIFY_SECRET, "--sender", "Lumen & Co. <orders@lumen.example>",
        "--support-email", "help@lumen.example", "--timezone", "Europe/Berlin",
        env=environment,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    body = (EXAMPLES / "shopify-order.json").read_bytes()
    headers = shopify_headers(body, webhook_id="e2e-1")
    outbox = tmp_path / "instance" / "outbox"

    accepted = requests.post(f"{base}/webhooks/shopify", data=body, headers=headers, timeout=10)
    [eml] = wait_for(lambda: list(outbox.glob("*.eml")))
    duplicate = requests.post(f"{base}/webhooks/shopify", data=body, headers=headers, timeout=10)
    forged = requests.post(
        f"{base}/webhooks/shopify",
        data=body,
        headers={**headers, "X-Shopify-Hmac-Sha256": "Zm9yZ2Vk"},
        timeout=10,
    )
    health = requests.get(f"{base}/readyz", timeout=5).json()

    assert accepted.status_code == 200
    assert accepted.json()["status"] == "accepted"
    assert duplicate.json()["status"] == "duplicate"
    assert forged.status_code == 401
    assert forged.headers["Content-Type"] == "application/problem+json"
    assert health["due_messages"] == 0
    assert list(outbox.glob("*.eml")) == [eml]
    mail = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert mail["Subject"] == "Bestellung #1001 bestätigt – vielen Dank!"
    assert "Gesamtsumme: 1.234,56\xa0€" in mail.get_body(("plain",)).get_content()
    timeline = notifier("timeline", "#1001", "--json", env=environment)
    [message] = json.loads(timeline.stdout)["messages"]
    assert message["state"] == "sent"
    assert message["deliveries"][0]["response"] == f"written to {eml}"

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0


def test_serve_creates_a_new_database_by_itself(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("NOTIFIER_")}
    env["NOTIFIER_INSTANCE_PATH"] = str(tmp_path / "fresh")
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "notifier"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def health() -> dict[str, object] | None:
            try:
                return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).json()  # type: ignore[no-any-return]
            except requests.ConnectionError:
                return None

        assert wait_for(health)["database"] == "ok"
        assert (tmp_path / "fresh" / "notifier.db").exists()
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_worker_refuses_a_database_that_needs_upgrading(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("NOTIFIER_")}
    env["NOTIFIER_INSTANCE_PATH"] = str(tmp_path / "old")

    result = notifier("worker", "--once", env=env)

    assert result.returncode == 1
    assert "run `notifier db upgrade`" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.usefixtures("shopify_shop")
def test_a_worker_process_sends_what_the_web_side_planned(
    environment: dict[str, str], client: Any, tmp_path: Path
) -> None:
    from .conftest import post_shopify, shopify_order

    outbox = tmp_path / "worker-outbox"
    environment["NOTIFIER_MAIL_URL"] = outbox.as_uri()
    worker = subprocess.Popen(
        [str(BIN / "notifier"), "worker"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        accepted = post_shopify(client, shopify_order())
        [eml] = wait_for(lambda: list(outbox.glob("*.eml")))
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=20)
    finally:
        if worker.poll() is None:
            worker.kill()
        _, errors = worker.communicate(timeout=10)

    assert accepted.json["status"] == "accepted"
    assert code == 0, errors
    mail = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert mail["Subject"] == "Bestellung #1001 bestätigt – vielen Dank!"


README = (ROOT / "README.md").read_text()


def readme_block(*must_contain: str) -> str:
    """The README's one shell block that contains every given fragment."""
    blocks = [
        block
        for block in re.findall(r"```sh\n(.*?)```", README, re.S)
        if all(part in block for part in must_contain)
    ]
    assert len(blocks) == 1, f"expected one README block with {must_contain}"
    return blocks[0]


def test_the_readmes_standard_bodies_are_the_example_files() -> None:
    bodies = [json.loads(body) for body in re.findall(r"```json\n(.*?)```", README, re.S)]

    assert bodies == [
        json.loads((EXAMPLES / name).read_text())
        for name in ("standard-order.json", "standard-shipment.json")
    ]


def test_the_readmes_commands_work_as_written(
    environment: dict[str, str], served: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    """Run the README's shop and curl blocks verbatim against a live service."""
    base, _ = served
    workdir = tmp_path / "user"
    workdir.mkdir()
    (workdir / "examples").symlink_to(EXAMPLES)
    (workdir / ".venv").symlink_to(BIN.parent)
    (workdir / "shopify-secret.txt").write_text("shpss_readme_walkthrough_secret\n")
    (workdir / "aftership-secret.txt").write_text("aftership_readme_walkthrough_secret\n")
    script = "\n".join(
        [
            "set -euo pipefail",
            readme_block("notifier shop add lumen", "--secret-file shopify-secret.txt"),
            readme_block("webhooks/shopify", "X-Shopify-Hmac-Sha256"),
            readme_block("notifier shop add atelier"),
            readme_block("webhooks/standard/atelier"),
            readme_block("aftership_secret="),
            readme_block("webhooks/aftership/lumen"),
            readme_block("notifier shop add kaffee"),
            ".venv/bin/notifier timeline '#1001'",
            ".venv/bin/notifier timeline 2093",
        ]
    ).replace("http://127.0.0.1:8000", base)

    result = subprocess.run(
        ["bash", "-c", script],
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    # The order, the standard order, and the AfterShip journey (whose email waits for Berlin's day).
    assert result.stdout.count('"status":"accepted"') == 3, result.stdout
    outbox = tmp_path / "instance" / "outbox"
    subjects = {
        message_from_bytes(path.read_bytes(), policy=policy.default)["Subject"]
        for path in wait_for(lambda: len(list(outbox.glob("*.eml"))) >= 2 and outbox.glob("*.eml"))
    }
    # The delivered email joins them at once only while it is day in Berlin.
    assert subjects >= {
        "Bestellung #1001 bestätigt – vielen Dank!",
        "Bestellung 2093 bestätigt – vielen Dank!",
    }
