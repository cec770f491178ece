"""the ledger: hash-chained entries, refusing change, and their erasable contents

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 12:00:00
"""

import sqlalchemy as sa
from alembic import op

import notifier.db


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _refuse(table: str, actions: tuple[str, ...]) -> None:
    """Triggers that make the database itself refuse `actions` on `table`, whoever asks."""
    if op.get_bind().dialect.name == "sqlite":
        for action in actions:
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} refuses {action}'); END"
            )
        return
    op.execute(
        f"""CREATE FUNCTION {table}_refuses() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '% refuses %', TG_TABLE_NAME, TG_OP; END $$"""
    )
    op.execute(
        f"CREATE TRIGGER {table}_refuses BEFORE {' OR '.join(actions)} ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {table}_refuses()"
    )


def _allow(table: str, actions: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name == "sqlite":
        for action in actions:
            op.execute(f"DROP TRIGGER {table}_no_{action.lower()}")
        return
    op.execute(f"DROP TRIGGER {table}_refuses ON {table}")
    op.execute(f"DROP FUNCTION {table}_refuses()")


def upgrade() -> None:
    op.create_table(
        'ledger_contents',
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('sha256', name=op.f('pk_ledger_contents')),
    )
    op.create_table(
        'ledger_entries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('chain', sa.String(length=40), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('recorded_at', notifier.db.UTCDateTime(), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('order_id', sa.Integer(), nullable=True),
        sa.Column('subject', sa.String(length=200), nullable=False),
        sa.Column('content_sha256', sa.String(length=64), nullable=False),
        sa.Column('prev_sha256', sa.String(length=64), nullable=False),
        sa.Column('entry_sha256', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_ledger_entries_order_id_orders')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entries')),
        sa.UniqueConstraint('chain', 'seq', name=op.f('uq_ledger_entries_chain_seq')),
        sa.UniqueConstraint('entry_sha256', name=op.f('uq_ledger_entries_entry_sha256')),
    )
    op.create_index(op.f('ix_ledger_entries_order_id'), 'ledger_entries', ['order_id'], unique=False)
    op.create_index(op.f('ix_ledger_entries_subject'), 'ledger_entries', ['subject'], unique=False)
    # Entries never change; contents may only be erased (a buyer's request), never rewritten.
    _refuse('ledger_entries', ('UPDATE', 'DELETE'))
    _refuse('ledger_contents', ('UPDATE',))


def downgrade() -> None:
    _allow('ledger_contents', ('UPDATE',))
    _allow('ledger_entries', ('UPDATE', 'DELETE'))
    op.drop_index(op.f('ix_ledger_entries_subject'), table_name='ledger_entries')
    op.drop_index(op.f('ix_ledger_entries_order_id'), table_name='ledger_entries')
    op.drop_table('ledger_entries')
    op.drop_table('ledger_contents')
