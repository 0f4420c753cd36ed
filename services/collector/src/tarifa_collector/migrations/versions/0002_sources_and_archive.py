"""Sources, the raw record archive, calls and source health.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "collector_source",
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("format", sa.String(40), nullable=False),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("port", sa.Integer, nullable=True),
        sa.Column("directory", sa.String(1000), nullable=True),
        sa.Column("after_import", sa.String(20), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("quiet_minutes", sa.Integer, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "collector_archive",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("source_id", sa.String(100), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("call_id", sa.String(100), nullable=True),
        sa.Column("call_record_id", sa.String(36), nullable=True),
        sa.Column("raw", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_collector_archive_pending", "collector_archive", ["tenant", "source_id", "call_record_id", "call_id"]
    )
    op.create_table(
        "collector_call",
        sa.Column("record_id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("source_id", sa.String(100), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_index("ix_collector_call_source_start", "collector_call", ["tenant", "source_id", "started_at"])
    op.create_table(
        "collector_source_state",
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("source_id", sa.String(100), primary_key=True),
        sa.Column("connection", sa.String(20), nullable=False),
        sa.Column("peer", sa.String(255), nullable=True),
        sa.Column("connection_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_record_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_call_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("records_today", sa.Integer, nullable=False),
        sa.Column("rejects_today", sa.Integer, nullable=False),
        sa.Column("records_total", sa.Integer, nullable=False),
        sa.Column("rejects_total", sa.Integer, nullable=False),
        sa.Column("silent_alert", sa.Boolean, nullable=False),
        sa.Column("link_alert", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("collector_source_state")
    op.drop_index("ix_collector_call_source_start", table_name="collector_call")
    op.drop_table("collector_call")
    op.drop_index("ix_collector_archive_pending", table_name="collector_archive")
    op.drop_table("collector_archive")
    op.drop_table("collector_source")
