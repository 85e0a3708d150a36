"""conversation_erasures: unfollowed users whose Rasa conversation is still to go

The gateway asks Rasa to delete the conversation of a user who unfollowed, under
Rasa's lock (bot.tracker_erasure); a row here stands for each request not yet
confirmed, so that a Rasa restart does not leave a conversation behind.
(The revision was reserved for the redacting channel's state; that state now lives
in Rasa's tracker store and the request itself, and needs no table.)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 01:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0013'
down_revision: Union[str, None] = '0012'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'conversation_erasures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('openid', sa.String(length=64), nullable=False),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_error', sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_conversation_erasures')),
        sa.UniqueConstraint('openid', name=op.f('uq_conversation_erasures_openid')),
    )
    op.create_index(op.f('ix_conversation_erasures_next_attempt_at'), 'conversation_erasures',
                    ['next_attempt_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_conversation_erasures_next_attempt_at'), table_name='conversation_erasures')
    op.drop_table('conversation_erasures')
