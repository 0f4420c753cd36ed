"""The voip-summit's SQLModel tables; every row carries its tenant (migration 0002 creates them)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Column, DateTime, Numeric, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from tarifa_common.events import utcnow


def new_id() -> str:
    return uuid.uuid4().hex


def _at() -> datetime:
    return utcnow()


def aware(sa_nullable: bool = False) -> Column[datetime]:
    return Column(DateTime(timezone=True), nullable=sa_nullable)


class IntegrationRow(SQLModel, table=True):
    __tablename__ = "vs_integration"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    tenant: str = Field(index=True, max_length=64)
    description: str = Field(max_length=200)
    active: bool = True
    import_period: str = Field(max_length=16)
    access_user: str = Field(max_length=200)
    access_password_encrypted: str = Field(sa_column=Column(Text, nullable=False))
    access_url: str = Field(max_length=300)
    access_port: int
    api_host: str = Field(max_length=300)
    api_port: int
    cdr_directory: str = Field(max_length=500)
    delete_cdr_files: bool = False
    import_schedule: str = Field(default="0 3 all all all", max_length=100, description="ImportSchedule, stored")
    catalogue_mode: str = Field(default="local", max_length=16)
    created_at: datetime = Field(default_factory=_at, sa_column=aware())
    updated_at: datetime = Field(default_factory=_at, sa_column=aware())


class NumberRangeRow(SQLModel, table=True):
    __tablename__ = "vs_number_range"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    tenant: str = Field(index=True, max_length=64)
    name: str = Field(max_length=200)
    prefix: str = Field(max_length=8)
    first: str = Field(max_length=16)
    last: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=_at, sa_column=aware())


class NumberAllocationRow(SQLModel, table=True):
    """One row per number held by a line or a DID; the primary key makes a second holder impossible."""

    __tablename__ = "vs_number_allocation"

    tenant: str = Field(primary_key=True, max_length=64)
    number: str = Field(primary_key=True, max_length=20)
    line_id: str = Field(index=True, max_length=32)
    holder: str = Field(max_length=8, description="line or did")


class PartitionRow(SQLModel, table=True):
    __tablename__ = "vs_partition"
    __table_args__ = (UniqueConstraint("tenant", "code", name="uq_vs_partition_code"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    tenant: str = Field(index=True, max_length=64)
    code: str = Field(max_length=64)
    description: str = Field(max_length=200)
    blocking_enabled: bool = False
    default_category: str | None = Field(default=None, max_length=64)
    block_category: str | None = Field(default=None, max_length=64)
    partial_block_category: str | None = Field(default=None, max_length=64)
    cancellation_category: str | None = Field(default=None, max_length=64)
    extra_categories: str = Field(default="", sa_column=Column(Text, nullable=False), description="comma-separated")


class CatalogueRow(SQLModel, table=True):
    """Categories, licences, plans and cost centres; `folded` compares codes without case."""

    __tablename__ = "vs_catalogue"
    __table_args__ = (UniqueConstraint("tenant", "kind", "folded", name="uq_vs_catalogue_code"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    tenant: str = Field(index=True, max_length=64)
    kind: str = Field(max_length=16)
    code: str = Field(max_length=64)
    folded: str = Field(max_length=64)
    description: str = Field(max_length=200)


class LineRow(SQLModel, table=True):
    __tablename__ = "vs_line"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    tenant: str = Field(index=True, max_length=64)
    contract_id: str = Field(index=True, max_length=64)
    integration_id: str = Field(max_length=32)
    billing_plan: str | None = Field(default=None, max_length=64)
    bid_type: str = Field(max_length=16)
    description: str | None = Field(default=None, max_length=200)
    account_code: str | None = Field(default=None, max_length=6)
    number: str = Field(max_length=20)
    extension: str | None = Field(default=None, max_length=20)
    active: bool = True
    state: str = Field(max_length=16)
    partition: str = Field(max_length=64)
    category: str = Field(max_length=64)
    plan: str = Field(max_length=64)
    licence: str | None = Field(default=None, max_length=64)
    activation_date: date | None = None
    due_day: int
    cost_centre: str = Field(max_length=64)
    call_limit: int
    credit_limit: Decimal | None = Field(default=None, sa_column=Column(Numeric(18, 6), nullable=True))
    city: str | None = Field(default=None, max_length=100)
    blocked: bool = False
    terminal_id: str | None = Field(default=None, max_length=64)
    credential: str | None = Field(default=None, max_length=200)
    sync_status: str = Field(default="pending", max_length=16)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=_at, sa_column=aware())
    updated_at: datetime = Field(default_factory=_at, sa_column=aware())


class DidRow(SQLModel, table=True):
    __tablename__ = "vs_did"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    tenant: str = Field(index=True, max_length=64)
    line_id: str = Field(index=True, max_length=32)
    number: str = Field(max_length=20)
    priority: int = 1
    port: int | None = None
    city: str | None = Field(default=None, max_length=100)
    port_id: str | None = Field(default=None, max_length=64)


class OperationRow(SQLModel, table=True):
    """A change to apply on Summit, queued in the same transaction as the change here."""

    __tablename__ = "vs_operation"

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(index=True, max_length=64)
    line_id: str = Field(index=True, max_length=32)
    kind: str = Field(max_length=16)
    payload: str = Field(sa_column=Column(Text, nullable=False), description="JSON")
    status: str = Field(default="pending", max_length=16, index=True)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=_at, sa_column=aware())
    applied_at: datetime | None = Field(default=None, sa_column=aware(True))
    claimed_until: datetime | None = Field(
        default=None, sa_column=aware(True), description="a worker is applying it until then (a lease)"
    )


class LineAuditRow(SQLModel, table=True):
    """Every category or state change of a line: what, why, and which event caused it."""

    __tablename__ = "vs_line_audit"

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(index=True, max_length=64)
    line_id: str = Field(index=True, max_length=32)
    what: str = Field(max_length=200)
    old_category: str | None = Field(default=None, max_length=64)
    new_category: str | None = Field(default=None, max_length=64)
    reason: str = Field(max_length=300)
    caused_by: str | None = Field(default=None, max_length=64, description="event id, or api:<subject>")
    at: datetime = Field(default_factory=_at, sa_column=aware())
