"""Per-tenant rating watchdogs and inhibition rules.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notifier_tenant_watchdog",
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("rating_check_minutes", sa.Float, nullable=False),
        sa.Column("emails", sa.JSON, nullable=False),
    )
    op.create_table(
        "notifier_inhibit_rule",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False, index=True),
        sa.Column("source", sa.JSON, nullable=False),
        sa.Column("target", sa.JSON, nullable=False),
        sa.Column("equal", sa.JSON, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_index("ix_notifier_inhibit_rule_tenant", table_name="notifier_inhibit_rule")
    op.drop_table("notifier_inhibit_rule")
    op.drop_table("notifier_tenant_watchdog")
