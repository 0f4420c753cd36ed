"""Waiting calls by the reason they wait for, so a new tariff or extension retries only its own.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_rater_call_waiting", "rater_call", ["tenant", "status", "reason", "id"])
    op.create_index("ix_rater_call_extension", "rater_call", ["tenant", "status", "extension"])


def downgrade() -> None:
    op.drop_index("ix_rater_call_extension", table_name="rater_call")
    op.drop_index("ix_rater_call_waiting", table_name="rater_call")
