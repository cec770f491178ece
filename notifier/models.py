"""The stored shape of shops, orders, inbound events, the outbox and the record of what was sent."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from notifier.db import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        date: Date(),
        dict[str, Any]: JSON,
        list[str]: JSON,
        list[dict[str, Any]]: JSON,
    }


def _by_value(enum_cls: type[enum.Enum]) -> Enum:
    return Enum(
        enum_cls,
        native_enum=False,
        length=24,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Platform(enum.StrEnum):
    SHOPIFY = "shopify"
    WOOCOMMERCE = "woocommerce"
    STANDARD = "standard"


class TrackingService(enum.StrEnum):
    """Services that post carrier news for a shop, whatever its storefront."""

    AFTERSHIP = "aftership"


class OrderStatus(enum.StrEnum):
    OPEN = "open"
    CANCELLED = "cancelled"


class EventOutcome(enum.StrEnum):
    # Stored and answered, waiting for a worker to apply it (NOTIFIER_APPLY=deferred).
    PENDING = "pending"
    APPLIED = "applied"
    IGNORED = "ignored"


class MessageState(enum.StrEnum):
    SCHEDULED = "scheduled"
    SENDING = "sending"
    RETRY = "retry"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"
    # Never sent: no consent for a survey, or the address is on the shop's suppression list.
    SUPPRESSED = "suppressed"
    # After the hand-over, as the email provider later reports it.
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


PENDING_STATES = (MessageState.SCHEDULED, MessageState.SENDING, MessageState.RETRY)
# Handed to the transport and accepted; what the provider said afterwards may refine it.
HANDED_OVER_STATES = (
    MessageState.SENT,
    MessageState.DELIVERED,
    MessageState.BOUNCED,
    MessageState.COMPLAINED,
)


class SuppressionReason(enum.StrEnum):
    UNSUBSCRIBED = "unsubscribed"  # from surveys only: transactional news keeps flowing
    HARD_BOUNCE = "hard_bounce"  # the address does not exist: nothing is sent to it
    COMPLAINT = "complaint"  # marked as spam: nothing is sent to it
    AGENT = "agent"  # an agent stopped all mail to the address, with a reason


class ProviderVerdict(enum.StrEnum):
    """What an email provider reported about a message after accepting it."""

    DELIVERED = "delivered"
    DEFERRED = "deferred"  # a soft bounce the provider keeps retrying: for the record only
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class DeliveryOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    TRANSIENT_FAILURE = "transient_failure"
    PERMANENT_FAILURE = "permanent_failure"


class Shop(Base):
    __tablename__ = "shops"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    platform: Mapped[Platform] = mapped_column(_by_value(Platform))
    domain: Mapped[str | None] = mapped_column(String(255), unique=True)
    # Newest first; older ones stay valid while a storefront rotates its secret.
    webhook_secrets: Mapped[list[str]]
    sender: Mapped[str] = mapped_column(String(400))
    support_email: Mapped[str | None] = mapped_column(String(320))
    locale: Mapped[str] = mapped_column(String(35), default="en")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    return_policy_url: Mapped[str | None] = mapped_column(String(2000))
    # Departures from the default delivery policies (see notifier.policies).
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    # Secrets of tracking services that post news for this shop: {"aftership": [newest, older]}.
    tracking_secrets: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    created_at: Mapped[datetime]

    def __repr__(self) -> str:  # never shows the secrets
        return f"<Shop {self.slug} {self.platform.value}>"


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("shop_id", "external_id"),
        Index("ix_orders_shop_id_number", "shop_id", "number"),
        # Agents search across shops by what the buyer quotes: the number, or the storefront's id.
        Index("ix_orders_number", "number"),
        Index("ix_orders_external_id", "external_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"))
    external_id: Mapped[str] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(64))
    status: Mapped[OrderStatus] = mapped_column(_by_value(OrderStatus), default=OrderStatus.OPEN)
    buyer_email: Mapped[str | None] = mapped_column(String(320), index=True)
    buyer_name: Mapped[str | None] = mapped_column(String(200))
    buyer_locale_tag: Mapped[str | None] = mapped_column(String(35))
    buyer_timezone: Mapped[str] = mapped_column(String(64))
    # Every zone the buyer may be in (one, unless the address leaves it open); plans must suit all.
    buyer_zones: Mapped[list[str]]
    timezone_source: Mapped[str] = mapped_column(Text)
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(Numeric(20, 4))
    placed_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]
    # The canonical order as last reported (items, totals, address): what templates are built from.
    details: Mapped[dict[str, Any]]
    # What agents must look at: [{"flag": "exception", "reason": ..., "shipment": ..., "at": ...}].
    flags: Mapped[list[dict[str, Any]]] = mapped_column(default=list, server_default="[]")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    shop: Mapped[Shop] = relationship()
    shipments: Mapped[list[Shipment]] = relationship(
        order_by="Shipment.id", viewonly=True, lazy="selectin"
    )


class Shipment(Base):
    """One parcel of an order and its journey so far, as the carriers reported it."""

    __tablename__ = "shipments"
    __table_args__ = (UniqueConstraint("order_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    # The first source's id for it; news from other sources finds it by tracking number.
    external_id: Mapped[str] = mapped_column(String(200))
    carrier: Mapped[str | None] = mapped_column(String(200))
    tracking_number: Mapped[str | None] = mapped_column(String(100), index=True)
    tracking_url: Mapped[str | None] = mapped_column(String(2000))
    origin_country: Mapped[str | None] = mapped_column(String(2))
    destination_country: Mapped[str | None] = mapped_column(String(2))
    expected_earliest: Mapped[date | None]
    expected_latest: Mapped[date | None]
    # The furthest stage reached (see notifier.journey.STAGES), and the carrier time of the
    # newest news: anything older than that is recorded and ignored.
    milestone: Mapped[str | None] = mapped_column(String(40))
    latest_event_at: Mapped[datetime | None]
    last_heard_at: Mapped[datetime]
    # Every milestone reached, in carrier time order: {"milestone", "at", "location", ...}.
    journey: Mapped[list[dict[str, Any]]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class InboundEvent(Base):
    """One accepted webhook delivery: the raw bytes and how it was judged, kept as received."""

    __tablename__ = "inbound_events"
    __table_args__ = (
        UniqueConstraint("source", "shop_id", "delivery_id"),
        UniqueConstraint("source", "shop_id", "event_id"),
        # The applier reads the pending ones in arrival order, whatever the table's size.
        Index("ix_inbound_events_outcome_id", "outcome", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"))
    source: Mapped[str] = mapped_column(String(20))
    delivery_id: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[str | None] = mapped_column(String(200))
    topic: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime]
    occurred_at: Mapped[datetime | None]
    headers: Mapped[dict[str, Any]]
    # The raw body lives in ledger_contents under this digest, where it can be erased.
    body_sha256: Mapped[str] = mapped_column(String(64))
    verification: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[EventOutcome] = mapped_column(_by_value(EventOutcome))
    outcome_detail: Mapped[str] = mapped_column(Text, default="")
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)

    body_content: Mapped[LedgerContent | None] = relationship(
        primaryjoin="foreign(InboundEvent.body_sha256) == LedgerContent.sha256",
        viewonly=True,
        lazy="joined",  # loaded with the row, as the column it replaces was
    )

    @property
    def body(self) -> bytes | None:
        """The body exactly as received, or None once erased at the buyer's request."""
        return self.body_content.content if self.body_content else None


class Message(Base):
    """The outbox row: what is still allowed to change about one email (invariant 5)."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_state_next_attempt_at", "state", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    shipment_id: Mapped[int | None] = mapped_column(ForeignKey("shipments.id"), index=True)
    caused_by_event_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_events.id"))
    kind: Mapped[str] = mapped_column(String(40))
    # At most one message per (order, kind, subject): replays of the same news plan nothing new.
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    rfc_message_id: Mapped[str] = mapped_column(String(400), unique=True)
    recipient: Mapped[str] = mapped_column(String(320))
    recipient_name: Mapped[str | None] = mapped_column(String(200))
    locale: Mapped[str] = mapped_column(String(35))
    locale_reason: Mapped[str] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(String(64))
    state: Mapped[MessageState] = mapped_column(_by_value(MessageState))
    due_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    next_attempt_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    context: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # An agent's resend: a new message with its own Message-ID, pointing at the one it repeats.
    resend_of: Mapped[str | None] = mapped_column(ForeignKey("messages.id"))

    order: Mapped[Order] = relationship()
    shop: Mapped[Shop] = relationship()
    shipment: Mapped[Shipment | None] = relationship()
    caused_by: Mapped[InboundEvent | None] = relationship()


# The order messages were planned in: same instant, then the webhook that caused them (ids grow).
PLANNED_ORDER = (Message.created_at, Message.caused_by_event_id.asc().nulls_last(), Message.id)


class Delivery(Base):
    """Each hand-over to a transport: the exact bytes and the reply. Never updated or deleted."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    attempt: Mapped[int]
    handed_at: Mapped[datetime]
    transport: Mapped[str] = mapped_column(String(40))
    rfc_message_id: Mapped[str] = mapped_column(String(400))
    # The RFC 5322 bytes live in ledger_contents under this digest, where they can be erased.
    raw_sha256: Mapped[str] = mapped_column(String(64))
    # True when an earlier attempt may already have reached the server (its worker died mid-send).
    possible_resend: Mapped[bool] = mapped_column(default=False)
    outcome: Mapped[DeliveryOutcome] = mapped_column(_by_value(DeliveryOutcome))
    response: Mapped[str] = mapped_column(Text)
    provider_message_id: Mapped[str | None] = mapped_column(String(400), index=True)

    raw_content: Mapped[LedgerContent | None] = relationship(
        primaryjoin="foreign(Delivery.raw_sha256) == LedgerContent.sha256",
        viewonly=True,
        lazy="joined",  # loaded with the row, as the column it replaces was
    )

    @property
    def raw(self) -> bytes | None:
        """The email exactly as handed over, or None once erased at the buyer's request."""
        return self.raw_content.content if self.raw_content else None


class Suppression(Base):
    """An address a shop must not write to (all mail, or surveys only), and why; lifted, not deleted."""

    __tablename__ = "suppressions"
    __table_args__ = (Index("ix_suppressions_shop_id_address", "shop_id", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"))
    address: Mapped[str] = mapped_column(String(320))  # lower-case
    reason: Mapped[SuppressionReason] = mapped_column(_by_value(SuppressionReason))
    detail: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(200))  # "buyer", "mailgun", "agent a@shop.example"
    message_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id"))
    created_at: Mapped[datetime]
    lifted_at: Mapped[datetime | None]
    lifted_by: Mapped[str | None] = mapped_column(String(200))


class SurveyAnswer(Base):
    """One answer to a delivery survey; a later answer shows instead, both stay."""

    __tablename__ = "survey_answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"))
    score: Mapped[int]
    comment: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime]


class ProviderEvent(Base):
    """A report from an email provider (delivered, bounced, complained) about a message it took."""

    __tablename__ = "provider_events"
    __table_args__ = (UniqueConstraint("provider", "provider_event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    provider_event_id: Mapped[str] = mapped_column(String(200))
    provider_message_id: Mapped[str | None] = mapped_column(String(400), index=True)
    message_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id"), index=True)
    verdict: Mapped[ProviderVerdict] = mapped_column(_by_value(ProviderVerdict))
    recipient: Mapped[str | None] = mapped_column(String(320))
    detail: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]


class LedgerEntry(Base):
    """One link of an append-only, hash-chained record (invariant 5); see notifier.ledger."""

    __tablename__ = "ledger_entries"
    __table_args__ = (UniqueConstraint("chain", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Which chain: "order:<id>", or "shop:<id>" for news that reached no order.
    chain: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int]
    recorded_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(40))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    subject: Mapped[str] = mapped_column(String(200), index=True)
    content_sha256: Mapped[str] = mapped_column(String(64))
    prev_sha256: Mapped[str] = mapped_column(String(64))
    entry_sha256: Mapped[str] = mapped_column(String(64), unique=True)


class LedgerContent(Base):
    """What a ledger entry says, by digest: erasable (personal data), while the digest stays."""

    __tablename__ = "ledger_contents"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)


APPEND_ONLY_TABLES = ("inbound_events", "deliveries", "ledger_entries")


class Agent(Base):
    """A support agent who signs in to the console: sees the shops given, or every shop."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # stored lower-case
    password_hash: Mapped[str] = mapped_column(String(200))  # argon2id, PHC string
    # An administrator: every shop, present and future. Otherwise only those in agent_shops.
    all_shops: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]

    shops: Mapped[list[Shop]] = relationship(
        secondary="agent_shops", order_by="Shop.slug", lazy="selectin"
    )


class AgentShop(Base):
    __tablename__ = "agent_shops"

    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"), primary_key=True)


class LoginFailure(Base):
    """A failed console sign-in, counted per email and address to throttle guessing."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_email_address_failed_at", "email", "address", "failed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    address: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime]


class ApiToken(Base):
    """A helpdesk's key to one shop's timelines; only its SHA-256 is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]

    shop: Mapped[Shop] = relationship()
