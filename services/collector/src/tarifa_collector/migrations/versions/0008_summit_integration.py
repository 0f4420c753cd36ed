"""Sources of kind summit_integration: the voip-summit integration they name, and its last known import settings.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("collector_source") as batch:
        batch.add_column(sa.Column("integration_id", sa.String(64), nullable=True))
    op.create_table(
        "collector_summit_import",
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("source_id", sa.String(100), primary_key=True),
        sa.Column("integration_id", sa.String(64), nullable=False),
        sa.Column("directory", sa.String(1000), nullable=True),
        sa.Column("cron", sa.String(100), nullable=True),
        sa.Column("period", sa.String(16), nullable=True),
        sa.Column("delete_files", sa.Boolean, nullable=True),
        sa.Column("active", sa.Boolean, nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("error_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("alerted", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("collector_summit_import")
    with op.batch_alter_table("collector_source") as batch:
        batch.drop_column("integration_id")
