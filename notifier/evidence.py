"""Dispute evidence in one ZIP: each email exactly as sent, a printable timeline, what Stripe and
PayPal ask for, and a manifest tying every file to its SHA-256 and the ledger entries it comes from.

The export is itself recorded in the order's chain (who asked, when, and the manifest's digest).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytz
from babel.numbers import format_currency
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier import ledger
from notifier.config import PROJECT_ROOT
from notifier.models import (
    HANDED_OVER_STATES,
    Delivery,
    DeliveryOutcome,
    InboundEvent,
    LedgerContent,
    LedgerEntry,
    Message,
    Order,
)

# Stripe limits the characters of all evidence fields together to 150,000; the summary keeps well
# inside that, beside the other fields.
STRIPE_TEXT_LIMIT = 20_000
TEMPLATES = PROJECT_ROOT / "templates" / "evidence"


@dataclass
class _File:
    name: str
    data: bytes
    entries: list[str] = field(default_factory=list)  # entry hashes this file shows


def export(session: Session, order: Order, *, requested_by: str, now: datetime) -> bytes:
    """The ZIP for one order, recorded as exported in the caller's transaction."""
    entries = list(
        session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.chain == f"order:{order.id}")
            .order_by(LedgerEntry.seq)
        )
    )
    by_subject: dict[str, list[LedgerEntry]] = {}
    for entry in entries:
        by_subject.setdefault(entry.subject, []).append(entry)
    sent = _sent_emails(session, order)
    files = [
        _File(
            f"emails/{position:02d}-{message.kind}-{delivery.handed_at:%Y%m%d-%H%M}.eml",
            raw,
            [e.entry_sha256 for e in by_subject.get(f"message {message.id}", [])],
        )
        for position, (message, delivery, raw) in enumerate(sent, start=1)
    ]
    record = _record(session, order, entries, sent)
    files.append(_File("timeline.html", _timeline_html(record), [e.entry_sha256 for e in entries]))
    files.append(_File("stripe_evidence.json", _json(_stripe(order, record, sent))))
    files.append(_File("paypal_summary.json", _json(_paypal(order, record))))
    head = entries[-1] if entries else None
    manifest = {
        "order": {"shop": order.shop.slug, "id": order.external_id, "number": order.number},
        "generated_at": now.isoformat(),
        "requested_by": requested_by,
        "chain": {
            "name": f"order:{order.id}",
            "entries": len(entries),
            "head_seq": head.seq if head else 0,
            "head_sha256": head.entry_sha256 if head else ledger.GENESIS,
        },
        "files": [
            {
                "name": item.name,
                "sha256": hashlib.sha256(item.data).hexdigest(),
                "bytes": len(item.data),
                "ledger_entries": item.entries,
            }
            for item in files
        ],
        "verify": "sha256sum each file; `notifier ledger verify` proves the chain these entries "
        "belong to",
    }
    files.append(_File("manifest.json", _json(manifest)))
    ledger.note_export(session, order, requested_by, files[-1].data, now)
    return _zip(files, now)


def _sent_emails(session: Session, order: Order) -> list[tuple[Message, Delivery, bytes]]:
    """Each sent message's accepted hand-over, in the order they left; erased bytes are skipped."""
    rows = session.execute(
        select(Message, Delivery)
        .join(Delivery, Delivery.message_id == Message.id)
        .where(
            Message.order_id == order.id,
            Message.state.in_(HANDED_OVER_STATES),
            Delivery.outcome == DeliveryOutcome.ACCEPTED,
        )
        .order_by(Delivery.handed_at, Delivery.id)
    ).all()
    found = []
    for message, delivery in rows:
        raw = session.scalar(
            select(LedgerContent.content).where(LedgerContent.sha256 == delivery.raw_sha256)
        )
        if raw is not None:
            found.append((message, delivery, raw))
    return found


def _record(
    session: Session,
    order: Order,
    entries: list[LedgerEntry],
    sent: list[tuple[Message, Delivery, bytes]],
) -> dict[str, Any]:
    zone = pytz.timezone(order.buyer_timezone)
    events = {
        event.id: event
        for event in session.scalars(select(InboundEvent).where(InboundEvent.order_id == order.id))
    }
    messages = {
        m.id: m for m in session.scalars(select(Message).where(Message.order_id == order.id))
    }
    contents = {
        row.sha256: json.loads(row.content)
        for row in session.execute(
            select(LedgerContent.sha256, LedgerContent.content).where(
                LedgerContent.sha256.in_([e.content_sha256 for e in entries])
            )
        )
    }
    steps = []
    for entry in entries:
        content = contents.get(entry.content_sha256)
        steps.append(
            {
                "seq": entry.seq,
                "at_utc": entry.recorded_at.isoformat(),
                "at_buyer": f"{entry.recorded_at.astimezone(zone):%Y-%m-%d %H:%M %Z}",
                "kind": entry.kind,
                "what": _describe(entry, content, events, messages),
                "sha256": entry.entry_sha256,
            }
        )
    emails = []
    for message, delivery, raw in sent:
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        body = parsed.get_body(("plain",))
        emails.append(
            {
                "kind": message.kind,
                "sent_utc": delivery.handed_at.isoformat(),
                "sent_buyer": f"{delivery.handed_at.astimezone(zone):%Y-%m-%d %H:%M %Z}",
                "to": str(parsed["To"]),
                "subject": str(parsed["Subject"]),
                "message_id": delivery.rfc_message_id,
                "server_reply": delivery.response,
                "text": body.get_content() if body is not None else "",
            }
        )
    shipments = [
        {
            "carrier": s.carrier,
            "tracking_number": s.tracking_number,
            "tracking_url": s.tracking_url,
            "milestone": s.milestone,
            "journey": s.journey,
        }
        for s in order.shipments
    ]
    return {
        "order": order,
        "total": format_currency(order.total, order.currency, locale="en"),
        "address": order.details.get("shipping_address"),
        "steps": steps,
        "emails": emails,
        "shipments": shipments,
        "zone": order.buyer_timezone,
    }


def _describe(
    entry: LedgerEntry,
    content: dict[str, Any] | None,
    events: dict[int, InboundEvent],
    messages: dict[str, Message],
) -> str:
    if content is None:
        return "(content erased at the buyer's request)"
    if entry.kind == "event.received":
        return f"{content['source']} {content['topic']}: {content['detail']}"
    message = messages.get(str(content.get("message", "")))
    kind = message.kind if message else "message"
    if entry.kind == "message.planned":
        return f"{kind} planned for {content['due_at']}: {content['reason']}"
    if entry.kind == "message.handed_over":
        return f"{kind} handed to {content['transport']}: {content['response']}"
    if entry.kind.startswith("message."):
        return f"{kind} {content['state']}: {content['reason']}"
    if entry.kind == "note":
        return f"note by {content.get('author')}: {content.get('text')}"
    return json.dumps(content, ensure_ascii=False)[:300]


def _address_text(address: dict[str, Any] | None) -> str | None:
    if not address:
        return None
    city = " ".join(part for part in (address.get("postal_code"), address.get("city")) if part)
    parts = [address.get("name"), *address.get("lines", []), city, address.get("country")]
    return ", ".join(part for part in parts if part) or None


def _first(shipments: list[dict[str, Any]], milestone: str) -> str | None:
    times = [
        step["at"] for s in shipments for step in s["journey"] if step["milestone"] == milestone
    ]
    return min(times) if times else None


def _stripe(
    order: Order, record: dict[str, Any], sent: list[tuple[Message, Delivery, bytes]]
) -> dict[str, Any]:
    """Stripe's dispute evidence fields this record can fill; files are in the ZIP beside it."""
    shipments = record["shipments"]
    tracked = [s for s in shipments if s["tracking_number"]]
    shipped = _first(shipments, "shipped")
    delivered = _first(shipments, "delivered")
    lines = [
        f"Order {order.number} ({record['total']}) placed {order.placed_at:%Y-%m-%d}.",
        f"Shipped {shipped[:10]}." if shipped else "Not shipped.",
        f"Delivered {delivered[:10]} per carrier tracking." if delivered else "",
        f"We emailed the buyer {len(sent)} time(s); every email is attached as sent:",
        *(f"- {e['sent_utc'][:16]} UTC: {e['subject']}" for e in record["emails"]),
    ]
    text = "\n".join(line for line in lines if line)
    return {
        "customer_email_address": order.buyer_email,
        "customer_name": order.buyer_name,
        "shipping_address": _address_text(record["address"]),
        "shipping_carrier": ", ".join(dict.fromkeys(s["carrier"] for s in tracked if s["carrier"]))
        or None,
        "shipping_tracking_number": ", ".join(s["tracking_number"] for s in tracked) or None,
        "shipping_date": shipped[:10] if shipped else None,
        "uncategorized_text": text[:STRIPE_TEXT_LIMIT],
        "customer_communication": "emails/*.eml and timeline.html in this archive",
    }


def _paypal(order: Order, record: dict[str, Any]) -> dict[str, Any]:
    """What PayPal's item-not-received case asks for: proof of fulfilment with online tracking."""
    shipments = record["shipments"]
    return {
        "evidence_type": "PROOF_OF_FULFILLMENT",
        "order": order.number,
        "evidence_info": {
            "tracking_info": [
                {"carrier_name": s["carrier"], "tracking_number": s["tracking_number"]}
                for s in shipments
                if s["tracking_number"]
            ]
        },
        "shipping_address": _address_text(record["address"]),
        "shipped_at": _first(shipments, "shipped"),
        "delivered_at": _first(shipments, "delivered"),
        "tracking_urls": [s["tracking_url"] for s in shipments if s["tracking_url"]],
        "notes": "Recipient name and address above are as the buyer entered them at checkout; "
        "every email sent to the buyer is attached as .eml.",
    }


def _timeline_html(record: dict[str, Any]) -> bytes:
    env = Environment(
        loader=FileSystemLoader(Path(TEMPLATES)), autoescape=select_autoescape(default=True)
    )
    return env.get_template("timeline.html").render(record).encode()


def _json(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode()


def _zip(files: list[_File], now: datetime) -> bytes:
    buffer = io.BytesIO()
    stamp = now.astimezone(pytz.UTC).timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in files:
            archive.writestr(zipfile.ZipInfo(item.name, date_time=stamp), item.data)
    return buffer.getvalue()
