"""The `notifier` command group: shops, timelines and previews, through Flask's CLI runner."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from notifier.models import Order, Platform, Shop
from notifier.transports.memory import MemoryTransport

from .conftest import SHOPIFY_SECRET, post_shopify, services, shopify_order

ROOT = Path(__file__).parents[1]
NEW_STANDARD_SECRET = "whsec_" + base64.b64encode(b"another-standard-secret-of-32-b!").decode()
NEW_SHOPIFY_SECRET = "shpss_rotated_fedcba9876543210"
SENDER = "Nordlicht <orders@nordlicht.example>"


def invoke(runner: FlaskCliRunner, *args: str) -> Result:
    return runner.invoke(args=["notifier", *args])


def assert_refused(result: Result, *message_parts: str) -> None:
    """A clean operator error: non-zero exit, a message, no traceback."""
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    for part in message_parts:
        assert part in result.output


def shop_named(app: Flask, slug: str) -> Shop | None:
    with services(app).sessions() as session:
        return session.scalar(select(Shop).where(Shop.slug == slug))


def shop_count(app: Flask) -> int:
    with services(app).sessions() as session:
        return len(list(session.scalars(select(Shop.id))))


# --- shop add -----------------------------------------------------------------------------


def test_add_a_shopify_shop_prints_its_url_and_never_the_secret(
    app: Flask, runner: FlaskCliRunner
) -> None:
    secret = "shpss_brand_new_0123456789abcdef"
    result = invoke(
        runner,
        "shop",
        "add",
        "nordlicht",
        "--platform",
        "shopify",
        "--domain",
        "Nordlicht.myshopify.com",
        "--secret",
        secret,
        "--sender",
        SENDER,
        "--locale",
        "de",
        "--timezone",
        "Europe/Vienna",
    )

    assert result.exit_code == 0, result.output
    assert "POST /webhooks/shopify" in result.output
    assert secret not in result.output
    shop = shop_named(app, "nordlicht")
    assert shop is not None
    assert shop.platform is Platform.SHOPIFY
    assert shop.domain == "nordlicht.myshopify.com"
    assert shop.webhook_secrets == [secret]
    assert (shop.sender, shop.locale, shop.timezone) == (SENDER, "de", "Europe/Vienna")

    listed = invoke(runner, "shop", "list")
    assert listed.exit_code == 0
    assert "nordlicht" in listed.output
    assert "nordlicht.myshopify.com" in listed.output
    assert secret not in listed.output


def test_add_a_standard_shop_prints_its_url_and_never_the_secret(
    app: Flask, runner: FlaskCliRunner
) -> None:
    result = invoke(
        runner,
        "shop",
        "add",
        "atelier-2",
        "--platform",
        "standard",
        "--secret",
        NEW_STANDARD_SECRET,
        "--sender",
        SENDER,
    )

    assert result.exit_code == 0, result.output
    assert "POST /webhooks/standard/atelier-2" in result.output
    assert NEW_STANDARD_SECRET not in result.output
    assert NEW_STANDARD_SECRET.removeprefix("whsec_") not in result.output
    shop = shop_named(app, "atelier-2")
    assert shop is not None
    assert shop.platform is Platform.STANDARD
    assert shop.domain is None
    assert shop.webhook_secrets == [NEW_STANDARD_SECRET]
    assert (shop.locale, shop.timezone) == ("en", "UTC")

    listed = invoke(runner, "shop", "list")
    assert "atelier-2" in listed.output
    assert "secrets: 1" in listed.output
    assert NEW_STANDARD_SECRET not in listed.output


def test_shop_list_hides_existing_secrets(
    runner: FlaskCliRunner, shopify_shop: Shop, standard_shop: Shop
) -> None:
    listed = invoke(runner, "shop", "list")

    assert listed.exit_code == 0
    assert [line.split("\t")[0] for line in listed.output.splitlines()] == ["atelier", "lumen"]
    assert SHOPIFY_SECRET not in listed.output
    assert standard_shop.webhook_secrets[0] not in listed.output


def test_secret_file_is_read(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(NEW_STANDARD_SECRET + "\n")

    result = invoke(
        runner,
        "shop",
        "add",
        "from-file",
        "--platform",
        "standard",
        "--secret-file",
        str(secret_file),
        "--sender",
        SENDER,
    )

    assert result.exit_code == 0, result.output
    assert NEW_STANDARD_SECRET not in result.output
    shop = shop_named(app, "from-file")
    assert shop is not None
    assert shop.webhook_secrets == [NEW_STANDARD_SECRET]


@pytest.mark.parametrize("how", ["both", "neither"])
def test_exactly_one_secret_source_is_required(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, how: str
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(NEW_STANDARD_SECRET)
    sources = (
        ["--secret", NEW_STANDARD_SECRET, "--secret-file", str(secret_file)]
        if how == "both"
        else []
    )

    result = invoke(
        runner, "shop", "add", "x", "--platform", "standard", "--sender", SENDER, *sources
    )

    assert_refused(result, "exactly one of --secret or --secret-file")
    assert NEW_STANDARD_SECRET not in result.output
    assert shop_count(app) == 0


def test_a_shopify_shop_needs_a_domain(app: Flask, runner: FlaskCliRunner) -> None:
    result = invoke(
        runner,
        "shop",
        "add",
        "nodomain",
        "--platform",
        "shopify",
        "--secret",
        "shpss_0123456789abcdef0123",
        "--sender",
        SENDER,
    )

    assert_refused(result, "--domain")
    assert shop_count(app) == 0


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("shpss_0123456789abcdef0123", "starts with 'whsec_'"),
        ("whsec_!!!!not-base64-at-all!!!!", "not base64"),
        ("whsec_" + base64.b64encode(b"too-short").decode(), "shorter than 16 bytes"),
        ("whsec_short", "shorter than 16 characters"),
    ],
)
def test_a_standard_secret_must_be_whsec_base64(
    app: Flask, runner: FlaskCliRunner, secret: str, message: str
) -> None:
    result = invoke(
        runner,
        "shop",
        "add",
        "std",
        "--platform",
        "standard",
        "--secret",
        secret,
        "--sender",
        SENDER,
    )

    assert_refused(result, message)
    assert secret not in result.output
    assert shop_count(app) == 0


def add_args(slug: str = "newshop", **options: str) -> list[str]:
    settings = {
        "--platform": "standard",
        "--secret": NEW_STANDARD_SECRET,
        "--sender": SENDER,
        **{f"--{key.replace('_', '-')}": value for key, value in options.items()},
    }
    options_first = (part for pair in settings.items() for part in pair)
    return ["shop", "add", *options_first, "--", slug]


@pytest.mark.parametrize("slug", ["Lumen", "my_shop", "-lead", "a" * 65, "shop.example", "", "ä"])
def test_an_invalid_slug_is_refused(app: Flask, runner: FlaskCliRunner, slug: str) -> None:
    result = invoke(runner, *add_args(slug))

    assert_refused(result, "a slug is 1-64 lowercase letters")
    assert shop_count(app) == 0


def test_a_slug_with_a_trailing_newline_is_refused(app: Flask, runner: FlaskCliRunner) -> None:
    result = invoke(runner, *add_args("lumen\n"))

    assert_refused(result, "a slug is 1-64 lowercase letters")
    assert shop_count(app) == 0


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("timezone", "Mars/Olympus_Mons", "is not an IANA timezone"),
        ("timezone", "europe/berlin", "is not an IANA timezone"),
        ("locale", "xx", "is not a locale Babel knows"),
        ("locale", "klingon!", "is not a locale Babel knows"),
        ("sender", "Nordlicht <orders@nordlicht.example>\nBcc: x@evil.example", "control"),
        ("sender", "Nordlicht\r\n<orders@nordlicht.example>", "control"),
        ("sender", "Nordlicht <not an address>", "the sender is not a valid address"),
        ("support_email", "help at nordlicht", "not an email address"),
        ("return_policy_url", "javascript:alert(1)", "is not an http(s) URL"),
    ],
)
def test_an_invalid_setting_is_refused(
    app: Flask, runner: FlaskCliRunner, option: str, value: str, message: str
) -> None:
    result = invoke(runner, *add_args(**{option: value}))

    assert_refused(result, message)
    assert shop_count(app) == 0


@pytest.mark.parametrize(
    "sender",
    ["Nord\u2028licht <orders@nordlicht.example>", "Nord\x85licht <orders@nordlicht.example>"],
)
def test_a_sender_the_mailer_would_refuse_is_refused(
    app: Flask, runner: FlaskCliRunner, sender: str
) -> None:
    result = invoke(runner, *add_args(sender=sender))

    assert_refused(result)
    assert shop_count(app) == 0


@pytest.mark.parametrize(
    "sender",
    [
        "=?utf-8?q?=0A?=Bcc: x@evil.example <orders@nordlicht.example>",
        "x@evil.example <orders@nordlicht.example>",
        "Nordlicht <orders@nordlicht.example>, x@evil.example",
    ],
)
def test_a_sender_that_is_not_exactly_one_mailbox_is_refused(
    app: Flask, runner: FlaskCliRunner, sender: str
) -> None:
    result = invoke(runner, *add_args(sender=sender))

    assert_refused(result)
    assert shop_count(app) == 0


def test_a_duplicate_slug_is_refused(
    app: Flask, runner: FlaskCliRunner, standard_shop: Shop
) -> None:
    result = invoke(runner, *add_args("atelier"))

    assert_refused(result, "a shop named 'atelier' exists already")
    assert shop_count(app) == 1
    shop = shop_named(app, "atelier")
    assert shop is not None
    assert shop.webhook_secrets == standard_shop.webhook_secrets


def test_a_duplicate_domain_is_refused(
    app: Flask, runner: FlaskCliRunner, shopify_shop: Shop
) -> None:
    result = invoke(
        runner,
        "shop",
        "add",
        "lumen-two",
        "--platform",
        "shopify",
        "--domain",
        "LUMEN.myshopify.com",
        "--secret",
        "shpss_0123456789abcdef0123",
        "--sender",
        SENDER,
    )

    assert_refused(result, "another shop already has the domain 'lumen.myshopify.com'")
    assert shop_count(app) == 1


# --- shop set -----------------------------------------------------------------------------


def test_setting_a_secret_rotates_it_and_never_prints_it(
    app: Flask, runner: FlaskCliRunner, shopify_shop: Shop
) -> None:
    result = invoke(runner, "shop", "set", "lumen", f"secret={NEW_SHOPIFY_SECRET}")

    assert result.exit_code == 0, result.output
    assert "secret replaced" in result.output
    assert NEW_SHOPIFY_SECRET not in result.output
    assert SHOPIFY_SECRET not in result.output
    shop = shop_named(app, "lumen")
    assert shop is not None
    assert shop.webhook_secrets == [NEW_SHOPIFY_SECRET, SHOPIFY_SECRET]


def test_a_second_rotation_keeps_only_the_previous_secret(
    app: Flask, runner: FlaskCliRunner, shopify_shop: Shop
) -> None:
    third = "shpss_third_secret_0000000000"
    invoke(runner, "shop", "set", "lumen", f"secret={NEW_SHOPIFY_SECRET}")
    result = invoke(runner, "shop", "set", "lumen", f"secret={third}")

    assert result.exit_code == 0, result.output
    shop = shop_named(app, "lumen")
    assert shop is not None
    assert shop.webhook_secrets == [third, NEW_SHOPIFY_SECRET]


def test_setting_plain_values(app: Flask, runner: FlaskCliRunner, shopify_shop: Shop) -> None:
    result = invoke(runner, "shop", "set", "lumen", "locale=de", "timezone=Asia/Shanghai")

    assert result.exit_code == 0, result.output
    assert "locale = de" in result.output
    shop = shop_named(app, "lumen")
    assert shop is not None
    assert (shop.locale, shop.timezone) == ("de", "Asia/Shanghai")


def test_setting_an_unknown_key_is_refused(
    app: Flask, runner: FlaskCliRunner, shopify_shop: Shop
) -> None:
    result = invoke(runner, "shop", "set", "lumen", "locale=de", "colour=blue")

    assert_refused(result, "unknown setting 'colour'")
    shop = shop_named(app, "lumen")
    assert shop is not None
    assert shop.locale == "en"  # nothing of the command was applied


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lumen", "locale"], "is not KEY=VALUE"),
        (["nowhere", "locale=de"], "no shop named 'nowhere'"),
        (["lumen", "timezone=Mars/Base"], "is not an IANA timezone"),
        (["lumen", "secret=short"], "shorter than 16 characters"),
    ],
)
def test_an_invalid_set_is_refused(
    runner: FlaskCliRunner, shopify_shop: Shop, args: list[str], message: str
) -> None:
    assert_refused(invoke(runner, "shop", "set", *args), message)


# --- timeline -----------------------------------------------------------------------------


@pytest.fixture
def posted_order(app: Flask, client: FlaskClient, shopify_shop: Shop) -> Order:
    response = post_shopify(client, shopify_order(), webhook_id="wh-timeline")
    assert response.status_code == 200
    with services(app).sessions() as session:
        order: Order = session.scalars(select(Order)).one()
    return order


@pytest.mark.parametrize("ref", ["#1001", "1001", "5523487293612"])
def test_timeline_shows_the_order_and_its_messages(
    runner: FlaskCliRunner, posted_order: Order, clock: Any, ref: str
) -> None:
    result = invoke(runner, "timeline", ref)

    assert result.exit_code == 0, result.output
    out = result.output
    assert "Order #1001 (id 5523487293612) at lumen: open" in out
    assert "shopify orders/create" in out
    assert "order_confirmation  scheduled  to anna.schmidt@example.org in de" in out
    assert "why: immediate kind: sent at once" in out
    local = clock.now().astimezone(ZoneInfo(posted_order.buyer_timezone))
    assert f"{local:%Y-%m-%d %H:%M %Z} buyer time" in out
    assert posted_order.buyer_timezone == "Europe/Berlin"  # from the German address
    assert "2026-11-23 10:00 CET buyer time" in out


def test_timeline_as_json(runner: FlaskCliRunner, posted_order: Order) -> None:
    result = invoke(runner, "timeline", "#1001", "--json")

    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["shop"] == "lumen"
    assert record["order"]["id"] == "5523487293612"
    assert record["order"]["timezone_source"] == "country DE"
    assert [event["delivery_id"] for event in record["events"]] == ["wh-timeline"]
    assert len(record["messages"]) == 1
    assert record["messages"][0]["state"] == "scheduled"
    assert record["messages"][0]["kind"] == "order_confirmation"
    assert record["messages"][0]["deliveries"] == []


def test_timeline_after_dispatch_shows_the_delivery(
    runner: FlaskCliRunner, posted_order: Order, dispatch: Any
) -> None:
    assert dispatch().sent == 1

    record = json.loads(invoke(runner, "timeline", "1001", "--json").output)

    [message] = record["messages"]
    assert message["state"] == "sent"
    assert [d["outcome"] for d in message["deliveries"]] == ["accepted"]


def test_timeline_with_the_wrong_shop_finds_nothing(
    runner: FlaskCliRunner, posted_order: Order, standard_shop: Shop
) -> None:
    assert_refused(invoke(runner, "timeline", "#1001", "--shop", "atelier"), "in shop atelier")


@pytest.mark.parametrize("ref", ["#9999", "9999", "nothing"])
def test_timeline_of_an_unknown_order_is_an_error(
    runner: FlaskCliRunner, posted_order: Order, ref: str
) -> None:
    assert_refused(invoke(runner, "timeline", ref), f"no order {ref!r}")


# --- preview ------------------------------------------------------------------------------


def test_preview_as_german_text(runner: FlaskCliRunner) -> None:
    result = invoke(runner, "preview", "order_confirmation", "--locale", "de", "--format", "text")

    assert result.exit_code == 0, result.output
    assert result.output.startswith("Subject: Bestellung #1001 bestätigt – vielen Dank!\n")
    assert "Guten Tag Anna Schmidt," in result.output


def test_preview_as_eml_parses(runner: FlaskCliRunner) -> None:
    result = invoke(runner, "preview", "order_confirmation", "--locale", "de", "--format", "eml")

    assert result.exit_code == 0, result.output
    parsed = message_from_bytes(result.stdout_bytes, policy=policy.default)
    assert parsed["Message-ID"] == "<order_confirmation.preview@lumen.example>"
    assert parsed["Subject"] == "Bestellung #1001 bestätigt – vielen Dank!"
    assert parsed.get_content_type() == "multipart/alternative"
    assert "Gesamtsumme" in parsed.get_body(("plain",)).get_content()


def test_preview_as_html_to_a_file(runner: FlaskCliRunner, tmp_path: Path) -> None:
    out = tmp_path / "preview.html"

    result = invoke(
        runner,
        "preview",
        "order_confirmation",
        "--locale",
        "de",
        "--format",
        "html",
        "--out",
        str(out),
    )

    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    html = out.read_text(encoding="utf-8")
    assert 'lang="de"' in html
    assert "Vielen Dank für Ihre Bestellung!" in html


def test_preview_in_a_locale_without_a_catalog_is_an_error(runner: FlaskCliRunner) -> None:
    assert_refused(invoke(runner, "preview", "order_confirmation", "--locale", "xx"), "'xx'")


def test_preview_of_an_unknown_kind_is_a_usage_error(runner: FlaskCliRunner) -> None:
    result = invoke(runner, "preview", "shipping_update")

    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_preview_in_an_unknown_timezone_is_an_error(runner: FlaskCliRunner) -> None:
    assert_refused(
        invoke(runner, "preview", "order_confirmation", "--timezone", "Mars/Base"), "Mars/Base"
    )


# --- the console script -------------------------------------------------------------------


def test_the_console_script_and_flask_list_the_same_commands(tmp_path: Path) -> None:
    bin_dir = os.path.dirname(sys.executable)
    notifier = shutil.which("notifier", path=bin_dir)
    flask = shutil.which("flask", path=bin_dir)
    assert notifier is not None
    assert flask is not None
    env = {**os.environ, "NOTIFIER_INSTANCE_PATH": str(tmp_path / "instance")}

    for command in ([notifier, "--help"], [flask, "--app", "wsgi", "notifier", "--help"]):
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        listed = {
            line.split()[0]
            for line in done.stdout.split("Commands:", 1)[1].splitlines()
            if line.strip()
        }
        assert listed == {
            "serve",
            "worker",
            "shop",
            "timeline",
            "preview",
            "demo",
            "db",
            "ledger",
            "evidence",
            "buyer",
            "agent",
            "token",
            "suppression",
        }, done.stdout


def test_demo_replays_journeys_through_the_signed_endpoints(
    app: Flask, runner: FlaskCliRunner, mailbox: MemoryTransport
) -> None:
    first = runner.invoke(args=["notifier", "demo"])
    second = runner.invoke(args=["notifier", "demo", "--locale", "en-GB"])

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    subjects = [
        message_from_bytes(mail.raw, policy=policy.default)["Subject"] for mail in mailbox.sent
    ]
    assert subjects[0].startswith("Bestellung #D")
    assert any(subject.startswith("Order #D") for subject in subjects)
    lines = first.output.splitlines()
    # 10:00 in Berlin: the German parcel's news goes out; the late Tokyo scan is ignored; the
    # cancellation waits for São Paulo's 08:00.
    assert any(line.split()[:2] == ["out_for_delivery", "sent"] for line in lines)
    assert any(line.split()[:2] == ["customs_action", "sent"] for line in lines)
    assert any(line.split()[:2] == ["order_cancelled", "scheduled"] for line in lines)
    assert sum(line.split()[:2] == ["delivered", "sent"] for line in lines) == 1
    assert not any(line.split()[:1] == ["out_for_delivery"] and "Haruka" in line for line in lines)
    assert "notifier timeline #D" in first.output
    with services(app).sessions() as session:
        for shop in session.scalars(select(Shop).where(Shop.slug.in_(["demo", "demo-world"]))):
            assert shop.webhook_secrets[0] not in first.output + second.output
