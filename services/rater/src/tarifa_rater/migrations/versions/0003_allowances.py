"""Allowances per line and their use per cycle.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(28, 12).with_variant(sa.String(40), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rater_allowance",
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("line_id", sa.String(100), primary_key=True),
        sa.Column("included_seconds", sa.Integer, nullable=False),
        sa.Column("due_day", sa.Integer, nullable=False),
        sa.Column("credit_limit", MONEY, nullable=True),
        sa.Column("contract_id", sa.String(100), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "rater_line_usage",
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("line_id", sa.String(100), primary_key=True),
        sa.Column("cycle_start", sa.Date, primary_key=True),
        sa.Column("cycle_end", sa.Date, nullable=False),
        sa.Column("included_seconds", sa.Integer, nullable=False),
        sa.Column("used_seconds", sa.Integer, nullable=False),
        sa.Column("spent", MONEY, nullable=False),
        sa.Column("announced", sa.String(40), nullable=False),
        sa.Column("credit_announced", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rater_line_usage")
    op.drop_table("rater_allowance")
