"""`notifier suppression`: the addresses a shop does not write to, and why."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier import suppression
from notifier.cli_support import database
from notifier.models import Shop, Suppression, SuppressionReason


def _shop_id(session: Session, slug: str) -> int:
    found = session.scalar(select(Shop.id).where(Shop.slug == slug))
    if found is None:
        raise click.ClickException(f"no shop {slug!r}: see `notifier shop list`")
    return found


@click.group("suppression", cls=AppGroup)
def suppression_group() -> None:
    """Addresses a shop does not email: unsubscribed (surveys only), bounced, complained, stopped."""


@suppression_group.command("list")
@click.argument("shop_slug")
@click.option("--all", "show_lifted", is_flag=True, help="Also entries that were lifted.")
def suppression_list_command(shop_slug: str, show_lifted: bool) -> None:
    """The shop's suppressed addresses, oldest first, each with its reason and source."""
    with database().sessions() as session:
        query = select(Suppression).where(Suppression.shop_id == _shop_id(session, shop_slug))
        if not show_lifted:
            query = query.where(Suppression.lifted_at.is_(None))
        entries = list(session.scalars(query.order_by(Suppression.created_at, Suppression.id)))
        if not entries:
            click.echo("no suppressed addresses")
        for entry in entries:
            lifted = (
                f" [lifted {entry.lifted_at.isoformat(timespec='seconds')} by {entry.lifted_by}]"
                if entry.lifted_at
                else ""
            )
            click.echo(f"{suppression.describe(entry)}{lifted}")


@suppression_group.command("add")
@click.argument("shop_slug")
@click.argument("address")
@click.option("--reason", required=True, help="Why no mail may go there; kept with the entry.")
@click.option("--by", "who", default="operator", show_default=True, help="Who decided.")
def suppression_add_command(shop_slug: str, address: str, reason: str, who: str) -> None:
    """Stop all mail from the shop to ADDRESS (a buyer's written request, a legal hold)."""
    if "@" not in address or any(ch.isspace() for ch in address.strip()):
        raise click.ClickException(f"not an email address: {address!r}")
    svc = database()
    with svc.sessions.begin() as session:
        entry = suppression.add(
            session,
            shop_id=_shop_id(session, shop_slug),
            address=address,
            reason=SuppressionReason.AGENT,
            detail=reason,
            source=who,
            now=svc.clock.now(),
        )
        click.echo(suppression.describe(entry))


@suppression_group.command("lift")
@click.argument("shop_slug")
@click.argument("address")
@click.option("--by", "who", default="operator", show_default=True, help="Who allowed mail again.")
def suppression_lift_command(shop_slug: str, address: str, who: str) -> None:
    """Allow mail to ADDRESS again (after the buyer fixed their mailbox, or asked for surveys)."""
    svc = database()
    with svc.sessions.begin() as session:
        count = suppression.lift(
            session,
            shop_id=_shop_id(session, shop_slug),
            address=address,
            by=who,
            now=svc.clock.now(),
        )
    if not count:
        raise click.ClickException(f"{address} is not suppressed for {shop_slug}")
    click.echo(f"lifted {count} suppression(s) of {suppression.normalized(address)}")
