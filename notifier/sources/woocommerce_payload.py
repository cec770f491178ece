"""The order as WooCommerce's REST API (v3) shows it, with its meta, as pydantic models.

PHP writes "" or false for what is not there, and a plugin may store ids and numbers as
integers: these models take both, and refuse what no storefront sends.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
)

from notifier.sources import CURRENCY, EARLIEST_YEAR, LATEST_YEAR, Amount, Email, Payload

TRACKING_META = "_wc_shipment_tracking_items"  # Shipment Tracking and Advanced Shipment Tracking
# Order meta in which multilingual plugins keep the language the buyer checked out in:
# WPML (WooCommerce Multilingual) writes a WPML code ("de", "pt-br"), TranslatePress a locale
# ("fr_FR"). Polylang keeps it in a taxonomy, which the REST API does not show.
LANGUAGE_META = ("wpml_language", "trp_language")


def _absent(value: object) -> object:
    """PHP writes "" or false for a value that is not there."""
    if value is False or (isinstance(value, str) and not value.strip()):
        return None
    return value


def _as_text(value: object) -> object:
    """Ids and numbers a plugin may have stored as integers."""
    value = _absent(value)
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _gmt(value: datetime) -> datetime:
    """WooCommerce's `*_gmt` fields are naive on purpose: they are UTC."""
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:  # before converting, which could overflow
        raise ValueError(f"must lie between {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Text = Annotated[Annotated[str, Field(max_length=1000)] | None, BeforeValidator(_absent)]
Short = Annotated[Annotated[str, Field(max_length=200)] | None, BeforeValidator(_absent)]
OptionalEmail = Annotated[Email | None, BeforeValidator(_absent)]
CountryCode = Annotated[
    Annotated[str, Field(pattern=r"^[A-Za-z]{2}$")] | None, BeforeValidator(_absent)
]
Gmt = Annotated[datetime, AfterValidator(_gmt)]
OptionalGmt = Annotated[Gmt | None, BeforeValidator(_absent)]
Id = Annotated[str, BeforeValidator(_as_text), Field(min_length=1, max_length=64)]
Number = Annotated[str, BeforeValidator(_as_text), Field(min_length=1, max_length=63)]  # + "#"
# `price` is a float the REST API does not round (10.00 / 3 items = 3.3333333333333335).
UnroundedAmount = Annotated[Decimal, Field(ge=0, lt=10**15, allow_inf_nan=False)]


class WooAddress(Payload):
    first_name: Short = None
    last_name: Short = None
    company: Short = None
    address_1: Short = None
    address_2: Short = None
    city: Short = None
    state: Short = None
    postcode: Annotated[Annotated[str, Field(max_length=20)] | None, BeforeValidator(_absent)] = (
        None
    )
    country: CountryCode = None


class WooBilling(WooAddress):
    email: OptionalEmail = None


class WooLineItem(Payload):
    name: str = Field(min_length=1, max_length=1000)
    parent_name: Text = None
    sku: Short = None
    quantity: int = Field(ge=0, le=1_000_000)
    subtotal: Amount | None = None  # the line before discounts, without tax
    subtotal_tax: Amount | None = None
    price: UnroundedAmount  # the unit price after discounts, without tax


def _shipped_at(value: object) -> object:
    """Unix seconds as the plugins store them (a string or an int); a bare date is its midnight.

    Anything else is no date: the order's own time stands in, rather than refusing the order.
    """
    value = _absent(value)
    try:
        if isinstance(value, int | str) and not isinstance(value, bool):
            text = str(value).strip()
            if text.isdigit():
                stamp = int(text)
                return datetime.fromtimestamp(stamp, UTC) if stamp > 0 else None
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _in_range(value: datetime | None) -> datetime | None:
    return value if value is None or EARLIEST_YEAR <= value.year <= LATEST_YEAR else None


class WooTrackingItem(Payload):
    tracking_provider: Annotated[
        Annotated[str, Field(max_length=100)] | None, BeforeValidator(_absent)
    ] = None
    custom_tracking_provider: Short = None
    custom_tracking_link: Annotated[
        Annotated[str, Field(max_length=2000)] | None, BeforeValidator(_absent)
    ] = None
    tracking_number: Annotated[
        Annotated[str, Field(max_length=100)] | None, BeforeValidator(_as_text)
    ] = None
    date_shipped: Annotated[
        datetime | None, BeforeValidator(_shipped_at), AfterValidator(_in_range)
    ] = None
    tracking_id: Annotated[
        Annotated[str, Field(max_length=200)] | None, BeforeValidator(_as_text)
    ] = None


def _item_list(value: object) -> object:
    """A PHP array with a gap (an item deleted) arrives as a JSON object keyed "0", "2", ..."""
    value = _absent(value)
    if value is None:
        return []
    if isinstance(value, dict):
        return list(value.values())
    return value


class WooTrackingMeta(Payload):
    key: Literal["_wc_shipment_tracking_items"]
    value: Annotated[list[WooTrackingItem], BeforeValidator(_item_list), Field(max_length=100)]


def _language_tag(value: object) -> str | None:
    """A language tag if the value looks like one; a plugin's odd value is no reason to refuse."""
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z]{2,3}([_-][A-Za-z0-9]{1,8}){0,3}", value):
        return value.replace("_", "-")
    return None


class WooLanguageMeta(BaseModel):
    key: Literal["wpml_language", "trp_language"]
    value: Annotated[str | None, BeforeValidator(_language_tag)] = None


class WooOtherMeta(BaseModel):
    """Meta this service does not read: its value may be any JSON, and is left unexamined."""

    model_config = ConfigDict(extra="ignore")
    key: object = None


def _meta_kind(entry: Any) -> str:
    key = entry.get("key") if isinstance(entry, dict) else getattr(entry, "key", None)
    if key == TRACKING_META:
        return TRACKING_META
    return "language" if key in LANGUAGE_META else "other"


MetaEntry = Annotated[
    Annotated[WooTrackingMeta, Tag(TRACKING_META)]
    | Annotated[WooLanguageMeta, Tag("language")]
    | Annotated[WooOtherMeta, Tag("other")],
    Discriminator(_meta_kind),
]


class WooCommerceOrder(Payload):
    id: Id
    number: Number
    status: str = Field(min_length=1, max_length=40)
    currency: str = Field(pattern=CURRENCY)
    date_created_gmt: Gmt
    date_modified_gmt: OptionalGmt = None
    date_paid_gmt: OptionalGmt = None
    date_completed_gmt: OptionalGmt = None
    prices_include_tax: bool = False
    total: Amount
    total_tax: Amount | None = None
    discount_total: Amount | None = None
    discount_tax: Amount | None = None
    shipping_total: Amount | None = None
    shipping_tax: Amount | None = None
    billing: WooBilling | None = None
    shipping: WooAddress | None = None
    line_items: list[WooLineItem] = Field(default_factory=list, max_length=1000)
    meta_data: list[MetaEntry] = Field(default_factory=list, max_length=5000)
