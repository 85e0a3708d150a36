"""staff_accounts.must_change_password: the account signs in with a one-time password

An admin's reset (console or `vetbot staff reset`) gives the account a generated
one-time password and sets this flag; until the holder has chosen a password of their
own, every console page but the change-password page and sign-out leads there. Their
own change clears it. Existing accounts get false (server default).

A boolean column with a server default and no constraint of its own: SQLite adds and
(3.35 and later) drops it with ALTER TABLE, so the table and its CHECK constraints are
not copied.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 01:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0012'
down_revision: Union[str, None] = '0011'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('staff_accounts', sa.Column('must_change_password', sa.Boolean(), server_default=sa.false(),
                                              nullable=False))


def downgrade() -> None:
    op.drop_column('staff_accounts', 'must_change_password')
