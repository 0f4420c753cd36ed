"""The API's request and answer shapes (SQLModel-style families: Create, Update, Public), with examples."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from tarifa_voip_summit.domain.model import BidType, CatalogueMode, ImportPeriod, NumberStatus


class ImportScheduleBody(BaseModel):
    """When the CDR import runs, like a cron entry: each field a value, a range 'a-b' or 'all'."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"minute": "30", "hour": "7", "day_of_month": "all", "month": "all", "day_of_week": "1-5"},
                {"minute": "0", "hour": "3", "day_of_month": "1", "month": "all", "day_of_week": "all"},
            ]
        },
    )

    minute: str = Field(default="0", description="0-59")
    hour: str = Field(default="3", description="0-23, in the collector source's time zone")
    day_of_month: str = Field(default="all", description="1-31; 'all' for a daily import, a day for a monthly one")
    month: str = Field(default="all", description="1-12")
    day_of_week: str = Field(
        default="all", description="0-7 (0 and 7 are Sunday); ignored by a monthly import: the day of the month wins"
    )


class IntegrationBase(BaseModel):
    description: str = Field(examples=["Summit - São Paulo"])
    active: bool = True
    import_period: ImportPeriod = Field(default=ImportPeriod.DAILY, description="CDR import period")
    access_user: str = Field(examples=["ixc-api"])
    access_url: str = Field(examples=["cdr.summit.example"], description="access URL or IP (CDR retrieval)")
    access_port: int = Field(ge=1, le=65535, examples=[22])
    api_host: str = Field(examples=["10.20.0.5"], description="Summit API IP (or URL with scheme)")
    api_port: int = Field(ge=1, le=65535, examples=[8443])
    cdr_directory: str = Field(examples=["/var/summit/cdr"])
    delete_cdr_files: bool = Field(default=False, description="delete CDR files after processing")
    import_schedule: ImportScheduleBody | None = Field(
        default=None,
        description="when the collector imports the CDR directory; default 03:00 daily, or 03:00 on the 1st monthly",
    )
    catalogue_mode: CatalogueMode = Field(
        default=CatalogueMode.LOCAL, description="local catalogue (IXC stable) or listed live from Summit (beta)"
    )


class IntegrationCreate(IntegrationBase):
    model_config = ConfigDict(json_schema_extra={"examples": [{"access_password": "s3cret-from-summit"}]})

    access_password: str = Field(min_length=1, description="stored encrypted; never returned")


class IntegrationUpdate(BaseModel):
    description: str | None = None
    active: bool | None = None
    import_period: ImportPeriod | None = None
    access_user: str | None = None
    access_password: str | None = Field(default=None, min_length=1, description="stored encrypted; never returned")
    access_url: str | None = None
    access_port: int | None = Field(default=None, ge=1, le=65535)
    api_host: str | None = None
    api_port: int | None = Field(default=None, ge=1, le=65535)
    cdr_directory: str | None = None
    delete_cdr_files: bool | None = None
    import_schedule: ImportScheduleBody | None = None
    catalogue_mode: CatalogueMode | None = None


class IntegrationPublic(IntegrationBase):
    id: str
    import_schedule: ImportScheduleBody
    import_cron: str = Field(
        examples=["0 3 1 * *"], description="the cron expression the collector runs (the period's rule applied)"
    )
    password_set: bool = Field(description="a password is stored (it is never returned)")
    created_at: datetime
    updated_at: datetime


class NumberRangeCreate(BaseModel):
    name: str = Field(examples=["São Paulo 3000"])
    prefix: str = Field(description="DDI + DDD", examples=["5511"])
    first: str = Field(examples=["30000000"])
    last: str = Field(examples=["30000999"])


class NumberRangePublic(NumberRangeCreate):
    id: str
    size: int
    in_use: int


class NumberPublic(BaseModel):
    number: str = Field(examples=["+551130000001"])
    status: NumberStatus
    line_id: str | None = None


class NumberPage(BaseModel):
    range_id: str
    in_use: int
    available: int
    numbers: list[NumberPublic]


class PartitionBody(BaseModel):
    description: str = Field(examples=["São Paulo capital"])
    blocking_enabled: bool = Field(default=False, examples=[True])
    default_category: str | None = Field(default=None, examples=["LIVRE"])
    block_category: str | None = Field(default=None, examples=["BLOQ"])
    partial_block_category: str | None = Field(default=None, examples=["PARC"], description="optional")
    cancellation_category: str | None = Field(default=None, examples=["CANC"])
    extra_categories: list[str] = Field(default_factory=list, description="other categories a line may take")


class PartitionCreate(PartitionBody):
    code: str = Field(examples=["SP-CAPITAL"], description="the code Summit gave the partition")


class PartitionPublic(PartitionCreate):
    allowed_categories: list[str]


class CatalogueItemCreate(BaseModel):
    code: str = Field(examples=["RES"], description="abbreviation (or the value, for cost centres)")
    description: str = Field(default="", examples=["Residencial"])


class CatalogueItemPublic(CatalogueItemCreate):
    id: str


class LineCreate(BaseModel):
    contract_id: str = Field(examples=["C-1001"])
    integration_id: str
    billing_plan: str | None = Field(default=None, examples=["overage-standard"])
    bid_type: BidType = BidType.TERMINAL
    description: str | None = Field(default=None, examples=["Recepção"])
    account_code: str | None = Field(default=None, examples=["123456"], description="6-digit calling card")
    number: str = Field(examples=["+551130000001"], description="binding number, from a number range")
    extension: str | None = Field(default=None, examples=["2001"])
    active: bool = True
    partition: str = Field(examples=["SP-CAPITAL"])
    category: str = Field(examples=["LIVRE"])
    plan: str = Field(examples=["FIXO-100"])
    licence: str | None = Field(default=None, examples=["BASIC"])
    activation_date: date | None = Field(default=None, examples=["2026-11-22"])
    due_day: int = Field(examples=[10], description="day of the month the allowance restarts, 1-25")
    cost_centre: str = Field(default="Default", examples=["Default"])
    call_limit: int = Field(default=2, examples=[2], description="simultaneous calls")
    credit_limit: Decimal | None = Field(default=None, examples=["150.00"])
    city: str | None = Field(default=None, examples=["São Paulo"], description="the contract's city (for DIDs)")


class LineUpdate(BaseModel):
    billing_plan: str | None = None
    description: str | None = None
    extension: str | None = None
    active: bool | None = Field(default=None, description="false deactivates the line, true activates it")
    category: str | None = None
    plan: str | None = None
    licence: str | None = None
    due_day: int | None = None
    cost_centre: str | None = None
    call_limit: int | None = None
    credit_limit: Decimal | None = None


class DidCreate(BaseModel):
    number: str = Field(examples=["+551130000050"])
    priority: int = Field(default=1, ge=0, examples=[1])
    port: int | None = Field(
        default=1, examples=[1], description="1 = main line; other = a Summit port; null = no calls"
    )


class DidPublic(BaseModel):
    number: str
    priority: int
    port: int | None
    port_id: str | None
    city: str | None


class LinePublic(BaseModel):
    id: str
    contract_id: str
    integration_id: str
    billing_plan: str | None
    bid_type: str
    description: str | None
    account_code: str | None
    number: str = Field(examples=["+551130000001"])
    extension: str | None
    active: bool
    state: str = Field(examples=["active", "inactive", "cancelled"])
    blocked: bool
    partition: str
    category: str
    plan: str
    licence: str | None
    activation_date: date | None
    due_day: int
    cost_centre: str
    call_limit: int
    credit_limit: Decimal | None
    city: str | None
    terminal_id: str | None = Field(description="returned by Summit")
    credential: str | None = Field(description="returned by Summit")
    sync_status: str = Field(examples=["pending", "applied", "failed"])
    last_error: str | None


class OperationPublic(BaseModel):
    id: int
    line_id: str
    kind: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    applied_at: datetime | None


class AuditPublic(BaseModel):
    what: str
    old_category: str | None
    new_category: str | None
    reason: str
    caused_by: str | None
    at: datetime


class DriftPublic(BaseModel):
    integration_id: str
    missing_on_summit: list[str]
    unknown_on_summit: list[str]
    mismatched: list[str]
