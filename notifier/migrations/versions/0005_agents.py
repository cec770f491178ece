"""agents, their shops and failed sign-ins; helpdesk API tokens; resends linked to their original

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 13:00:00
"""

import sqlalchemy as sa
from alembic import op

import notifier.db


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'agents',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('password_hash', sa.String(length=200), nullable=False),
        sa.Column('all_shops', sa.Boolean(), nullable=False),
        sa.Column('created_at', notifier.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_agents')),
        sa.UniqueConstraint('email', name=op.f('uq_agents_email')),
    )
    op.create_table(
        'agent_shops',
        sa.Column('agent_id', sa.Integer(), nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_agent_shops_agent_id_agents')),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_agent_shops_shop_id_shops')),
        sa.PrimaryKeyConstraint('agent_id', 'shop_id', name=op.f('pk_agent_shops')),
    )
    op.create_table(
        'login_failures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('address', sa.String(length=64), nullable=False),
        sa.Column('failed_at', notifier.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures')),
    )
    op.create_index(
        'ix_login_failures_email_address_failed_at',
        'login_failures',
        ['email', 'address', 'failed_at'],
        unique=False,
    )
    op.create_table(
        'api_tokens',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('shop_id', sa.Integer(), nullable=False),
        sa.Column('token_sha256', sa.String(length=64), nullable=False),
        sa.Column('label', sa.String(length=200), nullable=True),
        sa.Column('created_at', notifier.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['shop_id'], ['shops.id'], name=op.f('fk_api_tokens_shop_id_shops')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
        sa.UniqueConstraint('token_sha256', name=op.f('uq_api_tokens_token_sha256')),
    )
    op.create_index(op.f('ix_api_tokens_shop_id'), 'api_tokens', ['shop_id'], unique=False)
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resend_of', sa.String(length=36), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_messages_resend_of_messages'), 'messages', ['resend_of'], ['id']
        )


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_messages_resend_of_messages'), type_='foreignkey')
        batch_op.drop_column('resend_of')
    op.drop_index(op.f('ix_api_tokens_shop_id'), table_name='api_tokens')
    op.drop_table('api_tokens')
    op.drop_index('ix_login_failures_email_address_failed_at', table_name='login_failures')
    op.drop_table('login_failures')
    op.drop_table('agent_shops')
    op.drop_table('agents')
