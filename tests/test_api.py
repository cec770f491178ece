"""The helpdesk API: one shop's timelines behind that shop's token, and nothing of anyone else's."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from notifier.clock import FakeClock
from notifier.models import ApiToken, Shop

from . import test_service
from .conftest import EXAMPLES, services, shopify_headers
from .test_console import ADMIN, make_agent, order_id, place_lumen_order, post_form, sign_in
from .test_service import BIN, readme_block
from .test_webhooks_standard import post_standard, standard_event

pytestmark = pytest.mark.usefixtures("shopify_shop", "standard_shop")
served = test_service.served  # `notifier serve` in its own process, for the README's lines


def new_token(runner: FlaskCliRunner, slug: str, *extra: str) -> str:
    result = runner.invoke(args=["notifier", "token", "add", slug, *extra])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()[0]


def timeline(client: FlaskClient, path: str, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(f"/api/v1/orders/{path}/timeline", headers=headers)


def test_token_add_prints_a_token_once_and_keeps_only_its_hash(
    app: Flask, runner: FlaskCliRunner
) -> None:
    token = new_token(runner, "lumen", "--label", "zendesk")
    listed = runner.invoke(args=["notifier", "token", "list"])
    unknown = runner.invoke(args=["notifier", "token", "add", "nowhere"])

    assert token.startswith("ntk_")
    assert len(token) > 40
    with services(app).sessions() as session:
        [stored] = session.scalars(select(ApiToken))
        assert stored.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
        assert stored.label == "zendesk"
    assert token not in listed.output
    assert "lumen\tzendesk" in listed.output
    assert unknown.exit_code != 0
    assert "no shop named 'nowhere'" in unknown.output


def test_the_timeline_has_the_order_its_messages_ledger_and_notes(
    app: Flask,
    client: FlaskClient,
    runner: FlaskCliRunner,
    lumen_order: int,
) -> None:
    token = new_token(runner, "lumen")
    make_agent(app, ADMIN)
    sign_in(client, ADMIN)
    post_form(client, f"/console/orders/{lumen_order}/notes", text="Called the buyer.")

    by_number = timeline(client, "lumen/%231001", token)
    by_id = timeline(client, "lumen/5523487293612", token)
    bare = timeline(client, "lumen/1001", token)

    assert by_number.status_code == 200
    assert by_number.headers["Cache-Control"] == "no-store"
    body = by_number.json
    assert body == by_id.json == bare.json
    assert body["shop"] == "lumen"
    assert body["order"]["number"] == "#1001"
    assert [m["kind"] for m in body["messages"]] == ["order_confirmation", "shipment_shipped"]
    assert body["messages"][0]["due_at_local"] == "2026-11-23 10:00 CET"
    assert body["shipments"][0]["tracking_number"] == "JD014600006281230704"
    kinds = [entry["kind"] for entry in body["ledger"]]
    assert kinds[0] == "event.received"
    assert "message.handed_over" in kinds
    assert [entry["seq"] for entry in body["ledger"]] == list(range(1, len(kinds) + 1))
    assert body["ledger"][-1]["content"] == {"author": ADMIN, "text": "Called the buyer."}
    assert body["notes"] == [
        {
            "at": body["ledger"][-1]["recorded_at"],
            "author": ADMIN,
            "text": "Called the buyer.",
            "entry_sha256": body["ledger"][-1]["entry_sha256"],
        }
    ]


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer ", "Basic bHVtZW46c2VjcmV0", "Bearer ntk_not-a-real-token", "ntk_x"],
)
def test_a_missing_or_wrong_token_is_401_problem_json(
    client: FlaskClient, runner: FlaskCliRunner, lumen_order: int, authorization: str | None
) -> None:
    new_token(runner, "lumen")
    headers = {"Authorization": authorization} if authorization else {}

    response = client.get("/api/v1/orders/lumen/%231001/timeline", headers=headers)

    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Anna" not in response.get_data(as_text=True)


def test_another_shops_token_learns_nothing_about_an_order(
    client: FlaskClient,
    runner: FlaskCliRunner,
    lumen_order: int,
    atelier_order: int,
) -> None:
    atelier = new_token(runner, "atelier")

    foreign = timeline(client, "lumen/%231001", atelier)
    missing = timeline(client, "atelier/%231001", atelier)
    own = timeline(client, "atelier/A-2041", atelier)
    foreign_missing = timeline(client, "lumen/%239999", atelier)

    assert foreign.status_code == missing.status_code == foreign_missing.status_code == 404
    assert foreign.mimetype == "application/problem+json"
    # The same words whether the order exists elsewhere or nowhere: only the asked names differ.
    assert foreign.json["title"] == missing.json["title"] == foreign_missing.json["title"]
    assert foreign.json["detail"].replace("lumen", "atelier") == missing.json["detail"]
    assert "Anna" not in foreign.get_data(as_text=True)
    assert own.status_code == 200


def test_a_revoked_token_stops_working(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, lumen_order: int
) -> None:
    token = new_token(runner, "lumen")
    with services(app).sessions() as session:
        token_id = session.scalar(select(ApiToken.id))
    assert timeline(client, "lumen/1001", token).status_code == 200

    revoked = runner.invoke(args=["notifier", "token", "revoke", str(token_id)])

    assert revoked.exit_code == 0, revoked.output
    assert timeline(client, "lumen/1001", token).status_code == 401
    assert runner.invoke(args=["notifier", "token", "revoke", str(token_id)]).exit_code != 0


@pytest.fixture
def lumen_order(
    app: Flask, client: FlaskClient, dispatch: Callable[..., Any], shopify_shop: Shop
) -> int:
    place_lumen_order(client, dispatch)
    return order_id(app, "#1001")


@pytest.fixture
def atelier_order(app: Flask, client: FlaskClient, clock: FakeClock, standard_shop: Shop) -> int:
    assert post_standard(client, clock, standard_event()).status_code == 200
    return order_id(app, "A-2041")


def test_the_readmes_helpdesk_commands_work_as_written(
    environment: dict[str, str], served: tuple[str, subprocess.Popen[str]]
) -> None:
    """The README's token and curl lines, verbatim, against `notifier serve`."""
    base, _ = served  # the shops are this module's fixtures, in the same database
    body = (EXAMPLES / "shopify-order.json").read_bytes()
    posted = requests.post(
        f"{base}/webhooks/shopify", data=body, headers=shopify_headers(body), timeout=10
    )
    assert posted.status_code == 200
    script = readme_block("notifier token add lumen", "Authorization: Bearer")
    bin_dir = str(BIN)

    result = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script.replace("http://127.0.0.1:8000", base)],
        cwd=BIN.parent.parent,
        env={**environment, "PATH": f"{bin_dir}:{environment.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["order"]["number"] == "#1001"
    assert answer["ledger"][0]["kind"] == "event.received"
