"""The collector's tables: sources, the append-only archive of accepted records, calls, source health."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class SourceRow(SQLModel, table=True):
    """A configured source of call records (a PBX link, a directory, an HTTP feed)."""

    __tablename__ = "collector_source"

    tenant: str = Field(primary_key=True, max_length=100)
    id: str = Field(primary_key=True, max_length=100)
    kind: str = Field(max_length=40)
    format: str = Field(max_length=40)
    host: str | None = Field(default=None, max_length=255)
    port: int | None = None
    directory: str | None = Field(default=None, max_length=1000)
    after_import: str = Field(default="archive", max_length=20)
    time_zone: str = Field(default="UTC", max_length=64)
    quiet_minutes: int = 60
    enabled: bool = True
    schedule: str | None = Field(default=None, max_length=100)
    column_mapping: str | None = Field(default=None, sa_type=sa.Text, description="operator_csv: the mapping as JSON")
    numbering: str | None = Field(default=None, sa_type=sa.Text, description="the numbering plan as JSON")
    integration_id: str | None = Field(default=None, max_length=64, description="summit_integration: voip-summit's id")
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=sa.DateTime(timezone=True))


class ArchivedRecord(SQLModel, table=True):
    """One accepted source record, exactly as received; never updated but for `call_record_id`.

    The primary key is the deterministic record id, so a record re-sent after a reconnect, or a
    file dropped twice, is refused by the database itself. `call_record_id` is empty while an
    SMDR leg waits for the rest of its call.
    """

    __tablename__ = "collector_archive"

    id: str = Field(primary_key=True, max_length=36)
    tenant: str = Field(max_length=100)
    source_id: str = Field(max_length=100)
    received_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    call_id: str | None = Field(default=None, max_length=100)
    call_record_id: str | None = Field(default=None, max_length=36)
    raw: str = Field(sa_type=sa.Text)


class CallRow(SQLModel, table=True):
    """A billable call as published on `cdr.raw`, kept for replay and watermarks."""

    __tablename__ = "collector_call"

    record_id: str = Field(primary_key=True, max_length=36)
    tenant: str = Field(max_length=100)
    source_id: str = Field(max_length=100)
    started_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    collected_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    payload: str = Field(sa_type=sa.Text, description="the CollectedCdr as JSON")


class SourceStateRow(SQLModel, table=True):
    """How a source is doing: connection, last record, today's counts, open alerts."""

    __tablename__ = "collector_source_state"

    tenant: str = Field(primary_key=True, max_length=100)
    source_id: str = Field(primary_key=True, max_length=100)
    connection: str = Field(default="idle", max_length=20)
    peer: str | None = Field(default=None, max_length=255)
    connection_changed_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    last_record_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    last_call_start: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    day: str = Field(default="", max_length=10)
    records_today: int = 0
    rejects_today: int = 0
    records_total: int = 0
    rejects_total: int = 0
    silent_alert: bool = False
    link_alert: bool = False
    last_error: str | None = Field(default=None, max_length=500)


class SummitImportRow(SQLModel, table=True):
    """The last Summit import settings a `summit_integration` source read from voip-summit, and how reading went.

    Kept so that the import runs on the last known settings while voip-summit does not answer,
    across restarts too.
    """

    __tablename__ = "collector_summit_import"

    tenant: str = Field(primary_key=True, max_length=100)
    source_id: str = Field(primary_key=True, max_length=100)
    integration_id: str = Field(max_length=64)
    directory: str | None = Field(default=None, max_length=1000)
    cron: str | None = Field(default=None, max_length=100)
    period: str | None = Field(default=None, max_length=16)
    delete_files: bool | None = None
    active: bool | None = None
    fetched_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    error: str | None = Field(default=None, sa_type=sa.Text, description="why the last read failed; None once it works")
    error_since: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    alerted: bool = False
