"""stored webhooks a worker applies later: read in arrival order, given their verdict once

A delivery stored with NOTIFIER_APPLY=deferred is written as `pending`; the one change the
database now allows on inbound_events is that row getting its verdict (outcome, detail, order)
exactly once, every other column as received. Everything else stays refused, as before.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 20:50:00
"""

from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

KEPT = (
    "id", "shop_id", "source", "delivery_id", "event_id", "topic", "received_at",
    "occurred_at", "body_sha256", "verification",
)
REFUSAL = "inbound_events is append-only: only a pending delivery gets its verdict, once"


def _settling(new: str, old: str, text: str) -> str:
    """The SQL condition for the one allowed update, over NEW/OLD row names."""
    same = " AND ".join(f"{new}.{c} IS NOT DISTINCT FROM {old}.{c}" for c in KEPT)
    return (
        f"{old}.outcome = 'pending' AND {new}.outcome <> 'pending' AND {old}.order_id IS NULL "
        f"AND {same} AND CAST({new}.headers AS {text}) IS NOT DISTINCT FROM "
        f"CAST({old}.headers AS {text})"
    )


def upgrade() -> None:
    op.create_index('ix_inbound_events_outcome_id', 'inbound_events', ['outcome', 'id'], unique=False)
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER inbound_events_no_update")
        op.execute(
            "CREATE TRIGGER inbound_events_no_update BEFORE UPDATE ON inbound_events "
            f"WHEN NOT ({_settling('NEW', 'OLD', 'TEXT').replace('IS NOT DISTINCT FROM', 'IS')}) "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
        )
        return
    op.execute(
        f"""CREATE OR REPLACE FUNCTION inbound_events_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND {_settling('NEW', 'OLD', 'text')} THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION '{REFUSAL}';
        END $$"""
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER inbound_events_no_update")
        op.execute(
            "CREATE TRIGGER inbound_events_no_update BEFORE UPDATE ON inbound_events "
            "BEGIN SELECT RAISE(ABORT, 'inbound_events is append-only'); END"
        )
    else:
        op.execute(
            """CREATE OR REPLACE FUNCTION inbound_events_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'inbound_events is append-only'; END $$"""
        )
    op.drop_index('ix_inbound_events_outcome_id', table_name='inbound_events')
