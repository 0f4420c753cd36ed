"""Queued retries of waiting calls: one row per tenant, worked off in batches by the runtime.

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
    op.create_table(
        "rater_retry",
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("reasons", sa.String(200), nullable=False),
        sa.Column("extensions", sa.Text, nullable=False),
        sa.Column("every_call", sa.Boolean, nullable=False),
        sa.Column("after_id", sa.Integer, nullable=False),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("examined", sa.Integer, nullable=False),
        sa.Column("rated", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("alerted", sa.Boolean, nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("worked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_rater_retry_due", "rater_retry", ["state", "worked_at"])


def downgrade() -> None:
    op.drop_index("ix_rater_retry_due", table_name="rater_retry")
    op.drop_table("rater_retry")
