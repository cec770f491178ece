"""The console as an agent uses it: Debian's chromium, driven by Playwright, against `notifier serve`.

The service runs as a new user runs it (its own process, waitress, the system clock, SQLite and
the `.eml` outbox); shops and agents are added with the `notifier` command, the order arrives as
signed webhooks. Skipped without chromium, unless NOTIFIER_TEST_REQUIRE_BROWSER=1 (CI sets it).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from .conftest import EXAMPLES, SHOPIFY_SECRET, shopify_headers
from .test_dispatch import free_port
from .test_service import BIN, notifier, wait_for

CHROMIUM = shutil.which("chromium")
REQUIRE_BROWSER = os.environ.get("NOTIFIER_TEST_REQUIRE_BROWSER") == "1"
AGENT, PASSWORD = "mia@support.example", "plum-kettle-harbour-57"
TRACKING = "JD014600006281230704"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One chromium for the whole session: Debian's, never a downloaded one."""
    missing = None
    if CHROMIUM is None:
        missing = "chromium is not installed (apt-get install chromium)"
    elif importlib.util.find_spec("playwright") is None:
        missing = "playwright is not installed (pip install -e '.[test]')"
    if missing:
        if REQUIRE_BROWSER:
            pytest.fail(f"NOTIFIER_TEST_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`notifier serve` on a free loopback port, with one shop, one agent and order #1001."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NOTIFIER_")}
    env.update(
        NOTIFIER_INSTANCE_PATH=str(tmp_path / "instance"),
        NOTIFIER_DATABASE_URL=f"sqlite:///{tmp_path / 'notifier.db'}",
    )
    secret = tmp_path / "password"
    secret.write_text(PASSWORD)
    for command in (
        ("shop", "add", "lumen", "--platform", "shopify", "--domain", "lumen.myshopify.com",
         "--secret", SHOPIFY_SECRET, "--sender", "Lumen & Co. <orders@lumen.example>",
         "--timezone", "Europe/Berlin"),
        ("agent", "add", AGENT, "--shop", "lumen", "--password-file", str(secret)),
    ):  # fmt: skip
        done = notifier(*command, env=env)
        assert done.returncode == 0, done.stderr
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "notifier"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(f"{base}/healthz", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        wait_for(up)
        for topic, example in (
            ("orders/create", "shopify-order.json"),
            ("fulfillments/create", "shopify-fulfillment.json"),
        ):
            body = (EXAMPLES / example).read_bytes()
            posted = requests.post(
                f"{base}/webhooks/shopify",
                data=body,
                headers=shopify_headers(body, topic=topic),
                timeout=10,
            )
            assert posted.status_code == 200, posted.text
        yield base, env
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            # The browser may still hold keep-alive connections open; the test is over.
            process.kill()
            process.wait(timeout=15)


def _query(env: dict[str, str], sql: str, **params: Any) -> list[Any]:
    engine = sa.create_engine(env["NOTIFIER_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text(sql), params))
    finally:
        engine.dispose()


def _message_id(env: dict[str, str], kind: str) -> str:
    [row] = _query(env, "SELECT rfc_message_id FROM messages WHERE kind = :kind", kind=kind)
    return str(row.rfc_message_id)


def _sent_email(outbox: Path, message_id: str) -> EmailMessage | None:
    """The .eml in the outbox with this Message-ID, once the service's dispatcher wrote it."""
    for path in outbox.glob("*.eml"):
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        if mail["Message-ID"] == message_id:
            assert isinstance(mail, EmailMessage)
            return mail
    return None


def _notes_in_ledger(env: dict[str, str]) -> list[dict[str, Any]]:
    rows = _query(
        env,
        "SELECT c.content FROM ledger_entries e JOIN ledger_contents c "
        "ON c.sha256 = e.content_sha256 WHERE e.kind = 'note'",
    )
    return [json.loads(row.content) for row in rows]


def test_an_agent_finds_reads_notes_exports_and_signs_out(
    browser: Any, service: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    base, env = service
    outbox = Path(env["NOTIFIER_INSTANCE_PATH"]) / "outbox"
    confirmation = _message_id(env, "order_confirmation")
    sent = wait_for(lambda: _sent_email(outbox, confirmation))  # it leaves at once
    context = browser.new_context(accept_downloads=True, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(10_000)

    # Signed out, the console sends the agent to sign in, then back where they were going.
    page.goto(f"{base}/console/")
    assert "/console/login" in page.url
    page.fill("#email", AGENT)
    page.fill("#password", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(f"{base}/console/")

    # Find the order by its tracking number, open it.
    page.fill("input[name=q]", TRACKING)
    page.press("input[name=q]", "Enter")
    page.wait_for_url(re.compile(r".*/console/\?q="))
    assert "1 order matches" in page.inner_text("h1")
    page.click("table.results a:has-text('#1001')")
    page.wait_for_selector("h1:has-text('Order #1001')")
    assert TRACKING in page.inner_text("section.shipments")

    # Read the confirmation exactly as sent: its HTML part in the sandboxed frame.
    page.click("li.row-message:has-text('order_confirmation') >> text=Details and email")
    page.wait_for_selector("iframe.email-frame")
    page.click("details.headers summary")
    assert sent["Subject"] in page.inner_text("table.kv")
    text_part = sent.get_body(preferencelist=("plain",))
    assert text_part is not None
    greeting = text_part.get_content().strip().splitlines()[0]  # "Guten Tag Anna Schmidt,"
    shown = page.frame_locator("iframe.email-frame").first.locator("body").inner_text()
    assert greeting in shown
    assert "#1001" in shown
    assert page.locator("iframe.email-frame").first.get_attribute("sandbox") == ""

    # A note joins the timeline and the ledger.
    page.click("p.crumbs a")
    page.fill("#note", "Buyer called about customs; told them to wait.")
    page.click("#add-note button")
    page.wait_for_selector("li.kind-note")
    assert "Buyer called about customs" in page.inner_text("li.kind-note")
    assert _notes_in_ledger(env) == [
        {"author": AGENT, "text": "Buyer called about customs; told them to wait."}
    ]

    # Evidence, when this release has it, downloads as a ZIP.
    if importlib.util.find_spec("notifier.evidence") is not None:
        with page.expect_download() as downloading:
            page.click("text=Export evidence (ZIP)")
        download = downloading.value
        assert download.suggested_filename.endswith(".zip")
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        assert "manifest.json" in zipfile.ZipFile(io.BytesIO(saved.read_bytes())).namelist()

    # Signing out ends the session: the order is out of reach again.
    order_url = page.url.split("#")[0]
    page.click("text=Sign out")
    page.wait_for_url(re.compile(r".*/console/login"))
    page.goto(order_url)
    assert "/console/login" in page.url
    context.close()
