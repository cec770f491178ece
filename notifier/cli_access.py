"""`notifier agent` and `notifier token`: who may read the trail, in the console and the API."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import select

from notifier.cli_support import database
from notifier.models import Shop


@click.group("agent", cls=AppGroup)
def agent_group() -> None:
    """Support agents who sign in to the console at /console/."""


@agent_group.command("add")
@click.argument("email")
@click.option(
    "--shop",
    "shop_slugs",
    multiple=True,
    help="A shop the agent may see (repeat for several). None: every shop (an administrator).",
)
@click.option(
    "--password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the password from this file instead of asking for it twice.",
)
def agent_add_command(email: str, shop_slugs: tuple[str, ...], password_file: Path | None) -> None:
    """Add an agent. The password is kept only as an argon2id hash."""
    from notifier.console import accounts

    if password_file is not None:
        password = password_file.read_text().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    svc = database()
    try:
        with svc.sessions.begin() as session:
            agent = accounts.add_agent(session, email, password, list(shop_slugs), svc.clock.now())
            seen = "every shop" if agent.all_shops else ", ".join(s.slug for s in agent.shops)
            address = agent.email
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"added agent {address} (sees {seen}); sign in at /console/login")


@agent_group.command("list")
def agent_list_command() -> None:
    """Every agent and the shops each sees."""
    from notifier.models import Agent

    with database().sessions() as session:
        agents = list(session.scalars(select(Agent).order_by(Agent.email)))
        rows = [
            (a.email, "every shop" if a.all_shops else ", ".join(s.slug for s in a.shops))
            for a in agents
        ]
    if not rows:
        click.echo("no agents yet; add one with `notifier agent add EMAIL`")
    for email, seen in rows:
        click.echo(f"{email}\t{seen}")


@click.group("token", cls=AppGroup)
def token_group() -> None:
    """Helpdesk API tokens, one shop each (GET /api/v1/orders/SHOP/ORDER/timeline)."""


@token_group.command("add")
@click.argument("slug")
@click.option("--label", help="Who uses it, e.g. zendesk.")
def token_add_command(slug: str, label: str | None) -> None:
    """Make a token for a shop and print it once: only its SHA-256 is kept."""
    from notifier import api

    svc = database()
    with svc.sessions.begin() as session:
        shop = session.scalar(select(Shop).where(Shop.slug == slug))
        if shop is None:
            raise click.ClickException(f"no shop named {slug!r}")
        token = api.add_token(session, shop, label, svc.clock.now())
    click.echo(token)
    click.echo(
        f"the API token for {slug}, shown this once: send it as `Authorization: Bearer <token>`",
        err=True,
    )


@token_group.command("list")
def token_list_command() -> None:
    """Every token by id, shop, label and creation time (never the token itself)."""
    from notifier.models import ApiToken

    with database().sessions() as session:
        rows = session.execute(
            select(ApiToken.id, Shop.slug, ApiToken.label, ApiToken.created_at)
            .join(Shop, Shop.id == ApiToken.shop_id)
            .order_by(ApiToken.id)
        ).all()
    if not rows:
        click.echo("no API tokens yet; add one with `notifier token add SLUG`")
    for row in rows:
        click.echo(f"{row.id}\t{row.slug}\t{row.label or '-'}\t{row.created_at.isoformat()}")


@token_group.command("revoke")
@click.argument("token_id", type=int)
def token_revoke_command(token_id: int) -> None:
    """Stop a token from working at once (ids from `notifier token list`)."""
    from notifier.models import ApiToken

    with database().sessions.begin() as session:
        token = session.get(ApiToken, token_id)
        if token is None:
            raise click.ClickException(f"no API token {token_id}")
        session.delete(token)
    click.echo(f"revoked API token {token_id}")
