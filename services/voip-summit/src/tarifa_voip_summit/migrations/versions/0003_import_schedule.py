"""The integration's CDR import schedule (cron-like fields, read by the collector).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("vs_integration") as table:
        table.add_column(sa.Column("import_schedule", sa.String(100), nullable=False, server_default="0 3 all all all"))
    # A monthly import runs on a day of the month: the 1st at 03:00 unless the operator says otherwise.
    op.execute("UPDATE vs_integration SET import_schedule = '0 3 1 all all' WHERE import_period = 'monthly'")


def downgrade() -> None:
    with op.batch_alter_table("vs_integration") as table:
        table.drop_column("import_schedule")
