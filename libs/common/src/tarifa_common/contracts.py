"""The data of every event that crosses services: shapes only, no rules.

Producers build these models and publish `model.model_dump(mode="json")` as the event data;
consumers validate with `Model.model_validate(event.data)`. Changes are additive (new optional
fields); a breaking change is a new event type version. Money is `Decimal` (a JSON string on the
wire), unrounded with at least 6 decimals unless a field says it is rounded.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

CDR_COLLECTED = "tarifa.cdr.collected.v1"
CDR_REJECTED = "tarifa.cdr.rejected.v1"
CDR_RATED = "tarifa.cdr.rated.v1"
CDR_UNRATED = "tarifa.cdr.unrated.v1"
LINE_USAGE_THRESHOLD = "tarifa.line.usage_threshold.v1"
LINE_CREDIT_EXCEEDED = "tarifa.line.credit_exceeded.v1"
CONTRACT_STATUS_CHANGED = "tarifa.contract.status_changed.v1"
INVOICE_ISSUED = "tarifa.invoice.issued.v1"
INVOICE_CREDITED = "tarifa.invoice.credited.v1"


def line_event_type(kind: LineEventKind) -> str:
    return f"tarifa.line.{kind.value}.v1"


class Contract(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- cdr.raw / cdr.rejected (collector) ------------------------------------------------------


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


class Disposition(StrEnum):
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    CONGESTION = "congestion"


class CallLeg(Contract):
    """One leg of a call as the PBX reported it (one SMDR record, one Asterisk row)."""

    extension: str | None = None
    party: str | None = Field(default=None, description="the other party of this leg")
    started_at: datetime
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    ring_seconds: int = 0
    talk_seconds: int = 0
    hold_seconds: int = 0
    park_seconds: int = 0


class CollectedCdr(Contract):
    """A billable call, normalised by the collector (`tarifa.cdr.collected.v1`, key: source id)."""

    tenant: str
    source_id: str
    source_kind: str = Field(examples=["avaya_smdr", "asterisk_csv", "freeswitch_csv", "summit_csv", "operator_csv"])
    record_id: str = Field(description="deterministic: the same record re-sent has the same id")
    call_id: str = Field(description="the PBX's call identifier; legs of one call share it")
    legs: list[CallLeg] = Field(default_factory=list)
    started_at: datetime = Field(description="UTC")
    local_start: str = Field(description="the PBX's local wall-clock start, ISO 8601 without offset")
    time_zone: str = Field(examples=["America/Sao_Paulo"])
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration_seconds: int = Field(ge=0, description="from start to end, ringing included")
    billable_seconds: int = Field(ge=0, description="talk time")
    direction: Direction
    disposition: Disposition
    caller: str = ""
    caller_e164: str | None = None
    dialled: str = Field(default="", description="digits as dialled or received")
    called_e164: str | None = None
    extension: str | None = Field(default=None, description="the extension the call is charged to")
    answered_by: str | None = Field(default=None, description="the extension that answered, if not the called one")
    transferred: bool = False
    trunk: str | None = None
    account_code: str | None = None
    raw: str = Field(description="the source record(s), as text")
    complete: bool = Field(
        default=True,
        description="false when the PBX never sent the call's last record and the collector gave up waiting",
    )
    leg_record_ids: list[str] = Field(
        default_factory=list, description="the archive ids of the source records this call was made of"
    )


class RejectedRecord(Contract):
    """A record the collector could not accept (`tarifa.cdr.rejected.v1`, key: source id)."""

    tenant: str
    source_id: str
    source_kind: str
    reason: str = Field(examples=["field 1 (Call Start): '2026/13/01 10:00' is not a date"])
    raw_base64: str
    location: str | None = Field(default=None, examples=["file cdr-2026-11-01.csv line 17", "tcp 10.0.0.5 offset 8812"])
    received_at: datetime


# --- cdr.rated / cdr.unrated (rater) ---------------------------------------------------------


class RatedCall(Contract):
    """A priced, attributed call (`tarifa.cdr.rated.v1`, key: line id or extension).

    A re-rate publishes the same `record_id` with a higher `version`; `amount - previous_amount`
    is the difference to bill or credit. Consumers count each (record_id, version) once.
    """

    tenant: str
    record_id: str
    version: int = Field(ge=1)
    source_id: str
    call_id: str
    started_at: datetime
    direction: Direction
    dialled: str
    called_e164: str | None = None
    call_class: str = Field(examples=["local", "vc1", "vc2", "vc3", "long_distance", "international", "toll_free"])
    destination: str | None = None
    billable_seconds: int
    charged_seconds: int
    amount: Decimal = Field(description="sell price, unrounded")
    cost_amount: Decimal | None = Field(default=None, description="cost price, unrounded")
    previous_amount: Decimal | None = Field(default=None, description="the amount of the previous version")
    currency: str = "BRL"
    line_id: str | None = None
    extension: str | None = None
    answered_by: str | None = None
    transferred: bool = False
    customer_id: str | None = None
    contract_id: str | None = None
    cost_centre: str | None = None
    department: str | None = None
    tariff_plan: str | None = None
    rate: str | None = None
    band: str | None = None
    breakdown: dict[str, str] = Field(default_factory=dict, description="connect fee, increments, ... as strings")
    out_of_class: bool = False
    rated_at: datetime


class UnratedCall(Contract):
    """A call waiting for a tariff or an extension (`tarifa.cdr.unrated.v1`)."""

    tenant: str
    record_id: str
    source_id: str
    reason: str = Field(examples=["no_tariff", "unknown_extension"])
    detail: str


# --- line.usage (rater) ----------------------------------------------------------------------


class UsageThresholdReached(Contract):
    tenant: str
    line_id: str
    contract_id: str | None = None
    cycle_start: date
    cycle_end: date
    included_seconds: int
    used_seconds: int
    threshold_percent: int = Field(examples=[80, 100])


class CreditLimitExceeded(Contract):
    tenant: str
    line_id: str
    contract_id: str | None = None
    credit_limit: Decimal
    spent: Decimal
    currency: str = "BRL"
    cycle_start: date


# --- line.events (voip-summit) ---------------------------------------------------------------


class LineEventKind(StrEnum):
    CREATED = "created"
    ACTIVATED = "activated"
    CATEGORY_CHANGED = "category_changed"
    BLOCKED = "blocked"
    RELEASED = "released"
    CANCELLED = "cancelled"
    DID_ADDED = "did_added"
    DID_REMOVED = "did_removed"


class LineSnapshot(Contract):
    line_id: str
    contract_id: str
    extension: str | None = None
    number: str | None = Field(default=None, description="the binding number, E.164")
    dids: list[str] = Field(default_factory=list)
    partition: str | None = None
    category: str | None = None
    plan: str | None = None
    cost_centre: str | None = None
    due_day: int = Field(ge=1, le=25)
    credit_limit: Decimal | None = None
    active: bool = True
    blocked: bool = False


class LineChanged(Contract):
    """`tarifa.line.<kind>.v1`, key: line id."""

    tenant: str
    kind: LineEventKind
    line: LineSnapshot
    reason: str | None = None
    caused_by: str | None = Field(default=None, description="the event id that caused the change")


# --- contract.status (invoicer) --------------------------------------------------------------


class ContractStatus(StrEnum):
    ACTIVE = "active"
    BLOCKED_MANUALLY = "blocked_manually"
    BLOCKED_AUTOMATICALLY = "blocked_automatically"
    FINANCIALLY_OVERDUE = "financially_overdue"
    CANCELLED = "cancelled"
    RELEASED = "released"


class ContractStatusChanged(Contract):
    """`tarifa.contract.status_changed.v1`, key: contract id."""

    tenant: str
    contract_id: str
    customer_id: str
    status: ContractStatus
    previous: ContractStatus | None = None
    reason: str | None = None
    changed_at: datetime


# --- invoice.issued (invoicer) ---------------------------------------------------------------


class InvoiceIssued(Contract):
    """`tarifa.invoice.issued.v1` or `.credited.v1`, key: customer id. Amounts are rounded."""

    tenant: str
    invoice_id: str
    number: str = Field(description="the document number as printed, series included", examples=["NF-000123"])
    series: str = Field(examples=["NF"])
    kind: str = Field(examples=["invoice", "credit_note"])
    credited_invoice_id: str | None = None
    customer_id: str
    contract_id: str | None = None
    period_start: date
    period_end: date
    issue_date: date
    due_date: date
    currency: str = "BRL"
    net: Decimal
    tax: Decimal
    total: Decimal
    links: dict[str, str] = Field(default_factory=dict, description="pdf, ubl, edifact download URLs")
