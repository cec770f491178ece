"""Schemathesis drives every webhook operation of the committed `openapi.json` through the app.

Generated requests (positive and negative) go to the WSGI app in-process, no network, on both
databases. Three in five are signed with the test shop's secret, with a fresh timestamp where
the source checks one, so they get past the signature into schema validation, the adapters, the
journey and the planner; half of those are a real example with generated fields blended in, so
they get that far often. The rest stop at the door (unknown shop, wrong signature). Whatever
arrives: never a 5xx, every 4xx is `application/problem+json` with the fields
`notifier/problems.py` promises, and every answer has a documented status, media type and schema.
Operations without a signer here (the mail providers' reports) are fuzzed unsigned.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from notifier.clock import FakeClock
from notifier.models import Platform, Shop
from notifier.sources.shopify import FULFILLMENT_EVENT_TOPIC, FULFILLMENT_TOPICS, ORDER_TOPICS
from notifier.sources.woocommerce import ORDER_TOPICS as WOOCOMMERCE_TOPICS

from .conftest import SHOPIFY_SECRET, STANDARD_SECRET, services

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "openapi.json"
SCHEMA = schemathesis.openapi.from_path(str(COMMITTED))
# Instants the models accept (years 1970-2100, with an offset), so positive bodies get past them.
# (Registered in schemathesis globally; only this file uses it.)
schemathesis.openapi.format(
    "date-time",
    st.datetimes(
        min_value=datetime(1971, 1, 1),  # noqa: DTZ001 - bounds of a naive strategy
        max_value=datetime(2099, 12, 31),  # noqa: DTZ001
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=9))]
        ),
    ).map(datetime.isoformat),
)
OPERATIONS = {result.ok().path: result.ok() for result in SCHEMA.get_all_operations()}
WOO_SECRET = "woo-schemathesis-secret"
AFTERSHIP_SECRET = "aftership-schemathesis-secret"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _example(name: str) -> Any:
    return json.loads((ROOT / "examples" / name).read_text())


EXAMPLE_BODIES: dict[str, list[tuple[Any, str]]] = {
    "/webhooks/shopify": [
        *((_example("shopify-order.json"), topic) for topic in ORDER_TOPICS),
        *((_example("shopify-fulfillment.json"), topic) for topic in FULFILLMENT_TOPICS),
        (_example("shopify-fulfillment-event.json"), FULFILLMENT_EVENT_TOPIC),
        (_example("shopify-order.json"), "products/update"),
    ],
    "/webhooks/standard/{shop}": [
        (_example("standard-order.json"), ""),
        (_example("standard-shipment.json"), ""),
    ],
    "/webhooks/woocommerce/{shop}": [
        (_example("woocommerce-order.json"), topic) for topic in WOOCOMMERCE_TOPICS
    ],
    "/webhooks/aftership/{shop}": [(_example("aftership-tracking-update.json"), "")],
}  # operations missing here (the mail providers' reports) are fuzzed unsigned only
# How a generated case is sent: as it is (mostly unknown shops), to the right shop with a wrong
# signature, signed, or as a real example with generated fields blended in and signed.
HOW = ["as generated", "forged", "signed", "signed example", "signed example"]
PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance"}
# Per operation and database; raise it for a deeper hunt, e.g. NOTIFIER_SCHEMATHESIS_EXAMPLES=2000.
EXAMPLES = int(os.environ.get("NOTIFIER_SCHEMATHESIS_EXAMPLES", "40"))


def _hmac(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _standard_signature(webhook_id: str, stamp: str, body: bytes) -> str:
    """Standard Webhooks' v1 signature, over bytes (a generated body need not be UTF-8)."""
    key = base64.b64decode(STANDARD_SECRET.removeprefix("whsec_"))
    signed = f"{webhook_id}.{stamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(path: str, body: bytes, topic: str, now: datetime) -> tuple[str, dict[str, str]]:
    """The shop slug and the headers its storefront (or AfterShip) would send with `body`."""
    if path == "/webhooks/shopify":
        return "lumen", {
            "X-Shopify-Shop-Domain": "lumen.myshopify.com",
            "X-Shopify-Topic": topic,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Hmac-Sha256": _hmac(SHOPIFY_SECRET, body),
        }
    if path == "/webhooks/standard/{shop}":
        webhook_id, stamp = f"msg_{uuid.uuid4().hex}", str(int(now.timestamp()))
        return "atelier", {
            "webhook-id": webhook_id,
            "webhook-timestamp": stamp,
            "webhook-signature": _standard_signature(webhook_id, stamp, body),
        }
    if path == "/webhooks/woocommerce/{shop}":
        return "kaffee", {
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Delivery-ID": str(uuid.uuid4()),
            "X-WC-Webhook-Signature": _hmac(WOO_SECRET, body),
        }
    return "lumen", {"aftership-hmac-sha256": _hmac(AFTERSHIP_SECRET, body)}


@pytest.fixture
def shops(app: Flask, client: FlaskClient, clock: FakeClock) -> None:
    """One shop per platform (Lumen also takes AfterShip news), each with its example order."""
    common = {
        "sender": "Shop <orders@shop.example>",
        "locale": "en",
        "timezone": "Europe/Berlin",
        "created_at": clock.now(),
    }
    with services(app).sessions.begin() as session:
        session.add_all(
            [
                Shop(
                    slug="lumen",
                    platform=Platform.SHOPIFY,
                    domain="lumen.myshopify.com",
                    webhook_secrets=[SHOPIFY_SECRET],
                    tracking_secrets={"aftership": [AFTERSHIP_SECRET]},
                    **common,
                ),
                Shop(
                    slug="atelier",
                    platform=Platform.STANDARD,
                    webhook_secrets=[STANDARD_SECRET],
                    **common,
                ),
                Shop(
                    slug="kaffee",
                    platform=Platform.WOOCOMMERCE,
                    webhook_secrets=[WOO_SECRET],
                    **common,
                ),
            ]
        )
    for path, (example, topic) in [(path, bodies[0]) for path, bodies in EXAMPLE_BODIES.items()]:
        if "aftership" in path:
            continue
        body = json.dumps(example).encode()
        slug, headers = signed_headers(path, body, topic, clock.now())
        response = client.post(path.replace("{shop}", slug), data=body, headers=headers)
        assert response.json["status"] == "accepted", response.json


def sign(path: str, case: Any, clock: FakeClock, topic: str) -> bytes:
    """Point the case at the test shop and sign its body as that shop's storefront would."""
    if path == "/webhooks/aftership/{shop}" and isinstance(case.body, dict):
        case.body["ts"] = int(clock.now().timestamp())  # a signed body must also be fresh
        case.body["event_id"] = str(uuid.uuid4())
    body = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
    slug, headers = signed_headers(path, body, topic, clock.now())
    if "{shop}" in path:
        case.path_parameters["shop"] = slug
    case.headers = {**(case.headers or {}), **headers}
    return body


def blend(data: st.DataObject, example: Any, generated: Any) -> Any:
    """A real example with about one generated field in four: past validation, into the journey."""
    if not (isinstance(example, dict) and isinstance(generated, dict)):
        return generated
    blended = dict(example)
    for key, value in generated.items():
        if data.draw(st.integers(0, 3), label=f"take {key}") == 0:
            blended[key] = blend(data, example.get(key), value)
    return blended


def assert_problem(response: Any) -> None:
    """What problems.py promises for every error: RFC 9457 fields, no trace."""
    if response.status_code < 400:
        return
    assert response.headers["content-type"][0].startswith("application/problem+json")
    problem = response.json()
    assert set(problem) >= PROBLEM_FIELDS, problem
    assert problem["status"] == response.status_code
    assert problem["detail"]
    assert "Traceback" not in response.text


def prepare(
    path: str, case: Any, how: str, data: st.DataObject, clock: FakeClock
) -> dict[str, Any]:
    """Turn a generated case into one of the HOW kinds of delivery; the body to send, if signed."""
    if how == "as generated" or path not in EXAMPLE_BODIES:  # no signer here: as generated
        return {}
    slug, headers = signed_headers(path, b"", "", clock.now())
    if how == "forged":  # the right shop, the generated (wrong or missing) signature
        if "{shop}" in path:
            case.path_parameters["shop"] = slug
        domain = {name: value for name, value in headers.items() if name.endswith("Domain")}
        case.headers = {**(case.headers or {}), **domain}
        return {}
    example, topic = data.draw(st.sampled_from(EXAMPLE_BODIES[path]), label="example")
    if how == "signed example":
        case.body = blend(data, example, case.body)
        case.headers = {}  # the generated optional headers are mostly malformed
    return {"data": sign(path, case, clock, topic)}


@pytest.mark.timeout(120)
@pytest.mark.usefixtures("shops")
@pytest.mark.parametrize("path", sorted(OPERATIONS))
def test_every_operation_answers_as_documented(app: Flask, clock: FakeClock, path: str) -> None:
    operation = OPERATIONS[path]
    seen: Counter[int] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=timedelta(seconds=5),  # generous on a busy machine; a webhook takes ~20 ms
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(
        case=st.sampled_from(list(GenerationMode)).flatmap(operation.as_strategy),
        how=st.sampled_from(HOW),
        data=st.data(),
    )
    def deliver(case: Any, how: str, data: st.DataObject) -> None:
        response = case.call(app=app, **prepare(path, case, how, data, clock))
        seen[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)
        assert_problem(response)

    deliver()
    if path in EXAMPLE_BODIES:
        assert seen[200] > 0, f"no signed delivery got past the door: {dict(seen)}"


@pytest.mark.usefixtures("shops")
def test_the_woocommerce_ping_answer_conforms_to_the_document(app: Flask) -> None:
    operation = OPERATIONS["/webhooks/woocommerce/{shop}"]
    case = operation.Case(
        path_parameters={"shop": "kaffee"},
        headers={},
        body={},
        media_type="application/x-www-form-urlencoded",
    )
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    response = case.call(app=app, data=b"webhook_id=17", headers=form)
    assert response.status_code == 200
    case.validate_response(response, checks=CHECKS)
