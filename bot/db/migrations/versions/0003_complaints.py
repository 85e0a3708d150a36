"""complaints: the petition register (一案一册), its history, and the per-day case counter

complaint_cases holds one row per matter, with CHECKs on the category, state, reply
channel and rating; the case phone only as keyed hash + AES-GCM cipher + masked copy.
complaint_events is the append-only history. complaint_counters gives out the per-day
sequence of case numbers (TS20261122-0007) by an atomic upsert.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 23:19:47.034004

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: Union[str, None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('complaint_counters',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('last_number', sa.Integer(), nullable=False),
    sa.CheckConstraint('last_number > 0', name=op.f('ck_complaint_counters_last_number')),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_complaint_counters'))
    )
    op.create_table('complaint_cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_number', sa.String(length=20), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=True),
    sa.Column('veteran_id', sa.Integer(), nullable=True),
    sa.Column('category', sa.String(length=10), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('place', sa.Text(), nullable=True),
    sa.Column('station_id', sa.Integer(), nullable=True),
    sa.Column('reply_channel', sa.String(length=12), nullable=False),
    sa.Column('phone_hash', sa.String(length=64), nullable=True),
    sa.Column('phone_cipher', sa.Text(), nullable=True),
    sa.Column('phone_masked', sa.String(length=20), nullable=True),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('assigned_to', sa.String(length=100), nullable=True),
    sa.Column('assigned_station_id', sa.Integer(), nullable=True),
    sa.Column('answer_text', sa.Text(), nullable=True),
    sa.Column('rating', sa.String(length=4), nullable=True),
    sa.Column('reopened', sa.Integer(), nullable=False),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('state_changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(state = 'closed') = (closed_at IS NOT NULL)", name=op.f('ck_complaint_cases_closed_at')),
    sa.CheckConstraint("category IN ('待遇发放', '安置就业', '优待落实', '服务态度', '权益侵害', '其他')", name=op.f('ck_complaint_cases_category')),
    sa.CheckConstraint("phone_hash IS NULL OR reply_channel = 'case_phone'", name=op.f('ck_complaint_cases_phone_channel')),
    sa.CheckConstraint("rating IS NULL OR rating IN ('满意', '基本满意', '不满意')", name=op.f('ck_complaint_cases_rating')),
    sa.CheckConstraint("reply_channel IN ('bound_phone', 'case_phone', 'anonymous')", name=op.f('ck_complaint_cases_reply_channel')),
    sa.CheckConstraint("state IN ('registered', 'classified', 'in_progress', 'answered', 'follow_up', 'closed')", name=op.f('ck_complaint_cases_state')),
    sa.CheckConstraint("state NOT IN ('answered', 'follow_up') OR answer_text IS NOT NULL", name=op.f('ck_complaint_cases_answer')),
    sa.CheckConstraint('priority BETWEEN 1 AND 3', name=op.f('ck_complaint_cases_priority')),
    sa.CheckConstraint('reopened >= 0', name=op.f('ck_complaint_cases_reopened')),
    sa.ForeignKeyConstraint(['assigned_station_id'], ['stations.id'], name=op.f('fk_complaint_cases_assigned_station_id_stations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_complaint_cases_station_id_stations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['veteran_id'], ['veterans.id'], name=op.f('fk_complaint_cases_veteran_id_veterans'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_complaint_cases')),
    sa.UniqueConstraint('case_number', name=op.f('uq_complaint_cases_case_number'))
    )
    with op.batch_alter_table('complaint_cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_complaint_cases_assigned_station_id'), ['assigned_station_id'], unique=False)
        batch_op.create_index('ix_complaint_cases_category_id', ['category', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_complaint_cases_openid'), ['openid'], unique=False)
        batch_op.create_index('ix_complaint_cases_state_due_at', ['state', 'due_at'], unique=False)
        batch_op.create_index('ix_complaint_cases_state_id', ['state', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_complaint_cases_station_id'), ['station_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_complaint_cases_veteran_id'), ['veteran_id'], unique=False)

    op.create_table('complaint_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('from_state', sa.String(length=12), nullable=True),
    sa.Column('to_state', sa.String(length=12), nullable=True),
    sa.Column('action', sa.String(length=20), nullable=True),
    sa.Column('actor', sa.String(length=50), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('happened_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(kind = 'transition') = (to_state IS NOT NULL)", name=op.f('ck_complaint_events_transition')),
    sa.CheckConstraint("from_state IS NULL OR from_state IN ('registered', 'classified', 'in_progress', 'answered', 'follow_up', 'closed')", name=op.f('ck_complaint_events_from_state')),
    sa.CheckConstraint("kind IN ('transition', 'note', 'user_added_information', 'attachment')", name=op.f('ck_complaint_events_kind')),
    sa.CheckConstraint("to_state IS NULL OR to_state IN ('registered', 'classified', 'in_progress', 'answered', 'follow_up', 'closed')", name=op.f('ck_complaint_events_to_state')),
    sa.ForeignKeyConstraint(['case_id'], ['complaint_cases.id'], name=op.f('fk_complaint_events_case_id_complaint_cases'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_complaint_events'))
    )
    with op.batch_alter_table('complaint_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_complaint_events_case_id'), ['case_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('complaint_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_complaint_events_case_id'))

    op.drop_table('complaint_events')
    with op.batch_alter_table('complaint_cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_complaint_cases_veteran_id'))
        batch_op.drop_index(batch_op.f('ix_complaint_cases_station_id'))
        batch_op.drop_index('ix_complaint_cases_state_id')
        batch_op.drop_index('ix_complaint_cases_state_due_at')
        batch_op.drop_index(batch_op.f('ix_complaint_cases_openid'))
        batch_op.drop_index('ix_complaint_cases_category_id')
        batch_op.drop_index(batch_op.f('ix_complaint_cases_assigned_station_id'))

    op.drop_table('complaint_cases')
    op.drop_table('complaint_counters')
