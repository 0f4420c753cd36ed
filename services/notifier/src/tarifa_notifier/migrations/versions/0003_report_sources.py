"""Reports from other services: files attached to report e-mails, and a failing source's retry state.

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
    op.create_table(
        "notifier_attachment",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False, index=True),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("media_type", sa.String(200), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("notifier_notification") as table:
        table.add_column(sa.Column("attachment_id", sa.String(36), nullable=True))
    with op.batch_alter_table("notifier_report_schedule") as table:
        table.add_column(sa.Column("failures", sa.Integer, nullable=False, server_default="0"))
        table.add_column(sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))
        table.add_column(sa.Column("last_error", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifier_report_schedule") as table:
        table.drop_column("last_error")
        table.drop_column("retry_at")
        table.drop_column("failures")
    with op.batch_alter_table("notifier_notification") as table:
        table.drop_column("attachment_id")
    op.drop_index("ix_notifier_attachment_tenant", table_name="notifier_attachment")
    op.drop_table("notifier_attachment")
