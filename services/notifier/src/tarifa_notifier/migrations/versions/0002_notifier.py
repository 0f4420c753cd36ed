"""Alerts, groups, silences, recipients, responsibilities, notification log, heartbeats, watch state.

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


def ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "notifier_alert",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False, index=True),
        sa.Column("fingerprint", sa.String(300), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("source_kind", sa.String(30), nullable=False),
        sa.Column("object_kind", sa.String(50), nullable=False),
        sa.Column("object_id", sa.String(200), nullable=False),
        sa.Column("group_key", sa.String(260), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        ts("starts_at"),
        ts("updated_at"),
        ts("resolved_at", True),
        sa.Column("acknowledged_by", sa.String(200), nullable=True),
        ts("acknowledged_at", True),
        sa.Column("raised_count", sa.Integer, nullable=False),
        sa.Column("repeat_seconds", sa.Integer, nullable=True),
        sa.Column("extra_emails", sa.JSON, nullable=False),
        sa.UniqueConstraint("tenant", "fingerprint", name="uq_notifier_alert_fingerprint"),
    )
    op.create_index("ix_notifier_alert_group", "notifier_alert", ["tenant", "group_key"])
    op.create_table(
        "notifier_alert_group",
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("key", sa.String(260), primary_key=True),
        ts("first_at", True),
        ts("last_flush_at", True),
        sa.Column("notified", sa.JSON, nullable=False),
    )
    op.create_table(
        "notifier_silence",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False, index=True),
        sa.Column("matchers", sa.JSON, nullable=False),
        ts("starts_at"),
        ts("ends_at"),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
    )
    op.create_table(
        "notifier_recipient",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("active", sa.Boolean, nullable=False),
    )
    op.create_table(
        "notifier_responsibility",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(100), nullable=False, index=True),
        sa.Column("recipient_id", sa.String(36), nullable=False),
        sa.Column("object_kind", sa.String(50), nullable=False),
        sa.Column("object_id", sa.String(200), nullable=False),
        sa.UniqueConstraint("tenant", "recipient_id", "object_kind", "object_id", name="uq_notifier_responsibility"),
    )
    op.create_table(
        "notifier_group_member",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(100), nullable=False, index=True),
        sa.Column("group_name", sa.String(200), nullable=False),
        sa.Column("object_kind", sa.String(50), nullable=False),
        sa.Column("object_id", sa.String(200), nullable=False),
        sa.UniqueConstraint("tenant", "group_name", "object_kind", "object_id", name="uq_notifier_group_member"),
    )
    op.create_table(
        "notifier_notification",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(100), nullable=False, index=True),
        sa.Column("dedup_key", sa.String(600), nullable=False, unique=True),
        sa.Column("group_key", sa.String(260), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("recipient_id", sa.String(36), nullable=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("provider", sa.String(30), nullable=True),
        ts("created_at"),
        ts("next_attempt_at"),
        ts("sent_at", True),
    )
    op.create_table(
        "notifier_heartbeat",
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("service", sa.String(100), primary_key=True),
        sa.Column("instance", sa.String(200), primary_key=True),
        ts("seen_at"),
        sa.Column("interval_seconds", sa.Float, nullable=False),
        sa.Column("consumers", sa.JSON, nullable=False),
    )
    op.create_table(
        "notifier_watch_state",
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_table(
        "notifier_flush",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(100), nullable=False, index=True),
        sa.Column("group_key", sa.String(260), nullable=False),
        sa.Column("object_kind", sa.String(50), nullable=False),
        sa.Column("object_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        ts("at"),
        sa.Column("email_subject", sa.Text, nullable=False),
        sa.Column("email_body", sa.Text, nullable=False),
        sa.Column("sms_body", sa.Text, nullable=False),
        sa.Column("extra_emails", sa.JSON, nullable=False),
        sa.Column("cursor", sa.String(36), nullable=True),
        sa.Column("done", sa.Boolean, nullable=False, index=True),
    )
    op.create_table(
        "notifier_report_schedule",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("cron", sa.String(100), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("recipients", sa.JSON, nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("format", sa.String(10), nullable=False),
        ts("next_run_at"),
        ts("last_run_at", True),
        sa.Column("active", sa.Boolean, nullable=False),
    )
    op.create_table(
        "notifier_tenant_settings",
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("sms_provider", sa.String(20), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "notifier_tenant_settings",
        "notifier_report_schedule",
        "notifier_flush",
        "notifier_watch_state",
        "notifier_heartbeat",
        "notifier_notification",
        "notifier_group_member",
        "notifier_responsibility",
        "notifier_recipient",
        "notifier_silence",
        "notifier_alert_group",
    ):
        op.drop_table(table)
    op.drop_index("ix_notifier_alert_group", table_name="notifier_alert")
    op.drop_table("notifier_alert")
