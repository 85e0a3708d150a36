"""contact drafts, and replies in WeChat for complaints

contact_drafts holds a phone number typed in chat, protected, until the action that
asked for it takes it (bot.services.contacts). complaint_cases.reply_channel gains
'wechat': answered in WeChat only, without a phone number.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 01:10:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: Union[str, None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

OLD = "reply_channel IN ('bound_phone', 'case_phone', 'anonymous')"
NEW = "reply_channel IN ('bound_phone', 'case_phone', 'wechat', 'anonymous')"


def _replace_check(sql: str, before: str = '') -> None:
    # SQLite cannot alter a constraint: batch mode copies the table (the named CHECKs and
    # the indexes are reflected and kept). Dropping the old copy would fail the history
    # rows' foreign key, so enforcement is off while the copy replaces it (the pragma
    # works here: no data has been written in this transaction yet), and checked after.
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        op.execute('PRAGMA foreign_keys = OFF')
    if before:
        op.execute(before)
    with op.batch_alter_table('complaint_cases', recreate='auto') as batch:
        batch.drop_constraint(op.f('ck_complaint_cases_reply_channel'), type_='check')
        batch.create_check_constraint(op.f('ck_complaint_cases_reply_channel'), sa.text(sql))
    if sqlite:
        op.execute('PRAGMA foreign_keys = ON')
        problems = op.get_bind().exec_driver_sql('PRAGMA foreign_key_check').fetchall()
        if problems:
            raise RuntimeError(f'foreign keys broken by the complaint_cases copy: {problems[:5]}')


def upgrade() -> None:
    op.create_table('contact_drafts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=20), nullable=False),
    sa.Column('phone_hash', sa.String(length=64), nullable=False),
    sa.Column('phone_cipher', sa.Text(), nullable=False),
    sa.Column('phone_masked', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_drafts'))
    )
    op.create_index(op.f('ix_contact_drafts_openid'), 'contact_drafts', ['openid'], unique=False)
    _replace_check(NEW)


def downgrade() -> None:
    _replace_check(OLD, before="UPDATE complaint_cases SET reply_channel = 'anonymous' WHERE reply_channel = 'wechat'")
    op.drop_index(op.f('ix_contact_drafts_openid'), table_name='contact_drafts')
    op.drop_table('contact_drafts')
