"""`notifier ledger`, `evidence` and `buyer`: proving, exporting and erasing the written trail."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup, with_appcontext

from notifier.cli_support import database, one_order


@click.group("ledger", cls=AppGroup)
def ledger_group() -> None:
    """The written trail: prove it intact."""


@ledger_group.command("checkpoint")
def ledger_checkpoint() -> None:
    """Record the head of every chain that grew since the last checkpoint (workers do it hourly)."""
    from notifier import checkpoints

    svc = database()
    with svc.sessions.begin() as session:
        entry = checkpoints.checkpoint(session, svc.clock.now())
        if entry is None:
            click.echo("nothing new since the last checkpoint")
            return
        click.echo(f"checkpoint #{entry.seq} over {entry.subject}: {entry.entry_sha256}")


@ledger_group.command("verify")
def ledger_verify() -> None:
    """Check every chain link, content digest and stored copy; name the first broken entry."""
    from notifier import audit

    svc = database()
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


@click.command("evidence")
@with_appcontext
@click.argument("order_ref")
@click.option("--shop", "shop_slug", default=None, help="The shop, when several have this order.")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="FILE.zip"
)
def evidence_command(order_ref: str, shop_slug: str | None, out: Path) -> None:
    """A ZIP of dispute evidence: the emails as sent, a timeline, Stripe and PayPal summaries."""
    from notifier import evidence

    svc = database()
    with svc.sessions.begin() as session:
        order = one_order(session, order_ref, shop_slug)
        data = evidence.export(session, order, requested_by="cli", now=svc.clock.now())
    out.write_bytes(data)
    click.echo(f"wrote {out} ({len(data)} bytes); its manifest.json lists every file's SHA-256")


@click.group("buyer", cls=AppGroup)
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
    svc = database()
    with svc.sessions.begin() as session:
        done = erasure.erase_buyer(session, email, requested_by="cli", now=svc.clock.now())
    if not done.orders:
        raise click.ClickException(f"no order has the buyer address {email!r}")
    click.echo(
        f"erased the buyer's data from {done.orders} order(s): {done.contents} stored "
        "content(s) dropped; their digests stay, so `notifier ledger verify` still passes"
    )
