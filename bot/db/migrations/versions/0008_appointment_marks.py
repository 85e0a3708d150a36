"""appointments: who recorded at the station that the person came or did not, and when

appointments.marked_at and appointments.marked_by (a staff account) are set when a
station's staff record an appointment as attended (已办理) or no_show (未到场) in the
console, and cleared when that record is undone; the audit log keeps the history.

SQLite cannot add a foreign key with ALTER TABLE ... ADD CONSTRAINT, and batch mode
would copy the table and lose the partial unique index on (openid, slot_id); the
column is added there with its REFERENCES clause inline instead, which SQLite allows.
No ON DELETE rule: staff accounts are never deleted (they are deactivated).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 04:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0008'
down_revision: Union[str, None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

FK_NAME = 'fk_appointments_marked_by_staff_accounts'


def upgrade() -> None:
    op.add_column('appointments', sa.Column('marked_at', sa.DateTime(timezone=True), nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        op.add_column('appointments', sa.Column('marked_by', sa.Integer(), nullable=True))
        op.create_foreign_key(op.f(FK_NAME), 'appointments', 'staff_accounts', ['marked_by'], ['id'])
    else:
        op.execute(f'ALTER TABLE appointments ADD COLUMN marked_by INTEGER CONSTRAINT {FK_NAME} '
                   'REFERENCES staff_accounts (id)')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_constraint(op.f(FK_NAME), 'appointments', type_='foreignkey')
    # SQLite (3.35 and later) drops a column whose foreign key is declared on the column itself.
    op.drop_column('appointments', 'marked_by')
    op.drop_column('appointments', 'marked_at')
