"""Source health: why a link last failed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("collector_source_state") as batch:
        batch.add_column(sa.Column("last_error", sa.String(500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("collector_source_state") as batch:
        batch.drop_column("last_error")
