"""What every `notifier` command needs: a usable database, and the one order it names."""

from __future__ import annotations

import click
from sqlalchemy.orm import Session

from notifier import timeline
from notifier.models import Order
from notifier.services import Services, services


def database() -> Services:
    """The app's services over a usable schema: a brand-new database is created on first use."""
    from notifier import serve

    svc = services()
    try:
        serve.ensure_schema(svc, upgrade_new=True)
    except serve.SchemaOutdated as error:
        raise click.ClickException(str(error)) from error
    return svc


def one_order(session: Session, order_ref: str, shop_slug: str | None) -> Order:
    """The order a command names, or a ClickException saying why there is not exactly one."""
    orders = timeline.find_orders(session, order_ref, shop_slug)
    if not orders:
        raise click.ClickException(
            f"no order {order_ref!r}" + (f" in shop {shop_slug}" if shop_slug else "")
        )
    if len(orders) > 1:
        slugs = ", ".join(sorted({order.shop.slug for order in orders}))
        raise click.ClickException(
            f"order {order_ref!r} exists in several shops ({slugs}); add --shop"
        )
    return orders[0]
