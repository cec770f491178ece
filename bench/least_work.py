"""The least a correct webhook endpoint does, served beside the bare floor as a second floor.

It checks the Shopify HMAC, validates the body with the service's own order model, keeps the
raw body durably (group commit; SQLite in WAL with synchronous=FULL, or PostgreSQL), and answers
JSON; no shop lookup, no translation, no metrics, no ledger, no error pages. What it reaches
against the bare endpoint is what any implementation of the contract can hope for on this box:
the ingest benchmark prints it beside the service's figure.

    LEAST_WORK_DATABASE=/tmp/x.db LEAST_WORK_SECRET=... waitress-serve least_work:app
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from flask import Flask, abort, jsonify, request

from notifier.group_commit import GroupCommit
from notifier.sources.shopify import ShopifyOrder

SECRET = os.environ["LEAST_WORK_SECRET"].encode()
DATABASE = os.environ["LEAST_WORK_DATABASE"]  # a SQLite file, or a PostgreSQL URL
Row = tuple[str, str, bytes]  # delivery id, headers of record, body
Commit = Callable[[list[Row]], Sequence[int | None]]


def sqlite_commit(path: str) -> Commit:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute(
        "CREATE TABLE IF NOT EXISTS least_work "
        "(id INTEGER PRIMARY KEY, delivery_id TEXT UNIQUE, headers TEXT, body BLOB)"
    )
    insert = (
        "INSERT INTO least_work (delivery_id, headers, body) VALUES (?, ?, ?) "
        "ON CONFLICT DO NOTHING RETURNING id"
    )

    def commit(batch: list[Row]) -> list[int | None]:
        connection.execute("BEGIN IMMEDIATE")
        try:
            found = [connection.execute(insert, row).fetchone() for row in batch]
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return [row[0] if row else None for row in found]

    return commit


def postgresql_commit(url: str) -> Commit:
    import psycopg

    connection = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    connection.execute(
        "CREATE TABLE IF NOT EXISTS least_work "
        "(id bigserial PRIMARY KEY, delivery_id text UNIQUE, headers jsonb, body bytea)"
    )
    connection.commit()
    insert = (
        "INSERT INTO least_work (delivery_id, headers, body) VALUES (%s, %s, %s) "
        "ON CONFLICT DO NOTHING RETURNING id"
    )

    def commit(batch: list[Row]) -> list[int | None]:
        ids: list[int | None] = []
        with connection.transaction(), connection.cursor() as cursor:  # rolled back on error
            cursor.executemany(insert, batch, returning=True)
            while True:
                row: Any = cursor.fetchone()
                ids.append(row[0] if row else None)
                if not cursor.nextset():
                    break
        return ids

    return commit


store = GroupCommit(
    postgresql_commit(DATABASE) if DATABASE.startswith("postgresql") else sqlite_commit(DATABASE)
)
app = Flask(__name__)


@app.get("/healthz")
def healthz() -> str:
    return "ok"


@app.post("/webhooks/shopify")
def delivery() -> Any:
    body = request.get_data()
    given = request.headers.get("X-Shopify-Hmac-Sha256", "").encode()
    if not hmac.compare_digest(base64.b64encode(hmac.new(SECRET, body, "sha256").digest()), given):
        abort(401)
    ShopifyOrder.model_validate_json(body)
    delivery_id = request.headers["X-Shopify-Webhook-Id"]
    headers = json.dumps({"topic": request.headers.get("X-Shopify-Topic")})
    event_id = store.submit((delivery_id, headers, body))
    return jsonify(
        status="stored",
        event_id=event_id,
        delivery_id=delivery_id,
        body_sha256=hashlib.sha256(body).hexdigest(),
    )
