"""Drop the (tenant, status) index of rated calls: the waiting index begins with the same columns.

Every new call updates each index of `rater_call`; (tenant, status) is the prefix of
`ix_rater_call_waiting` (tenant, status, reason, id) and of `ix_rater_call_extension`, which
serve every query it served, so it was one b-tree more to write per call for nothing.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_rater_call_status", table_name="rater_call")


def downgrade() -> None:
    op.create_index("ix_rater_call_status", "rater_call", ["tenant", "status"])
