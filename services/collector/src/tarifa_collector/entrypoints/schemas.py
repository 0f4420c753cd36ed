"""The collector API's request and answer bodies, with OpenAPI examples."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from tarifa_collector.domain.sources import AfterImport, Connection, RecordFormat, SourceKind
from tarifa_common.contracts import Direction


class ColumnMappingModel(BaseModel):
    """Which column (numbered from 1) holds which field of an operator's CSV."""

    columns: dict[str, int] = Field(
        examples=[{"started_at": 1, "duration_seconds": 4, "caller": 2, "dialled": 3, "call_id": 5}],
        description="required: started_at, duration_seconds; optional: call_id, billable_seconds, caller, dialled, "
        "extension, direction, disposition, trunk, account_code",
    )
    delimiter: str = Field(default=",", examples=[";"])
    date_format: str = Field(default="%Y-%m-%d %H:%M:%S", examples=["%d/%m/%Y %H:%M:%S"])
    header: bool = Field(default=True, description="files start with a line of column names")
    default_direction: Direction = Direction.OUTBOUND


class NumberingModel(BaseModel):
    """Where the source's PBX is, so that its numbers get an E.164 form (defaults: Brazil)."""

    country_code: str = Field(default="55", examples=["55"])
    area_code: str | None = Field(default=None, examples=["11"], description="the PBX's home area code (DDD)")
    outside_line_prefix: str = Field(
        default="", examples=["0"], description="what users dial for an outside line, when the PBX reports it"
    )
    international_prefix: str = "00"
    trunk_prefix: str = "0"
    carrier_digits: int = Field(default=2, description="carrier selection code after 0 or 00 (Brazil: 2)")
    area_code_digits: int = 2
    subscriber_digits: list[int] = Field(default=[8, 9], description="lengths of a subscriber number")
    extension_max_digits: int = Field(default=6, description="numbers this short are extensions or short codes")


class SourceBase(BaseModel):
    kind: SourceKind = Field(examples=["smdr_listener"])
    format: RecordFormat = Field(default=RecordFormat.AVAYA_SMDR, examples=["avaya_smdr"])
    time_zone: str = Field(default="UTC", examples=["America/Sao_Paulo"], description="the PBX's local time zone")
    host: str | None = Field(
        default=None, examples=["10.0.0.5"], description="smdr_client: IP Office's address; smdr_listener: bind address"
    )
    port: int | None = Field(default=None, examples=[1080], description="TCP port of an SMDR link")
    directory: str | None = Field(default=None, examples=["/var/spool/cdr/asterisk"], description="drop_directory only")
    after_import: AfterImport = Field(default=AfterImport.ARCHIVE, description="what to do with an imported file")
    quiet_minutes: int = Field(default=60, ge=1, description="silence longer than this raises an alert")
    enabled: bool = True
    column_mapping: ColumnMappingModel | None = Field(default=None, description="operator_csv only")
    numbering: NumberingModel | None = Field(
        default=None, description="the PBX's numbering context; without it calls carry no E.164 numbers"
    )
    schedule: str | None = Field(
        default=None,
        examples=["0 3 1 * *"],
        description="drop_directory only: import on this cron schedule (source time) instead of continuously; "
        "when a day of the month is set the weekday is ignored",
    )
    integration_id: str | None = Field(
        default=None,
        examples=["5f0c2a9e41d84c7b9a0e3d6f1b2c4a8e"],
        description="summit_integration only: the voip-summit integration whose CDR directory, schedule, period "
        "and delete option this source follows (format summit_csv; set no directory or schedule here)",
    )


class SourceCreate(SourceBase):
    id: str = Field(examples=["pbx-hq"], description="lower-case letters, digits, '-' or '_'")


class SourceUpdate(SourceBase):
    pass


class SourceHealth(BaseModel):
    connection: Connection = Field(examples=["connected"])
    peer: str | None = Field(default=None, examples=["10.0.0.5:49152"])
    connection_changed_at: datetime | None = None
    last_record_at: datetime | None = None
    last_call_start: datetime | None = None
    records_today: int = Field(default=0, examples=[1432])
    rejects_today: int = Field(default=0, examples=[2])
    records_total: int = 0
    rejects_total: int = 0
    silent: bool = Field(default=False, description="an alert for silence is open")
    link_down: bool = Field(default=False, description="an alert for a dropped link is open")
    last_error: str | None = Field(
        default=None, examples=["OSError: [Errno 98] address already in use"], description="why the link last failed"
    )


class SummitImportPublic(BaseModel):
    """What a summit_integration source last read from voip-summit, and whether that is current."""

    integration_id: str
    directory: str | None = Field(default=None, examples=["/var/summit/cdr"])
    schedule: str | None = Field(default=None, examples=["0 3 1 * *"], description="the cron the import runs")
    import_period: str | None = Field(default=None, examples=["monthly"])
    delete_cdr_files: bool | None = None
    active: bool | None = Field(default=None, description="the integration is active (an inactive one imports nothing)")
    fetched_at: datetime | None = Field(default=None, description="when voip-summit last answered")
    stale: bool = Field(
        description="voip-summit did not answer the last read: the import runs on the last known settings"
    )
    error: str | None = Field(default=None, examples=["ConnectError: voip-summit did not answer"])
    error_since: datetime | None = None


class SourcePublic(SourceCreate):
    tenant: str
    created_at: datetime
    updated_at: datetime
    health: SourceHealth
    summit: SummitImportPublic | None = Field(default=None, description="summit_integration only")


class PostedBatch(BaseModel):
    """A batch of calls. Each item is a JSON object (see PostedCdr) or a line in the source's own format."""

    records: list[dict[str, Any] | str] = Field(
        examples=[
            [
                {
                    "call_id": "a81f-2291",
                    "started_at": "2026-11-02T09:28:41",
                    "duration_seconds": 71,
                    "billable_seconds": 64,
                    "direction": "outbound",
                    "caller": "203",
                    "dialled": "01133334444",
                    "extension": "203",
                }
            ]
        ]
    )


class RecordError(BaseModel):
    index: int = Field(examples=[3], description="0-based position in the batch")
    reason: str = Field(examples=["started_at: Input should be a valid datetime"])


class BatchResult(BaseModel):
    accepted: int = Field(examples=[99])
    duplicates: int = Field(examples=[0], description="records seen before; accepted once, ignored now")
    rejected: int = Field(examples=[1])
    errors: list[RecordError] = Field(default_factory=list)


class SourceWatermark(BaseModel):
    source_id: str
    reached: bool
    last_call_start: datetime | None = None
    last_record_at: datetime | None = None


class Watermark(BaseModel):
    until: datetime
    reached: bool = Field(description="every enabled source delivered its calls up to `until`")
    sources: list[SourceWatermark]


class ReplayRequest(BaseModel):
    start: datetime = Field(examples=["2026-11-01T00:00:00Z"], description="calls that started at or after this")
    end: datetime = Field(examples=["2026-12-01T00:00:00Z"], description="and before this")


class ReplayStatus(BaseModel):
    id: str
    source_id: str
    start: datetime
    end: datetime
    state: str = Field(examples=["running", "done", "failed"])
    total: int
    published: int
    error: str | None = None
    started_at: datetime
    finished_at: datetime | None = None
