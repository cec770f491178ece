"""the buyer's side: suppression lists, survey answers, email providers' reports

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 14:30:00
"""

import sqlalchemy as sa
from alembic import op

import notifier.db


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'suppressions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('address', sa.String(length=320), nullable=False),
        sa.Column('reason', sa.Enum('unsubscribed', 'hard_bounce', 'complaint', 'agent', name='suppressionreason', native_enum=False, length=24), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.Column('source', sa.String(length=200), nullable=False),
        sa.Column('message_id', sa.String(length=36), nullable=True),
        sa.Column('created_at', notifier.db.UTCDateTime(), nullable=False),
        sa.Column('lifted_at', notifier.db.UTCDateTime(), nullable=True),
        sa.Column('lifted_by', sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_suppressions_message_id_messages')),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_suppressions_shop_id_shops')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_suppressions')),
    )
    op.create_index('ix_suppressions_shop_id_address', 'suppressions', ['shop_id', 'address'], unique=False)
    op.create_table(
        'survey_answers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.String(length=36), nullable=False),
        sa.Column('order_id', sa.Integer(), nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('score', sa.Integer(), nullable=False),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('answered_at', notifier.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_survey_answers_message_id_messages')),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_survey_answers_order_id_orders')),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_survey_answers_shop_id_shops')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_answers')),
    )
    op.create_index(op.f('ix_survey_answers_message_id'), 'survey_answers', ['message_id'], unique=False)
    op.create_index(op.f('ix_survey_answers_order_id'), 'survey_answers', ['order_id'], unique=False)
    op.create_table(
        'provider_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('provider', sa.String(length=20), nullable=False),
        sa.Column('provider_event_id', sa.String(length=200), nullable=False),
        sa.Column('provider_message_id', sa.String(length=400), nullable=True),
        sa.Column('message_id', sa.String(length=36), nullable=True),
        sa.Column('verdict', sa.Enum('delivered', 'deferred', 'bounced', 'complained', name='providerverdict', native_enum=False, length=24), nullable=False),
        sa.Column('recipient', sa.String(length=320), nullable=True),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.Column('occurred_at', notifier.db.UTCDateTime(), nullable=False),
        sa.Column('received_at', notifier.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_provider_events_message_id_messages')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_events')),
        sa.UniqueConstraint('provider', 'provider_event_id', name=op.f('uq_provider_events_provider_provider_event_id')),
    )
    op.create_index(op.f('ix_provider_events_message_id'), 'provider_events', ['message_id'], unique=False)
    op.create_index(op.f('ix_provider_events_provider_message_id'), 'provider_events', ['provider_message_id'], unique=False)
    op.create_index(op.f('ix_deliveries_provider_message_id'), 'deliveries', ['provider_message_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_deliveries_provider_message_id'), table_name='deliveries')
    op.drop_index(op.f('ix_provider_events_provider_message_id'), table_name='provider_events')
    op.drop_index(op.f('ix_provider_events_message_id'), table_name='provider_events')
    op.drop_table('provider_events')
    op.drop_index(op.f('ix_survey_answers_order_id'), table_name='survey_answers')
    op.drop_index(op.f('ix_survey_answers_message_id'), table_name='survey_answers')
    op.drop_table('survey_answers')
    op.drop_index('ix_suppressions_shop_id_address', table_name='suppressions')
    op.drop_table('suppressions')
