"""Liveness never depends on the database; readiness says precisely why the service cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from notifier import create_app, migrate

from .conftest import post_shopify, services


def test_liveness_answers_without_asking_the_database(client: FlaskClient, app: Flask) -> None:
    services(app).engine.dispose()
    response = client.get("/healthz")

    assert (response.status_code, response.json) == (200, {"status": "ok"})


def test_readiness_counts_due_and_failed_mail(client: FlaskClient, shopify_shop: object) -> None:
    from .conftest import shopify_order

    post_shopify(client, shopify_order())
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json["status"] == "ready"
    assert response.json["schema"] == migrate.head_revision()
    assert (response.json["due_messages"], response.json["failed_messages"]) == (1, 0)


def test_readiness_refuses_a_schema_from_another_release(client: FlaskClient, app: Flask) -> None:
    engine = services(app).engine
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0003'"))
    try:
        response = client.get("/readyz")
    finally:  # the PostgreSQL test database is shared by every test of the session
        with engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE alembic_version SET version_num = :head"),
                {"head": migrate.head_revision()},
            )

    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert "at revision 0003" in response.json["detail"]
    assert "run `notifier db upgrade`" in response.json["detail"]


def test_readiness_says_so_when_the_database_does_not_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFIER_INSTANCE_PATH", str(tmp_path))
    app = create_app(
        {"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:9/none", "MAIL_URL": "memory://x"}
    )

    ready = app.test_client().get("/readyz")
    alive = app.test_client().get("/healthz")

    assert (ready.status_code, ready.json["detail"]) == (503, "The database does not answer.")
    assert alive.status_code == 200
