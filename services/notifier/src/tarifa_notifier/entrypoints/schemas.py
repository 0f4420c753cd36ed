"""The API's request and answer bodies, with OpenAPI examples."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tarifa_common.alerts import Severity, SourceKind


class AlertOut(BaseModel):
    id: str = Field(examples=["5b0e3c8e-9a36-5b8e-a7f5-0c1f2d3e4a5b"])
    fingerprint: str = Field(examples=["collector/source-silent/pbx-hq"])
    severity: Severity
    source_kind: SourceKind
    object_kind: str = Field(examples=["source"])
    object_id: str = Field(examples=["pbx-hq"])
    summary: str = Field(examples=["No call records from pbx-hq for 20 minutes"])
    details: dict[str, Any] = Field(default_factory=dict)
    status: str = Field(examples=["firing"])
    starts_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    acknowledged_by: str | None = None
    raised_count: int = Field(examples=[3], description="how often it was raised; one fingerprint is one alert")


class SilenceMatcherIn(BaseModel):
    label: str = Field(
        examples=["object_id"], description="fingerprint, severity, source_kind, object_kind, object_id, condition"
    )
    op: str = Field(default="=", examples=["="], description="=, !=, =~ (regex), !~")
    value: str = Field(examples=["pbx-hq"])


class SilenceIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "matchers": [{"label": "object_id", "op": "=", "value": "pbx-hq"}],
                    "starts_at": "2026-11-22T22:00:00Z",
                    "ends_at": "2026-11-23T02:00:00Z",
                    "comment": "PBX firmware upgrade",
                }
            ]
        }
    )
    matchers: list[SilenceMatcherIn]
    starts_at: datetime | None = Field(default=None, description="now when left out")
    ends_at: datetime
    comment: str = ""


class SilenceOut(BaseModel):
    id: str
    matchers: list[SilenceMatcherIn]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str


class RecipientIn(BaseModel):
    name: str = Field(min_length=1, examples=["Ana Souza"])
    email: str | None = Field(default=None, examples=["ana@acme.example"])
    phone: str | None = Field(default=None, examples=["+5511999990001"], description="E.164, for SMS")


class RecipientOut(RecipientIn):
    id: str
    active: bool


class ResponsibilityIn(BaseModel):
    object_kind: str = Field(examples=["source"], description="source, line, contract, customer, service, or group")
    object_id: str = Field(examples=["pbx-hq"], description="an id, `*` for every object of the kind, or a group name")


class ResponsibilityOut(ResponsibilityIn):
    recipient_id: str


class GroupMemberIn(BaseModel):
    object_kind: str = Field(examples=["source"])
    object_id: str = Field(examples=["pbx-hq"])


class NotificationOut(BaseModel):
    id: int
    kind: str = Field(examples=["alert.firing"])
    channel: str = Field(examples=["email"])
    address: str = Field(examples=["ana@acme.example"])
    subject: str
    status: str = Field(examples=["sent"], description="pending, sending, sent or failed")
    attempts: int = Field(examples=[1])
    last_error: str | None = None
    provider: str | None = Field(default=None, examples=["smtp"])
    created_at: datetime
    sent_at: datetime | None = None


class SmsProviderIn(BaseModel):
    provider: str = Field(examples=["smpp"], description="smpp or http")


class ReportScheduleIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Yesterday's alerts",
                    "cron": "0 7 * * *",
                    "time_zone": "America/Sao_Paulo",
                    "recipients": ["ops@hotel.example"],
                    "format": "text",
                }
            ]
        }
    )
    name: str = Field(min_length=1)
    cron: str = Field(description="minute hour day month weekday, in `time_zone`")
    time_zone: str = "UTC"
    recipients: list[str]
    kind: str = Field(
        default="alert_digest",
        description="alert_digest: the alerts since the previous run; calls_by_cost_centre: the rater's calls "
        "of the previous local day; invoicing: the invoicer's invoices of the previous month",
    )
    format: str = Field(
        default="text",
        description="text: the table in the body; csv (alert_digest, calls_by_cost_centre), xlsx "
        "(calls_by_cost_centre, invoicing) or pdf (invoicing): the table plus the source's file attached",
    )


class ReportScheduleOut(ReportScheduleIn):
    id: str
    next_run_at: datetime
    last_run_at: datetime | None = None
    active: bool
    failures: int = Field(default=0, description="failed rounds of the slot due at next_run_at (its source was down)")
    retry_at: datetime | None = None
    last_error: str | None = None


class WatchdogSettingsIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"rating_check_minutes": 5, "emails": ["it@hotel.example"]}]}
    )
    rating_check_minutes: float | None = Field(
        default=None, description="check every X minutes that calls are rated; null: only the platform's watchdog"
    )
    emails: list[str] = Field(default_factory=list, description="told while rating is stopped, every X minutes")


class InhibitRuleIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source_matchers": [{"label": "condition", "op": "=", "value": "link-down"}],
                    "target_matchers": [{"label": "condition", "op": "=~", "value": "source-silent|no-rating"}],
                    "equal": ["object_id"],
                    "comment": "a trunk that is down explains silent sources behind it",
                }
            ]
        }
    )
    source_matchers: list[SilenceMatcherIn] = Field(description="the alert that, while firing, mutes others")
    target_matchers: list[SilenceMatcherIn] = Field(description="the alerts it mutes")
    equal: list[str] = Field(default_factory=list, description="labels both must share, e.g. object_kind, object_id")
    comment: str = ""


class InhibitRuleOut(InhibitRuleIn):
    id: str
    built_in: bool = Field(default=False, description="every tenant's rule; cannot be deleted")
