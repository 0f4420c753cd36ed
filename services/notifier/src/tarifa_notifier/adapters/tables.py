"""The notifier's SQLModel tables; every row carries its tenant (heartbeats and watchdogs: `platform`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def _ts(nullable: bool = False) -> Any:
    return Field(default=None, sa_type=sa.DateTime(timezone=True), nullable=nullable)


class AlertRow(SQLModel, table=True):
    __tablename__ = "notifier_alert"
    __table_args__ = (sa.UniqueConstraint("tenant", "fingerprint", name="uq_notifier_alert_fingerprint"),)

    id: str = Field(primary_key=True, max_length=36)
    tenant: str = Field(max_length=100, index=True)
    fingerprint: str = Field(max_length=300)
    severity: str = Field(max_length=20)
    source_kind: str = Field(max_length=30)
    object_kind: str = Field(max_length=50)
    object_id: str = Field(max_length=200)
    group_key: str = Field(max_length=260)
    summary: str = Field(sa_type=sa.Text)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    status: str = Field(max_length=20)
    starts_at: datetime = _ts()
    updated_at: datetime = _ts()
    resolved_at: datetime | None = _ts(nullable=True)
    acknowledged_by: str | None = Field(default=None, max_length=200)
    acknowledged_at: datetime | None = _ts(nullable=True)
    raised_count: int = 1
    repeat_seconds: int | None = None
    extra_emails: list[str] = Field(default_factory=list, sa_type=sa.JSON)


class AlertGroupRow(SQLModel, table=True):
    __tablename__ = "notifier_alert_group"

    tenant: str = Field(primary_key=True, max_length=100)
    key: str = Field(primary_key=True, max_length=260)
    first_at: datetime | None = _ts(nullable=True)
    last_flush_at: datetime | None = _ts(nullable=True)
    notified: dict[str, str] = Field(default_factory=dict, sa_type=sa.JSON)


class SilenceRow(SQLModel, table=True):
    __tablename__ = "notifier_silence"

    id: str = Field(primary_key=True, max_length=36)
    tenant: str = Field(max_length=100, index=True)
    matchers: list[dict[str, str]] = Field(default_factory=list, sa_type=sa.JSON)
    starts_at: datetime = _ts()
    ends_at: datetime = _ts()
    created_by: str = Field(default="", max_length=200)
    comment: str = Field(default="", sa_type=sa.Text)


class RecipientRow(SQLModel, table=True):
    __tablename__ = "notifier_recipient"

    id: str = Field(primary_key=True, max_length=36)
    tenant: str = Field(max_length=100, index=True)
    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    active: bool = True


class ResponsibilityRow(SQLModel, table=True):
    __tablename__ = "notifier_responsibility"
    __table_args__ = (
        sa.UniqueConstraint("tenant", "recipient_id", "object_kind", "object_id", name="uq_notifier_responsibility"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=100, index=True)
    recipient_id: str = Field(max_length=36)
    object_kind: str = Field(max_length=50)
    object_id: str = Field(max_length=200)


class GroupMemberRow(SQLModel, table=True):
    __tablename__ = "notifier_group_member"
    __table_args__ = (
        sa.UniqueConstraint("tenant", "group_name", "object_kind", "object_id", name="uq_notifier_group_member"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=100, index=True)
    group_name: str = Field(max_length=200)
    object_kind: str = Field(max_length=50)
    object_id: str = Field(max_length=200)


class NotificationRow(SQLModel, table=True):
    """The notification log: a decision to send (written with the decision) and its outcome."""

    __tablename__ = "notifier_notification"

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=100, index=True)
    dedup_key: str = Field(max_length=600, unique=True)
    group_key: str = Field(max_length=260)
    kind: str = Field(max_length=30)
    channel: str = Field(max_length=10)
    address: str = Field(max_length=320)
    recipient_id: str | None = Field(default=None, max_length=36)
    subject: str = Field(sa_type=sa.Text)
    body: str = Field(sa_type=sa.Text)
    status: str = Field(max_length=20, index=True)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    provider: str | None = Field(default=None, max_length=30)
    created_at: datetime = _ts()
    next_attempt_at: datetime = _ts()
    sent_at: datetime | None = _ts(nullable=True)
    attachment_id: str | None = Field(default=None, max_length=36)
    # While `sending`: the replica that claimed the row, and until when; past that, any replica may.
    claimed_by: str | None = Field(default=None, max_length=200)
    claimed_until: datetime | None = _ts(nullable=True)


class HeartbeatRow(SQLModel, table=True):
    __tablename__ = "notifier_heartbeat"

    tenant: str = Field(default="platform", max_length=100)
    service: str = Field(primary_key=True, max_length=100)
    instance: str = Field(primary_key=True, max_length=200)
    seen_at: datetime = _ts()
    interval_seconds: float = 10.0
    consumers: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)


class WatchStateRow(SQLModel, table=True):
    __tablename__ = "notifier_watch_state"

    tenant: str = Field(primary_key=True, max_length=100)
    name: str = Field(primary_key=True, max_length=200)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)


class TenantSettingsRow(SQLModel, table=True):
    __tablename__ = "notifier_tenant_settings"

    tenant: str = Field(primary_key=True, max_length=100)
    sms_provider: str = Field(default="smpp", max_length=20)


class FlushRow(SQLModel, table=True):
    """A decided group message, fanned out to the notification log in chunks (`cursor`, `done`)."""

    __tablename__ = "notifier_flush"

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=100, index=True)
    group_key: str = Field(max_length=260)
    object_kind: str = Field(max_length=50)
    object_id: str = Field(max_length=200)
    kind: str = Field(max_length=30)
    severity: str = Field(max_length=20)
    at: datetime = _ts()
    email_subject: str = Field(sa_type=sa.Text)
    email_body: str = Field(sa_type=sa.Text)
    sms_body: str = Field(sa_type=sa.Text)
    extra_emails: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    cursor: str | None = Field(default=None, max_length=36)
    done: bool = Field(default=False, index=True)


class ReportScheduleRow(SQLModel, table=True):
    __tablename__ = "notifier_report_schedule"

    id: str = Field(primary_key=True, max_length=36)
    tenant: str = Field(max_length=100, index=True)
    name: str = Field(max_length=200)
    cron: str = Field(max_length=100)
    time_zone: str = Field(max_length=64)
    recipients: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    kind: str = Field(max_length=30)
    format: str = Field(max_length=10)
    next_run_at: datetime = _ts()
    last_run_at: datetime | None = _ts(nullable=True)
    active: bool = True
    # A source that is down keeps the slot (`next_run_at`) and is tried again at `retry_at`.
    failures: int = 0
    retry_at: datetime | None = _ts(nullable=True)
    last_error: str | None = Field(default=None, sa_type=sa.Text)


class AttachmentRow(SQLModel, table=True):
    """A report's file, stored once per schedule slot and attached to each recipient's e-mail."""

    __tablename__ = "notifier_attachment"

    id: str = Field(primary_key=True, max_length=36)
    tenant: str = Field(max_length=100, index=True)
    filename: str = Field(max_length=200)
    media_type: str = Field(max_length=200)
    content: bytes = Field(sa_type=sa.LargeBinary)
    created_at: datetime = _ts()


class LeaseRow(SQLModel, table=True):
    """A named lease: the replica that runs the singleton loops (decisions, watchdogs, reports) until `expires_at`."""

    __tablename__ = "notifier_lease"

    name: str = Field(primary_key=True, max_length=100)
    holder: str = Field(max_length=200)
    expires_at: datetime = _ts()


class TenantWatchdogRow(SQLModel, table=True):
    """A tenant's rating watchdog: its own interval and its own list of e-mails."""

    __tablename__ = "notifier_tenant_watchdog"

    tenant: str = Field(primary_key=True, max_length=100)
    rating_check_minutes: float
    emails: list[str] = Field(default_factory=list, sa_type=sa.JSON)


class InhibitRuleRow(SQLModel, table=True):
    """A tenant's inhibition rule, applied with the built-in ones."""

    __tablename__ = "notifier_inhibit_rule"

    id: str = Field(primary_key=True, max_length=36)
    tenant: str = Field(max_length=100, index=True)
    source: list[dict[str, str]] = Field(default_factory=list, sa_type=sa.JSON)
    target: list[dict[str, str]] = Field(default_factory=list, sa_type=sa.JSON)
    equal: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    comment: str = Field(default="", sa_type=sa.Text)
    created_by: str = Field(default="", max_length=200)
