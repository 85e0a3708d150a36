"""handoffs.acknowledged_at: when a waiting user was last told their message arrived

While the user waits for staff (the conversation paused), the gateway acknowledges
what they write at most once per interval (VETBOT_HANDOFF_ACK_MINUTES); the time of
the last acknowledgement is kept here, and a guarded UPDATE on it lets only one
gateway acknowledge in each interval. NULL: not acknowledged yet.

A nullable column without constraints: SQLite adds and (3.35 and later) drops it with
ALTER TABLE, so the table is not copied and its partial unique index (one open handoff
per user) stays as it is.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 02:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0010'
down_revision: Union[str, None] = '0009'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('handoffs', sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('handoffs', 'acknowledged_at')
