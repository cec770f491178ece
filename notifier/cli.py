"""The `notifier` command, also reachable as `flask --app wsgi notifier ...`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import click
import pytz
from flask import current_app
from flask.cli import AppGroup, ScriptInfo
from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier import migrate, mime, shops, timeline
from notifier.models import Order, Platform, Shop
from notifier.samples import SAMPLES
from notifier.services import Services, services
from notifier.transports import describe

notifier_group = AppGroup("notifier", help="Keep cross-border buyers informed after they pay.")


def _database() -> Services:
    """The app's services over a usable schema: a brand-new database is created on first use."""
    from notifier import serve

    svc = services()
    try:
        serve.ensure_schema(svc, upgrade_new=True)
    except serve.SchemaOutdated as error:
        raise click.ClickException(str(error)) from error
    return svc


@notifier_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256))
def serve_command(host: str, port: int, threads: int) -> None:
    """Web and dispatcher in one process, for one box. Creates a new database by itself."""
    from notifier import serve

    svc = _database()
    click.echo(
        f"notifier listening on http://{host}:{port}/  (mail: {describe(current_app.config['MAIL_URL'])})"
    )
    serve.run_serve(current_app._get_current_object(), svc, host, port, threads)  # type: ignore[attr-defined]


@notifier_group.command("worker")
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
def worker_command(once: bool) -> None:
    """Dispatcher only: claims and sends due messages. Run as many as you like."""
    from notifier import serve

    svc = services()
    try:
        serve.ensure_schema(svc, upgrade_new=False)
    except serve.SchemaOutdated as error:
        raise click.ClickException(str(error)) from error
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if once:
        outcome = serve.make_dispatcher(app, svc).run_once()
        click.echo(f"sent {outcome.sent}, will retry {outcome.retried}, failed {outcome.failed}")
        return
    serve.run_worker(app, svc)


@notifier_group.group("db")
def db_group() -> None:
    """The database schema."""


@db_group.command("upgrade")
def db_upgrade_command() -> None:
    """Bring the schema to this release's revision (Alembic)."""
    engine = services().engine
    before = migrate.current_revision(engine)
    migrate.upgrade(engine)
    click.echo(f"database at {migrate.current_revision(engine)} (was {before or 'empty'})")


@notifier_group.group("ledger")
def ledger_group() -> None:
    """The written trail: prove it intact."""


@ledger_group.command("checkpoint")
def ledger_checkpoint() -> None:
    """Record the head of every chain that grew since the last checkpoint (workers do it hourly)."""
    from notifier import ledger

    svc = _database()
    with svc.sessions.begin() as session:
        entry = ledger.checkpoint(session, svc.clock.now())
        if entry is None:
            click.echo("nothing new since the last checkpoint")
            return
        click.echo(f"checkpoint #{entry.seq} over {entry.subject}: {entry.entry_sha256}")


@ledger_group.command("verify")
def ledger_verify() -> None:
    """Check every chain link, content digest and stored copy; name the first broken entry."""
    from notifier import audit

    svc = _database()
    with svc.sessions() as session:
        report = audit.verify(session)
    if report.intact:
        erased = f", {report.erased} erased at a buyer's request" if report.erased else ""
        click.echo(f"ledger intact: {report.entries} entries in {report.chains} chains{erased}")
        return
    for problem in report.problems:
        click.echo(problem, err=True)
    raise click.ClickException(
        f"ledger broken: {len(report.problems)} problem(s) in {report.entries} entries"
    )


@notifier_group.command("evidence")
@click.argument("order_ref")
@click.option("--shop", "shop_slug", default=None, help="The shop, when several have this order.")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="FILE.zip"
)
def evidence_command(order_ref: str, shop_slug: str | None, out: Path) -> None:
    """A ZIP of dispute evidence: the emails as sent, a timeline, Stripe and PayPal summaries."""
    from notifier import evidence

    svc = _database()
    with svc.sessions.begin() as session:
        order = _one_order(session, order_ref, shop_slug)
        data = evidence.export(session, order, requested_by="cli", now=svc.clock.now())
    out.write_bytes(data)
    click.echo(f"wrote {out} ({len(data)} bytes); its manifest.json lists every file's SHA-256")


@notifier_group.group("buyer")
def buyer_group() -> None:
    """A buyer's personal data."""


@buyer_group.command("erase")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def buyer_erase(email: str, yes: bool) -> None:
    """Erase a buyer's personal data from every shop; the ledger still verifies afterwards."""
    from notifier import erasure

    if not yes:
        click.confirm(
            f"Erase every name, address and email of {email}? This cannot be undone", abort=True
        )
    svc = _database()
    with svc.sessions.begin() as session:
        done = erasure.erase_buyer(session, email, requested_by="cli", now=svc.clock.now())
    if not done.orders:
        raise click.ClickException(f"no order has the buyer address {email!r}")
    click.echo(
        f"erased the buyer's data from {done.orders} order(s): {done.contents} stored "
        "content(s) dropped; their digests stay, so `notifier ledger verify` still passes"
    )


@notifier_group.group("shop")
def shop_group() -> None:
    """The shops this deployment serves."""


def _read_secret(secret: str | None, secret_file: Path | None) -> str:
    if (secret is None) == (secret_file is None):
        raise click.UsageError("give exactly one of --secret or --secret-file")
    if secret_file is not None:
        return secret_file.read_text().strip()
    assert secret is not None
    return secret


@shop_group.command("add")
@click.argument("slug")
@click.option("--platform", required=True, type=click.Choice([p.value for p in Platform]))
@click.option("--domain", help="Shopify: the shop's myshopify.com domain.")
@click.option("--secret", help="The webhook signing secret (Standard Webhooks: whsec_...).")
@click.option("--secret-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--sender", required=True, help='The From of every email: "Shop Name <orders@shop.example>".'
)
@click.option("--support-email", help="Where buyers' replies and questions go.")
@click.option("--locale", default="en", show_default=True, help="Default buyer language.")
@click.option("--timezone", default="UTC", show_default=True, help="Default buyer timezone (IANA).")
@click.option("--return-policy-url", help="Linked from order emails.")
def shop_add_command(
    slug: str,
    platform: str,
    domain: str | None,
    secret: str | None,
    secret_file: Path | None,
    sender: str,
    support_email: str | None,
    locale: str,
    timezone: str,
    return_policy_url: str | None,
) -> None:
    """Add a shop. The secret is stored, never printed."""
    new = shops.NewShop(
        slug=slug,
        platform=Platform(platform),
        secret=_read_secret(secret, secret_file),
        sender=sender,
        domain=domain,
        support_email=support_email,
        locale=locale,
        timezone=timezone,
        return_policy_url=return_policy_url,
    )
    svc = _database()
    try:
        with svc.sessions.begin() as session:
            shop = shops.add(session, new, svc.clock.now())
    except shops.ShopError as error:
        raise click.ClickException(str(error)) from error
    url = (
        "/webhooks/shopify" if shop.platform is Platform.SHOPIFY else f"/webhooks/{platform}/{slug}"
    )
    click.echo(f"added shop {slug} ({platform}); point its webhooks at POST {url}")


@shop_group.command("list")
def shop_list_command() -> None:
    """Every shop with its settings (secrets shown only as a count)."""
    with _database().sessions() as session:
        rows = list(session.scalars(select(Shop).order_by(Shop.slug)))
    if not rows:
        click.echo("no shops yet; add one with `notifier shop add`")
        return
    for shop in rows:
        click.echo(
            f"{shop.slug}\t{shop.platform.value}\t{shop.domain or '-'}\t{shop.sender}\t"
            f"{shop.locale}\t{shop.timezone}\tsecrets: {len(shop.webhook_secrets)}"
            + (f"\tsettings: {json.dumps(shop.settings, sort_keys=True)}" if shop.settings else "")
        )


@shop_group.command("set")
@click.argument("slug")
@click.argument("settings", nargs=-1, required=True)
def shop_set_command(slug: str, settings: tuple[str, ...]) -> None:
    """Change settings: KEY=VALUE ...

    sender, support_email, locale, timezone, return_policy_url, domain, secret;
    window.KIND=HH:MM-HH:MM|immediate, kind.KIND=on|off, survey.delay_days=N,
    survey.skip_weekends=true|false.
    """
    svc = _database()
    try:
        with svc.sessions.begin() as session:
            shop = session.scalar(select(Shop).where(Shop.slug == slug))
            if shop is None:
                raise shops.ShopError(f"no shop named {slug!r}")
            for setting in settings:
                key, sep, value = setting.partition("=")
                if not sep:
                    raise shops.ShopError(f"{setting!r} is not KEY=VALUE")
                click.echo(shops.update(session, shop, key.strip(), value.strip()))
    except shops.ShopError as error:
        raise click.ClickException(str(error)) from error


@notifier_group.command("timeline")
@click.argument("order_ref")
@click.option("--shop", "shop_slug", help="The shop, when several have this order number.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def timeline_command(order_ref: str, shop_slug: str | None, as_json: bool) -> None:
    """An order's events and messages: kind, state, due time (UTC and buyer time), reason, result."""
    with _database().sessions() as session:
        record = timeline.build(session, _one_order(session, order_ref, shop_slug))
    if as_json:
        click.echo(json.dumps(record, indent=2, ensure_ascii=False))
    else:
        click.echo(timeline.as_text(record), nl=False)


def _one_order(session: Session, order_ref: str, shop_slug: str | None) -> Order:
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


@notifier_group.command("preview")
@click.argument("kind", type=click.Choice(sorted(SAMPLES)))
@click.option("--locale", default="en", show_default=True)
@click.option("--timezone", default="Europe/Berlin", show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "html", "eml"]), default="text", show_default=True
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file instead."
)
def preview_command(kind: str, locale: str, timezone: str, fmt: str, out: Path | None) -> None:
    """Render a kind with realistic sample data, as a buyer would get it."""
    from datetime import datetime

    renderer = services().renderer
    if timezone not in pytz.all_timezones_set:
        raise click.ClickException(f"{timezone!r} is not an IANA timezone (e.g. Europe/Berlin)")
    if locale not in renderer.locales:
        raise click.ClickException(
            f"no catalog for {locale!r}; have {', '.join(sorted(renderer.locales))}"
        )
    rendered = renderer.render(kind, SAMPLES[kind], locale, timezone)
    if fmt == "text":
        data = f"Subject: {rendered.subject}\n\n{rendered.text}".encode()
    elif fmt == "html":
        data = rendered.html.encode()
    else:
        envelope = mime.Envelope(
            sender="Lumen & Co. <orders@lumen.example>",
            recipient="anna@example.org",
            recipient_name="Anna Schmidt",
            reply_to="help@lumen.example",
            message_id=f"<{kind}.preview@lumen.example>",
            date=datetime.fromisoformat("2026-11-23T09:00:00+00:00"),
        )
        data = mime.build(rendered, envelope)
    if out:
        out.write_bytes(data)
        click.echo(f"wrote {out}")
    else:
        sys.stdout.buffer.write(data)


@notifier_group.command("demo")
@click.option("--locale", default="de", show_default=True, help="The Shopify buyer's locale.")
@click.option(
    "--url",
    default=None,
    help="Post to the service running at this URL (e.g. http://127.0.0.1:8000), whose own "
    "dispatcher sends; by default the journeys go through this process's endpoints.",
)
def demo_command(locale: str, url: str | None) -> None:
    """Replay sample journeys (four buyers, four countries) through the signed webhook endpoints."""
    from notifier import demo, serve

    svc = _database()
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def leave_it_to_the_service() -> None:
        """The running service's own dispatcher sends what is due."""

    dispatch: Callable[[], object] = leave_it_to_the_service
    poster = demo.over_http(url) if url else demo.in_process(app)
    if not url:
        dispatch = serve.make_dispatcher(app, svc).run_once
    try:
        played = demo.run(svc, poster, locale, dispatch, pause=1.0 if url else 0.0)
    except (RuntimeError, OSError) as error:
        raise click.ClickException(f"the demo could not post its webhooks: {error}") from error
    for journey, _answers in played:
        with svc.sessions() as session:
            [order] = timeline.find_orders(session, journey.number, journey.shop)
            record = timeline.build(session, order)
        click.echo(f"{journey.number} at {journey.shop}: {journey.buyer}")
        for message in record["messages"]:
            if message["kind"] == "shipment_delayed" and message["state"] == "cancelled":
                continue  # stall reassurances replaced by news: in the timeline, not worth a line
            click.echo(
                f"  {message['kind']:<20} {message['state']:<10} "
                f"{message['due_at_local']}  {message['reason']}"
            )
    click.echo(
        f"\nThe emails are in {describe(app.config['MAIL_URL'])}; the whole record of an order: "
        f"notifier timeline {played[0][0].number} --shop demo"
    )


@notifier_group.group("agent")
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
    svc = _database()
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

    with _database().sessions() as session:
        agents = list(session.scalars(select(Agent).order_by(Agent.email)))
        rows = [
            (a.email, "every shop" if a.all_shops else ", ".join(s.slug for s in a.shops))
            for a in agents
        ]
    if not rows:
        click.echo("no agents yet; add one with `notifier agent add EMAIL`")
    for email, seen in rows:
        click.echo(f"{email}\t{seen}")


@notifier_group.group("token")
def token_group() -> None:
    """Helpdesk API tokens, one shop each (GET /api/v1/orders/SHOP/ORDER/timeline)."""


@token_group.command("add")
@click.argument("slug")
@click.option("--label", help="Who uses it, e.g. zendesk.")
def token_add_command(slug: str, label: str | None) -> None:
    """Make a token for a shop and print it once: only its SHA-256 is kept."""
    from notifier import api

    svc = _database()
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

    with _database().sessions() as session:
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

    with _database().sessions.begin() as session:
        token = session.get(ApiToken, token_id)
        if token is None:
            raise click.ClickException(f"no API token {token_id}")
        session.delete(token)
    click.echo(f"revoked API token {token_id}")


def main() -> None:
    """The console script: the same commands as `flask --app wsgi notifier`, without Flask's options."""
    from notifier.app import create_app

    group = click.Group("notifier", commands=notifier_group.commands, help=notifier_group.help)
    group.main(prog_name="notifier", obj=ScriptInfo(create_app=create_app, set_debug_flag=False))
