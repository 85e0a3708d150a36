"""veterans.id_masked: the first four digits only (3101**************)

The old mask kept the area code and the last four digits (310114********3710);
with the birth date stored in clear beside it, the eight hidden digits were the
birth date, and every ID number could be rebuilt from a dump. The new mask keeps
the province and prefecture (bot.pii.mask_id). Existing rows are masked again by
string manipulation: the first four characters stay, the other fourteen become
stars; no key is needed.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 01:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0011'
down_revision: Union[str, None] = '0010'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

HIDDEN = '*' * 14  # an ID number has 18 characters


def upgrade() -> None:
    op.execute(sa.text(
        "UPDATE veterans SET id_masked = substr(id_masked, 1, 4) || :hidden"
        " WHERE id_masked <> substr(id_masked, 1, 4) || :hidden"
    ).bindparams(hidden=HIDDEN))


def downgrade() -> None:
    # Nothing to do: the digits the old mask showed (5-6 and 15-18) are gone from the
    # mask and only the ciphertext holds them, which a migration cannot open without
    # the key. The shorter mask is valid under the old schema too.
    pass
