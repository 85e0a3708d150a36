"""wechat_windows and outbox.sent_as: notices outside WeChat's 48-hour window

``wechat_windows`` keeps when each user last wrote to the account; the delivery
worker sends a customer-service message within 48 hours of it and a template
message otherwise, and records which in ``outbox.sent_as``.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 03:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0014'
down_revision: Union[str, None] = '0013'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'wechat_windows',
        sa.Column('openid', sa.String(length=64), nullable=False),
        sa.Column('last_inbound_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('openid', name=op.f('pk_wechat_windows')),
    )
    # A nullable column without constraints: SQLite adds it in place.
    op.add_column('outbox', sa.Column('sent_as', sa.String(length=10), nullable=True))


def downgrade() -> None:
    op.drop_column('outbox', 'sent_as')
    op.drop_table('wechat_windows')
