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

from notifier import cli_access, cli_mail, cli_trail, migrate, mime, shops, timeline
from notifier.cli_support import database, one_order
from notifier.db import without_mapping
from notifier.models import Platform, Shop
from notifier.samples import SAMPLES
from notifier.services import services
from notifier.transports import describe

notifier_group = AppGroup("notifier", help="Keep cross-border buyers informed after they pay.")


@notifier_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256))
def serve_command(host: str, port: int, threads: int) -> None:
    """Web and dispatcher in one process, for one box. Creates a new database by itself."""
    from notifier import serve

    svc = database()
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
    without_mapping(svc.engine)
    if once:
        click.echo(f"sending through {describe(app.config['MAIL_URL'])}")
        outcome = serve.make_dispatcher(app, svc).run_once()
        if outcome.applied:
            click.echo(f"applied {outcome.applied} stored deliveries")
        click.echo(
            f"sent {outcome.sent}, will retry {outcome.retried}, failed {outcome.failed}, "
            f"suppressed {outcome.suppressed}"
        )
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
    svc = database()
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
    with database().sessions() as session:
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
    svc = database()
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
    with database().sessions() as session:
        record = timeline.build(session, one_order(session, order_ref, shop_slug))
    if as_json:
        click.echo(json.dumps(record, indent=2, ensure_ascii=False))
    else:
        click.echo(timeline.as_text(record), nl=False)


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

    svc = database()
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


for command in (
    cli_trail.ledger_group,
    cli_trail.evidence_command,
    cli_trail.buyer_group,
    cli_access.agent_group,
    cli_access.token_group,
    cli_mail.suppression_group,
):
    notifier_group.add_command(command)


def main() -> None:
    """The console script: the same commands as `flask --app wsgi notifier`, without Flask's options."""
    from notifier.app import create_app

    group = click.Group("notifier", commands=notifier_group.commands, help=notifier_group.help)
    group.main(prog_name="notifier", obj=ScriptInfo(create_app=create_app, set_debug_flag=False))
