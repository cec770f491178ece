"""Secrets never leave: not in logs, pages, API answers, CLI output or evidence exports.

One order goes the whole way (webhooks, a mail server that refuses, a sent email, the console,
the API, the timeline, an evidence ZIP) while every secret the service holds is in play; then
every byte that came out is searched for each of them.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from .conftest import SHOPIFY_SECRET, post_shopify, services, shopify_order
from .test_api import new_token, timeline
from .test_console import ADMIN, PASSWORD, make_agent, order_id, post_form, sign_in
from .test_dispatch import free_port
from .test_journeys import fulfilment, post_fulfilment

AFTERSHIP_SECRET = "aftership-secret-do-not-leak-0042"
MAIL_PASSWORD = "mail-password-do-not-leak-0042"


@pytest.mark.usefixtures("shopify_shop")
def test_no_secret_appears_in_anything_the_service_says(
    app: Flask,
    client: FlaskClient,
    runner: FlaskCliRunner,
    dispatch: Callable,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    said: list[bytes] = []

    def cli(*args: str) -> None:
        result = runner.invoke(args=["notifier", *args])
        assert result.exit_code == 0, result.output
        said.append(result.output.encode())

    cli("shop", "set", "lumen", f"aftership_secret={AFTERSHIP_SECRET}")
    cli("shop", "list")
    said.append(post_shopify(client, shopify_order()).data)
    said.append(post_fulfilment(client, fulfilment()).data)
    # A worker sending through a mail server that is not there, reached with a password.
    mail_url = app.config["MAIL_URL"]
    app.config["MAIL_URL"] = f"smtp://user:{MAIL_PASSWORD}@127.0.0.1:{free_port()}?starttls=off"
    cli("worker", "--once")
    app.config["MAIL_URL"] = mail_url
    assert b"smtp://user:***@127.0.0.1" in said[-1]  # the worker did say where it sends
    services(app).clock.advance(timedelta(hours=2))
    dispatch()

    token = new_token(runner, "lumen")
    make_agent(app, ADMIN)
    assert sign_in(client, ADMIN).status_code == 303
    number = order_id(app, "#1001")
    pages = (
        "/console/?q=%231001",
        f"/console/orders/{number}",
        "/metrics",
        "/readyz",
        "/openapi.json",
    )
    for path in pages:
        page = client.get(path)
        assert page.status_code == 200, path
        said.append(page.data)
    said.append(timeline(client, "lumen/%231001", token).data)
    cli("timeline", "#1001", "--json")
    export = post_form(client, f"/console/orders/{number}/evidence")
    assert export.status_code == 200
    with zipfile.ZipFile(io.BytesIO(export.data)) as archive:
        said.extend(archive.read(name) for name in archive.namelist())
    said.append(caplog.text.encode())

    everything = b"\n".join(said)
    assert b"1001" in everything  # the search above really read the order
    secrets = {
        "the shop's webhook secret": SHOPIFY_SECRET,
        "the AfterShip secret": AFTERSHIP_SECRET,
        "the mail password": MAIL_PASSWORD,
        "the instance's secret key": app.config["SECRET_KEY"],
        "the agent's password": PASSWORD,
        "the API token": token,
    }
    for what, secret in secrets.items():
        assert secret.encode() not in everything, f"{what} leaked"
