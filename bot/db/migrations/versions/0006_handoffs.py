"""handoffs: conversations handed to staff (the queue of human service)

One row per handoff: why (the user asked, the bot failed twice, an urgent complaint,
a staff member took over), urgent first, waiting → claimed → closed, who and when.
A partial unique index keeps one open handoff per user.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 02:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0006'
down_revision: Union[str, None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('handoffs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('case_number', sa.String(length=20), nullable=True),
    sa.Column('station_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claimed_by', sa.String(length=50), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_by', sa.String(length=50), nullable=True),
    sa.CheckConstraint("(state = 'closed') = (closed_at IS NOT NULL)", name=op.f('ck_handoffs_closed_at')),
    sa.CheckConstraint("reason IN ('request_human', 'fallback', 'urgent', 'staff')", name=op.f('ck_handoffs_reason')),
    sa.CheckConstraint("state = 'waiting' OR claimed_at IS NOT NULL", name=op.f('ck_handoffs_claimed_at')),
    sa.CheckConstraint("state IN ('waiting', 'claimed', 'closed')", name=op.f('ck_handoffs_state')),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_handoffs_station_id_stations'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handoffs'))
    )
    op.create_index(op.f('ix_handoffs_openid'), 'handoffs', ['openid'], unique=False)
    op.create_index(op.f('ix_handoffs_station_id'), 'handoffs', ['station_id'], unique=False)
    op.create_index('ix_handoffs_state_created_at', 'handoffs', ['state', 'created_at'], unique=False)
    op.create_index('uq_handoffs_open_openid', 'handoffs', ['openid'], unique=True,
                    sqlite_where=sa.text("state != 'closed'"), postgresql_where=sa.text("state != 'closed'"))


def downgrade() -> None:
    op.drop_index('uq_handoffs_open_openid', table_name='handoffs')
    op.drop_index('ix_handoffs_state_created_at', table_name='handoffs')
    op.drop_index(op.f('ix_handoffs_station_id'), table_name='handoffs')
    op.drop_index(op.f('ix_handoffs_openid'), table_name='handoffs')
    op.drop_table('handoffs')
