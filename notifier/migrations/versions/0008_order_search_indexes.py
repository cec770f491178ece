"""indexes for agents' searches across shops: order number and storefront id alone

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 15:10:00
"""

from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_orders_number', 'orders', ['number'], unique=False)
    op.create_index('ix_orders_external_id', 'orders', ['external_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_orders_external_id', table_name='orders')
    op.drop_index('ix_orders_number', table_name='orders')
