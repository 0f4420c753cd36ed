"""Sources: the numbering plan that gives their calls E.164 numbers.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("collector_source") as batch:
        batch.add_column(sa.Column("numbering", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("collector_source") as batch:
        batch.drop_column("numbering")
