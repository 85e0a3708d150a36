"""WeChat state: the shared access token, undeliverable messages, outbox give-up and resume

wechat_tokens holds the account's access_token (encrypted when a vault is given) and
the single-flight refresh lock (refreshing_until, claimed by a guarded UPDATE) for
gateways without Redis. wechat_failures keeps, for staff, what the gateway could not
handle or deliver. outbox gains failed_at (given up: the row stops being due) and
parts_sent (pieces of a long text already delivered); the pending index leaves out the
rows given up.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 01:40:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: Union[str, None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

OLD_PENDING = 'sent_at IS NULL'
NEW_PENDING = 'sent_at IS NULL AND failed_at IS NULL'


def _pending_index(where: str) -> None:
    op.create_index('ix_outbox_pending', 'outbox', ['due_at'], unique=False,
                    sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def upgrade() -> None:
    # SQLite copies outbox to add the CHECKs; a reflected partial index would come back
    # without its WHERE, so the pending index is dropped first and made anew after.
    op.drop_index('ix_outbox_pending', table_name='outbox')
    with op.batch_alter_table('outbox', recreate='auto') as batch:
        batch.add_column(sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('parts_sent', sa.Integer(), server_default=sa.text('0'), nullable=False))
        batch.create_check_constraint(op.f('ck_outbox_parts_sent'), sa.text('parts_sent >= 0'))
        batch.create_check_constraint(op.f('ck_outbox_sent_or_failed'), sa.text('sent_at IS NULL OR failed_at IS NULL'))
    _pending_index(NEW_PENDING)

    op.create_table('wechat_tokens',
    sa.Column('appid', sa.String(length=32), nullable=False),
    sa.Column('token_cipher', sa.Text(), nullable=True),
    sa.Column('token_plain', sa.Text(), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('refreshing_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('refresh_holder', sa.String(length=32), nullable=True),
    sa.CheckConstraint('token_cipher IS NULL OR token_plain IS NULL', name=op.f('ck_wechat_tokens_one_token')),
    sa.PrimaryKeyConstraint('appid', name=op.f('pk_wechat_tokens'))
    )
    op.create_table('wechat_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('ref', sa.String(length=64), nullable=True),
    sa.Column('outbox_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.String(length=50), nullable=True),
    sa.CheckConstraint("direction IN ('in', 'out')", name=op.f('ck_wechat_failures_direction')),
    sa.ForeignKeyConstraint(['outbox_id'], ['outbox.id'], name=op.f('fk_wechat_failures_outbox_id_outbox'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wechat_failures'))
    )
    op.create_index(op.f('ix_wechat_failures_openid'), 'wechat_failures', ['openid'], unique=False)
    op.create_index(op.f('ix_wechat_failures_outbox_id'), 'wechat_failures', ['outbox_id'], unique=False)
    op.create_index('ix_wechat_failures_resolved_at_created_at', 'wechat_failures', ['resolved_at', 'created_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_wechat_failures_resolved_at_created_at', table_name='wechat_failures')
    op.drop_index(op.f('ix_wechat_failures_outbox_id'), table_name='wechat_failures')
    op.drop_index(op.f('ix_wechat_failures_openid'), table_name='wechat_failures')
    op.drop_table('wechat_failures')
    op.drop_table('wechat_tokens')
    # A row given up before 0005 could not exist: without failed_at it would be due
    # again and sent; keep it out of reach by counting it as sent at the time it failed.
    op.execute('UPDATE outbox SET sent_at = failed_at, failed_at = NULL WHERE failed_at IS NOT NULL')
    op.drop_index('ix_outbox_pending', table_name='outbox')
    with op.batch_alter_table('outbox', recreate='auto') as batch:
        batch.drop_constraint(op.f('ck_outbox_sent_or_failed'), type_='check')
        batch.drop_constraint(op.f('ck_outbox_parts_sent'), type_='check')
        batch.drop_column('parts_sent')
        batch.drop_column('failed_at')
    _pending_index(OLD_PENDING)
