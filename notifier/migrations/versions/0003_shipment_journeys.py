"""shipment journeys: shipments rebuilt, messages per shipment, order flags, tracking secrets

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 11:00:00
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

import notifier.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def _shipments_0001() -> list[sa.Column[Any]]:
    return [
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('order_id', sa.Integer(), nullable=False),
        sa.Column('external_id', sa.String(length=64), nullable=False),
        sa.Column('carrier', sa.String(length=100), nullable=True),
        sa.Column('tracking_number', sa.String(length=100), nullable=True),
        sa.Column('tracking_url', sa.String(length=2000), nullable=True),
        sa.Column('status', sa.String(length=40), nullable=True),
        sa.Column('status_at', notifier.db.UTCDateTime(), nullable=True),
        sa.Column('created_at', notifier.db.UTCDateTime(), nullable=False),
    ]


def _create_shipments(columns: list[sa.Column[Any]]) -> None:
    op.create_table(
        'shipments',
        *columns,
        sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_shipments_order_id_orders')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_shipments')),
        sa.UniqueConstraint('order_id', 'external_id', name=op.f('uq_shipments_order_id_external_id')),
    )
    op.create_index(op.f('ix_shipments_order_id'), 'shipments', ['order_id'], unique=False)
    op.create_index(op.f('ix_shipments_tracking_number'), 'shipments', ['tracking_number'], unique=False)


def _drop_shipments() -> None:
    op.drop_index(op.f('ix_shipments_tracking_number'), table_name='shipments')
    op.drop_index(op.f('ix_shipments_order_id'), table_name='shipments')
    op.drop_table('shipments')


def upgrade() -> None:
    # No revision before this one ever wrote a shipment, so the table is rebuilt, not altered.
    _drop_shipments()
    _create_shipments([
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('order_id', sa.Integer(), nullable=False),
        sa.Column('external_id', sa.String(length=200), nullable=False),
        sa.Column('carrier', sa.String(length=200), nullable=True),
        sa.Column('tracking_number', sa.String(length=100), nullable=True),
        sa.Column('tracking_url', sa.String(length=2000), nullable=True),
        sa.Column('origin_country', sa.String(length=2), nullable=True),
        sa.Column('destination_country', sa.String(length=2), nullable=True),
        sa.Column('expected_earliest', sa.Date(), nullable=True),
        sa.Column('expected_latest', sa.Date(), nullable=True),
        sa.Column('milestone', sa.String(length=40), nullable=True),
        sa.Column('latest_event_at', notifier.db.UTCDateTime(), nullable=True),
        sa.Column('last_heard_at', notifier.db.UTCDateTime(), nullable=False),
        sa.Column('journey', sa.JSON(), nullable=False),
        sa.Column('created_at', notifier.db.UTCDateTime(), nullable=False),
        sa.Column('updated_at', notifier.db.UTCDateTime(), nullable=False),
    ])
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shipment_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_messages_shipment_id'), ['shipment_id'], unique=False)
        batch_op.create_foreign_key(
            batch_op.f('fk_messages_shipment_id_shipments'), 'shipments', ['shipment_id'], ['id']
        )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('flags', sa.JSON(), server_default='[]', nullable=False))
    with op.batch_alter_table('shops', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('tracking_secrets', sa.JSON(), server_default='{}', nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table('shops', schema=None) as batch_op:
        batch_op.drop_column('tracking_secrets')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('flags')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_messages_shipment_id_shipments'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_messages_shipment_id'))
        batch_op.drop_column('shipment_id')
    _drop_shipments()
    _create_shipments(_shipments_0001())
