"""The rater's tables: tariff plans and rates, assignments, holidays, numbering, directory, calls and ratings.

Money columns hold exact Decimals: NUMERIC(28, 12) on PostgreSQL and text on SQLite (whose
NUMERIC is a float and would lose cents). Every row carries its tenant.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

from tarifa_rater.handlers import UNRATED


class Money(sa.types.TypeDecorator[Decimal]):
    """An exact Decimal: NUMERIC on PostgreSQL, text on SQLite."""

    impl = sa.Numeric(28, 12)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(40))
        return dialect.type_descriptor(sa.Numeric(28, 12))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        amount = Decimal(str(value))  # read back in its shortest exact form on both databases
        if amount == amount.to_integral_value():
            return amount.quantize(Decimal(1))
        return amount.normalize()


def money_column() -> sa.types.TypeEngine[Any]:
    """The migration's spelling of `Money`."""
    return sa.Numeric(28, 12).with_variant(sa.String(40), "sqlite")


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """An aware datetime in UTC on every database (SQLite forgets the zone; we put it back)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("datetimes must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


UTC_DATETIME = UtcDateTime


class TariffPlanRow(SQLModel, table=True):
    __tablename__ = "rater_tariff_plan"
    __table_args__ = (sa.UniqueConstraint("tenant", "code", "valid_from", name="uq_rater_tariff_plan_version"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=100)
    code: str = Field(max_length=100)
    valid_from: datetime = Field(sa_type=UTC_DATETIME)
    currency: str = Field(max_length=3)
    normal_weekdays: str = Field(max_length=7, description="digits of weekdays in the normal band, Monday = 0")
    normal_from_hour: int
    normal_until_hour: int
    created_at: datetime = Field(sa_type=UTC_DATETIME)


class RateRow(SQLModel, table=True):
    __tablename__ = "rater_rate"

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=100)
    plan_id: int = Field(foreign_key="rater_tariff_plan.id", index=True)
    position: int
    destination: str = Field(max_length=200)
    prefixes: str = Field(sa_type=sa.Text, description="space-separated E.164 prefixes")
    call_class: str | None = Field(default=None, max_length=30)
    price_per_minute: Decimal = Field(sa_type=Money)
    reduced_price_per_minute: Decimal | None = Field(default=None, sa_type=Money)
    connect_fee: Decimal = Field(sa_type=Money)
    cost_per_minute: Decimal | None = Field(default=None, sa_type=Money)
    first_increment: int
    next_increment: int
    minimum_charge: Decimal = Field(sa_type=Money)
    free_seconds: int
    free_inclusive: bool


class PlanAssignmentRow(SQLModel, table=True):
    __tablename__ = "rater_plan_assignment"

    tenant: str = Field(primary_key=True, max_length=100)
    scope: str = Field(primary_key=True, max_length=20, description="tenant, customer or line")
    scope_id: str = Field(primary_key=True, max_length=100)
    plan_code: str = Field(max_length=100)


class HolidayRow(SQLModel, table=True):
    __tablename__ = "rater_holiday"

    tenant: str = Field(primary_key=True, max_length=100)
    day: date = Field(primary_key=True)
    name: str = Field(default="", max_length=200)


class NumberingRow(SQLModel, table=True):
    __tablename__ = "rater_numbering"

    tenant: str = Field(primary_key=True, max_length=100)
    source_id: str = Field(primary_key=True, max_length=100, description="'*' for the tenant's default")
    country_code: str = Field(max_length=4)
    home_area_code: str = Field(max_length=5)


class ExtensionRow(SQLModel, table=True):
    __tablename__ = "rater_extension"

    tenant: str = Field(primary_key=True, max_length=100)
    extension: str = Field(primary_key=True, max_length=100)
    line_id: str | None = Field(default=None, max_length=100)
    customer_id: str | None = Field(default=None, max_length=100)
    contract_id: str | None = Field(default=None, max_length=100)
    cost_centre: str | None = Field(default=None, max_length=100)
    department: str | None = Field(default=None, max_length=100)
    allowed_classes: str | None = Field(default=None, max_length=200, description="comma list; null: all")
    updated_at: datetime = Field(sa_type=UTC_DATETIME)


class AliasRow(SQLModel, table=True):
    __tablename__ = "rater_alias"

    tenant: str = Field(primary_key=True, max_length=100)
    number: str = Field(primary_key=True, max_length=40, description="digits as the PBX reports them")
    extension: str = Field(max_length=100)


class TenantStateRow(SQLModel, table=True):
    """A token that changes with every change of a tenant's tariffs or directory (cache validation)."""

    __tablename__ = "rater_tenant_state"

    tenant: str = Field(primary_key=True, max_length=100)
    token: str = Field(max_length=40)


# The calls that wait for a tariff, an extension or a number plan: the only ones the waiting
# indexes hold (partial indexes), so a rated call, nearly every call, writes neither b-tree. The
# predicate is a literal, and so is the queries' (`UNRATED_ONLY`): SQLite uses a partial index only for
# a query whose WHERE holds the index's term as written, and PostgreSQL's generic plan of a
# prepared statement cannot prove it from a bound parameter.
UNRATED_ONLY = sa.text(f"status = '{UNRATED}'")


class CallRow(SQLModel, table=True):
    """One collected call and its current rating (or why it has none)."""

    __tablename__ = "rater_call"
    __table_args__ = (
        sa.UniqueConstraint("tenant", "record_id", name="uq_rater_call_record"),
        sa.Index("ix_rater_call_period", "tenant", "started_at"),
        sa.Index(
            "ix_rater_call_waiting", "tenant", "reason", "id", sqlite_where=UNRATED_ONLY, postgresql_where=UNRATED_ONLY
        ),
        sa.Index(
            "ix_rater_call_extension", "tenant", "extension", sqlite_where=UNRATED_ONLY, postgresql_where=UNRATED_ONLY
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=100)
    record_id: str = Field(max_length=200)
    source_id: str = Field(max_length=100)
    call_id: str = Field(max_length=200)
    started_at: datetime = Field(sa_type=UTC_DATETIME)
    direction: str = Field(max_length=10)
    dialled: str = Field(max_length=80)
    called_e164: str | None = Field(default=None, max_length=40)
    extension: str | None = Field(default=None, max_length=100)
    answered_by: str | None = Field(default=None, max_length=100)
    transferred: bool = False
    billable_seconds: int
    status: str = Field(max_length=10, description="rated or unrated")
    reason: str | None = Field(default=None, max_length=40)
    detail: str | None = Field(default=None, sa_type=sa.Text)
    version: int = Field(default=0, description="0 while unrated")
    call_class: str | None = Field(default=None, max_length=30)
    destination: str | None = Field(default=None, max_length=200)
    charged_seconds: int = 0
    amount: Decimal | None = Field(default=None, sa_type=Money)
    cost_amount: Decimal | None = Field(default=None, sa_type=Money)
    currency: str = Field(default="BRL", max_length=3)
    line_id: str | None = Field(default=None, max_length=100)
    customer_id: str | None = Field(default=None, max_length=100)
    contract_id: str | None = Field(default=None, max_length=100)
    cost_centre: str | None = Field(default=None, max_length=100)
    department: str | None = Field(default=None, max_length=100)
    plan: str | None = Field(default=None, max_length=100)
    rate: str | None = Field(default=None, max_length=200)
    band: str | None = Field(default=None, max_length=20)
    breakdown: str | None = Field(default=None, sa_type=sa.Text, description="JSON")
    out_of_class: bool = False
    rated_at: datetime | None = Field(default=None, sa_type=UTC_DATETIME)
    cdr: str = Field(sa_type=sa.Text, description="the collected CDR, JSON, for re-rating")


class RatingRow(SQLModel, table=True):
    """Every version of a call's rating: re-rates add a row, never edit one."""

    __tablename__ = "rater_rating"

    tenant: str = Field(primary_key=True, max_length=100)
    record_id: str = Field(primary_key=True, max_length=200)
    version: int = Field(primary_key=True)
    amount: Decimal = Field(sa_type=Money)
    previous_amount: Decimal | None = Field(default=None, sa_type=Money)
    cost_amount: Decimal | None = Field(default=None, sa_type=Money)
    plan: str | None = Field(default=None, max_length=100)
    rate: str | None = Field(default=None, max_length=200)
    cause: str = Field(max_length=40, description="rated, retried or rerate")
    rated_at: datetime = Field(sa_type=UTC_DATETIME)


class AllowanceRow(SQLModel, table=True):
    __tablename__ = "rater_allowance"

    tenant: str = Field(primary_key=True, max_length=100)
    line_id: str = Field(primary_key=True, max_length=100)
    included_seconds: int
    due_day: int
    credit_limit: Decimal | None = Field(default=None, sa_type=Money)
    contract_id: str | None = Field(default=None, max_length=100)
    updated_at: datetime = Field(sa_type=UTC_DATETIME)


class LineUsageRow(SQLModel, table=True):
    __tablename__ = "rater_line_usage"

    tenant: str = Field(primary_key=True, max_length=100)
    line_id: str = Field(primary_key=True, max_length=100)
    cycle_start: date = Field(primary_key=True)
    cycle_end: date
    included_seconds: int
    used_seconds: int
    spent: Decimal = Field(sa_type=Money)
    announced: str = Field(max_length=40, description="thresholds announced, comma list")
    credit_announced: bool


class RetryRow(SQLModel, table=True):
    """A tenant's queued retry of its waiting calls: what changed, how far it got, how it went.

    One row per tenant: a new request merges into it (the union of what changed) and starts the
    scan again from the first waiting call, so repeated changes cost one pass, not one each.
    """

    __tablename__ = "rater_retry"
    __table_args__ = (sa.Index("ix_rater_retry_due", "state", "worked_at"),)

    tenant: str = Field(primary_key=True, max_length=100)
    state: str = Field(max_length=10, description="waiting, running, done or failed")
    reasons: str = Field(default="", max_length=200, description="the waiting reasons to retry, space-separated")
    extensions: str = Field(default="", sa_type=sa.Text, description="extensions to retry, space-separated")
    every_call: bool = Field(default=False, description="retry every waiting call (too many extensions to list)")
    after_id: int = Field(default=0, description="the scan's cursor: the last call id examined")
    requests: int = Field(default=0, description="changes merged into this round")
    examined: int = 0
    rated: int = 0
    attempts: int = Field(default=0, description="failed attempts in a row")
    error: str | None = Field(default=None, sa_type=sa.Text)
    alerted: bool = Field(default=False, description="an alert is raised for this retry's failure")
    requested_at: datetime = Field(sa_type=UTC_DATETIME)
    worked_at: datetime = Field(sa_type=UTC_DATETIME, description="last batch (or request): the least recent goes next")
    retry_at: datetime | None = Field(default=None, sa_type=UTC_DATETIME, description="not before, after a failure")
    finished_at: datetime | None = Field(default=None, sa_type=UTC_DATETIME)
