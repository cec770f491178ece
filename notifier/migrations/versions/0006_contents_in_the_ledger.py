"""webhook bodies and sent emails kept once, in ledger_contents, where erasure can reach them

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 12:30:00
"""

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# (table, column with the bytes, column with their digest)
MOVED = (("inbound_events", "body", "body_sha256"), ("deliveries", "raw", "raw_sha256"))


def _refuse_changes(table: str) -> None:
    """As revision 0001 made them: the database refuses UPDATE and DELETE on history."""
    if op.get_bind().dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
        return
    op.execute(
        f"""CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '{table} is append-only'; END $$"""
    )
    op.execute(
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
    )


def _allow_changes(table: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER {table}_no_{action}")
        return
    op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
    op.execute(f"DROP FUNCTION {table}_append_only()")


def upgrade() -> None:
    for table, data, digest in MOVED:
        # `WHERE true` keeps SQLite from reading ON CONFLICT as part of the SELECT.
        op.execute(
            f"INSERT INTO ledger_contents (sha256, content) SELECT {digest}, {data} "
            f"FROM {table} WHERE true ON CONFLICT (sha256) DO NOTHING"
        )
        _allow_changes(table)
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column(data)
        _refuse_changes(table)
    _backfill_the_ledger()


def _backfill_the_ledger() -> None:
    """History written before revision 0004 gets its entries, so `ledger verify` can vouch for it.

    This uses the application's models and ledger code as they are at this revision; a later
    revision that changes them must keep this working or freeze a copy here.
    """
    from sqlalchemy.orm import Session

    from notifier import ledger

    session = Session(bind=op.get_bind())
    ledger.backfill(session)
    session.flush()


def downgrade() -> None:
    for table, data, digest in MOVED:
        _allow_changes(table)
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column(data, sa.LargeBinary(), nullable=True))
        # Erased contents come back empty: the older schema has no way to say "erased".
        op.execute(
            f"UPDATE {table} SET {data} = COALESCE((SELECT content FROM ledger_contents "
            f"WHERE ledger_contents.sha256 = {table}.{digest}), X'')"
            if op.get_bind().dialect.name == "sqlite"
            else f"UPDATE {table} SET {data} = COALESCE((SELECT content FROM ledger_contents "
            f"WHERE ledger_contents.sha256 = {table}.{digest}), ''::bytea)"
        )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(data, existing_type=sa.LargeBinary(), nullable=False)
        _refuse_changes(table)
