"""handoff_notes: staff's internal notes on a handoff (never sent to the user)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 04:30:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0009'
down_revision: Union[str, None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('handoff_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('handoff_id', sa.Integer(), nullable=False),
    sa.Column('staff', sa.String(length=50), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['handoff_id'], ['handoffs.id'], name=op.f('fk_handoff_notes_handoff_id_handoffs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handoff_notes'))
    )
    op.create_index(op.f('ix_handoff_notes_handoff_id'), 'handoff_notes', ['handoff_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_handoff_notes_handoff_id'), table_name='handoff_notes')
    op.drop_table('handoff_notes')
