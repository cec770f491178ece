"""The OpenAPI document of the webhook API, generated from the same models that validate payloads.

`python -m notifier.openapi > openapi.json` refreshes the committed copy; a test fails when
the two differ.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel

from notifier.provider_reports.ses import SNSMessage
from notifier.sources.aftership import AfterShipDelivery
from notifier.sources.shopify import (
    FULFILLMENT_EVENT_TOPIC,
    FULFILLMENT_TOPICS,
    ORDER_TOPICS,
    ShopifyFulfillment,
    ShopifyFulfillmentEvent,
    ShopifyOrder,
)
from notifier.sources.standard import StandardEvent, StandardShipmentEvent
from notifier.sources.woocommerce import ORDER_TOPICS as WOOCOMMERCE_TOPICS
from notifier.sources.woocommerce_payload import WooCommerceOrder

bp = Blueprint("openapi", __name__)

REF = "#/components/schemas/{model}"


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=REF)
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def _one_of(components: dict[str, Any], *models: type[BaseModel]) -> dict[str, Any]:
    return {"oneOf": [_schema(model, components) for model in models]}


def _header(name: str, description: str, *, required: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": required,
        "description": description,
        "schema": {"type": "string"},
    }


def _responses() -> dict[str, Any]:
    problem = {"application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}}
    return {
        "200": {
            "description": "Stored (status accepted, or ignored for a topic not handled, or "
            "duplicate for a delivery received before; with NOTIFIER_APPLY=deferred, stored: "
            "kept for a worker to apply).",
            "content": {"application/json": {"schema": {"$ref": REF.format(model="Receipt")}}},
        },
        "400": {"description": "Missing header, body not JSON or not UTF-8.", "content": problem},
        "401": {"description": "Missing or wrong signature, stale timestamp.", "content": problem},
        "404": {"description": "No such shop.", "content": problem},
        "413": {"description": "Body over 1 MiB.", "content": problem},
        "422": {"description": "Valid JSON that does not fit the schema.", "content": problem},
        "503": {"description": "Database unavailable; retry later.", "content": problem},
    }


def _provider_responses() -> dict[str, Any]:
    problem = {"application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}}
    receipt = {"schema": {"$ref": REF.format(model="ProviderReceipt")}}
    return {
        "200": {
            "description": "Stored and applied (accepted), received before (duplicate), not a "
            "delivery report or about no message of ours (ignored), or a subscription confirmed.",
            "content": {"application/json": receipt},
        },
        "400": {
            "description": "Body not JSON, or an unknown SNS message type.",
            "content": problem,
        },
        "401": {
            "description": "Missing or wrong signature, stale timestamp, untrusted certificate.",
            "content": problem,
        },
        "403": {"description": "Not set up, or a topic not listed.", "content": problem},
        "409": {"description": "Raced with a twin; retry.", "content": problem},
        "413": {"description": "Body over 1 MiB.", "content": problem},
        "422": {"description": "Valid JSON that does not fit the format.", "content": problem},
        "503": {
            "description": "Database, signing certificate or SubscribeURL unavailable; retry.",
            "content": problem,
        },
    }


def _mailgun_body() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["signature", "event-data"],
        "properties": {
            "signature": {
                "type": "object",
                "required": ["timestamp", "token", "signature"],
                "properties": {
                    "timestamp": {"type": "string"},
                    "token": {"type": "string"},
                    "signature": {"type": "string"},
                },
            },
            "event-data": {
                "type": "object",
                "required": ["id", "event", "timestamp"],
                "properties": {
                    "id": {"type": "string"},
                    "event": {"type": "string"},
                    "timestamp": {"type": "number"},
                    "severity": {"type": "string", "enum": ["permanent", "temporary"]},
                    "recipient": {"type": "string"},
                    "message": {"type": "object"},
                    "delivery-status": {"type": "object"},
                },
            },
        },
    }


def document() -> dict[str, Any]:
    components: dict[str, Any] = {
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem details.",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "instance": {"type": "string"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "field": {"type": "string"},
                            "message": {"type": "string"},
                            "type": {"type": "string"},
                        },
                    },
                },
            },
        },
        "ProviderReceipt": {
            "type": "object",
            "required": ["status", "detail"],
            "properties": {
                "status": {
                    "type": "string",
                    "enum": ["accepted", "ignored", "duplicate", "confirmed"],
                },
                "detail": {"type": "string"},
                "reports": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["event_id", "status", "detail"],
                        "properties": {
                            "event_id": {"type": "string"},
                            "status": {
                                "type": "string",
                                "enum": ["accepted", "ignored", "duplicate"],
                            },
                            "detail": {"type": "string"},
                        },
                    },
                },
            },
        },
        "PingReceipt": {
            "type": "object",
            "required": ["status", "detail"],
            "additionalProperties": False,
            "properties": {
                "status": {"type": "string", "enum": ["ignored"]},
                "detail": {"type": "string"},
            },
        },
        "Receipt": {
            "type": "object",
            "required": ["status", "event_id", "delivery_id", "received_at", "detail"],
            "properties": {
                "status": {
                    "type": "string",
                    "enum": ["accepted", "ignored", "duplicate", "stored"],
                },
                "event_id": {"type": "integer"},
                "delivery_id": {"type": "string"},
                "received_at": {"type": "string", "format": "date-time"},
                "detail": {"type": "string"},
            },
        },
    }
    shopify_body = _one_of(components, ShopifyOrder, ShopifyFulfillment, ShopifyFulfillmentEvent)
    standard_body = _one_of(components, StandardEvent, StandardShipmentEvent)
    shopify_topics = (*ORDER_TOPICS, *FULFILLMENT_TOPICS, FULFILLMENT_EVENT_TOPIC)
    woocommerce_body = _schema(WooCommerceOrder, components)
    aftership_body = _schema(AfterShipDelivery, components)
    sns_body = _schema(SNSMessage, components)
    shop_slug = {
        "name": "shop",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$"},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "notifier webhooks",
            "version": "1",
            "description": "Storefronts and carriers post events here; every answer is JSON "
            "and every error is application/problem+json.",
        },
        "paths": {
            "/webhooks/shopify": {
                "post": {
                    "summary": "A Shopify webhook: orders, fulfilments and fulfilment events",
                    "description": "The body is the order for orders/* topics, the fulfilment "
                    "for fulfillments/*, the carrier scan for fulfillment_events/create. Other "
                    "topics are stored and answered as ignored. Duplicates (same "
                    "X-Shopify-Webhook-Id or X-Shopify-Event-Id) change nothing.",
                    "parameters": [
                        _header("X-Shopify-Shop-Domain", "the shop, e.g. lumen.myshopify.com"),
                        _header("X-Shopify-Hmac-Sha256", "base64 HMAC-SHA256 of the raw body"),
                        _header("X-Shopify-Topic", f"one of {', '.join(shopify_topics)}"),
                        _header("X-Shopify-Webhook-Id", "unique per delivery"),
                        _header("X-Shopify-Event-Id", "unique per event", required=False),
                        _header("X-Shopify-Triggered-At", "when Shopify fired", required=False),
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": shopify_body}},
                    },
                    "responses": _responses(),
                }
            },
            "/webhooks/standard/{shop}": {
                "post": {
                    "summary": "The generic format for any storefront (Standard Webhooks)",
                    "description": "Signed as https://www.standardwebhooks.com describes: "
                    "base64 HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}` with the "
                    "shop's whsec_ secret; timestamps more than 5 minutes away are refused.",
                    "parameters": [
                        {
                            "name": "shop",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$"},
                        },
                        _header("webhook-id", "unique per event; retries reuse it"),
                        _header("webhook-timestamp", "Unix seconds when signed"),
                        _header("webhook-signature", "space-separated `v1,<base64>` values"),
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": standard_body}},
                    },
                    "responses": _responses(),
                }
            },
            "/webhooks/woocommerce/{shop}": {
                "post": {
                    "summary": "A WooCommerce webhook (order.created, order.updated)",
                    "description": "The order as WooCommerce's REST API v3 shows it; tracking "
                    "numbers from the Shipment Tracking plugins' `_wc_shipment_tracking_items` "
                    "meta become shipped news. The unsigned `webhook_id=N` ping sent when a "
                    "webhook is saved is answered 200 and not stored.",
                    "parameters": [
                        shop_slug,
                        _header("X-WC-Webhook-Signature", "base64 HMAC-SHA256 of the raw body"),
                        _header("X-WC-Webhook-Topic", f"one of {', '.join(WOOCOMMERCE_TOPICS)}"),
                        _header("X-WC-Webhook-Delivery-ID", "per delivery"),
                        _header("X-WC-Webhook-Source", "the shop's URL", required=False),
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": woocommerce_body},
                            "application/x-www-form-urlencoded": {
                                "schema": {
                                    "type": "object",
                                    "description": "The ping sent when a webhook is saved.",
                                    "properties": {"webhook_id": {"type": "string"}},
                                }
                            },
                        },
                    },
                    "responses": {
                        **_responses(),
                        "200": {
                            "description": "Stored (as for every webhook), or the setup ping "
                            "acknowledged without being stored.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "oneOf": [
                                            {"$ref": REF.format(model="Receipt")},
                                            {"$ref": REF.format(model="PingReceipt")},
                                        ]
                                    }
                                }
                            },
                        },
                    },
                }
            },
            "/webhooks/aftership/{shop}": {
                "post": {
                    "summary": "An AfterShip tracking webhook (tracking_update, edd_revise)",
                    "description": "For a shop of any platform with an AfterShip secret. The "
                    "body's `event_id` identifies the delivery; `ts` older than 7 days or more "
                    "than 5 minutes ahead is refused, since the signature covers no time.",
                    "parameters": [
                        shop_slug,
                        _header("aftership-hmac-sha256", "base64 HMAC-SHA256 of the raw body"),
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": aftership_body}},
                    },
                    "responses": {
                        **_responses(),
                        "403": {
                            "description": "The shop has no AfterShip secret.",
                            "content": {
                                "application/problem+json": {
                                    "schema": {"$ref": REF.format(model="Problem")}
                                }
                            },
                        },
                    },
                }
            },
            "/webhooks/mail/mailgun": {
                "post": {
                    "summary": "Mailgun's event webhook: delivered, failed, complained",
                    "description": "Signed in the body: `signature.signature` is the hex "
                    "HMAC-SHA256 of `timestamp` + `token` under the webhook signing key "
                    "(NOTIFIER_MAILGUN_WEBHOOK_SIGNING_KEY); timestamps more than 15 minutes "
                    "away are refused. A permanent failure bounces the message and suppresses "
                    "the address for its shop; a complaint does too; other events are answered "
                    "as ignored. Redeliveries (same event-data.id) change nothing.",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _mailgun_body()}},
                    },
                    "responses": _provider_responses(),
                }
            },
            "/webhooks/mail/ses": {
                "post": {
                    "summary": "Amazon SES events through an Amazon SNS subscription",
                    "description": "The SNS message (sent as text/plain) is verified as AWS "
                    "documents, with the certificate at SigningCertURL on an SNS host, and must "
                    "come from a topic in NOTIFIER_SES_TOPIC_ARNS. A SubscriptionConfirmation is "
                    "confirmed; a Notification carries SES's Delivery, Bounce, Complaint or "
                    "DeliveryDelay event, one report per recipient.",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": sns_body}},
                    },
                    "responses": _provider_responses(),
                }
            },
        },
        "components": {"schemas": components},
    }


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(document())


if __name__ == "__main__":
    print(render(), end="")
