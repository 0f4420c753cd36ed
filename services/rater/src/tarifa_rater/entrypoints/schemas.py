"""The rater API's request and response bodies, with OpenAPI examples."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from tarifa_rater.domain.numbering import CallClass
from tarifa_rater.domain.tariffs import CSV_COLUMNS

PRICE_LIST_EXAMPLE = (
    ",".join(CSV_COLUMNS)
    + """
Local,,local,0.12,0.06,0.05,0.03,30,6,0,3,false
Mobile VC1,,vc1,0.60,0.40,0.05,0.30,30,6,0,3,false
Portugal,351,,1.20,,0.10,0.80,30,6,0,3,false
"""
)
EXTENSIONS_EXAMPLE = """extension,line_id,customer_id,contract_id,cost_centre,department,allowed_classes
2001,line-2001,cust-1,ct-1,sales,commercial,
2002,line-2002,cust-1,ct-1,lobby,front desk,local|toll_free|service
"""


class PlanVersionOut(BaseModel):
    code: str = Field(examples=["standard"])
    valid_from: datetime
    currency: str = Field(examples=["BRL"])
    normal_weekdays: str = Field(examples=["012345"], description="weekdays of the normal band, Monday = 0")
    normal_from_hour: int = Field(examples=[7])
    normal_until_hour: int = Field(examples=[21])
    rates: int = Field(examples=[3])


class RetryQueued(BaseModel):
    """The answer of a change that can make waiting calls ratable: their retry is queued, not done."""

    state: str = Field(examples=["waiting"], description="waiting (queued) or running (merged into a retry under way)")
    requests: int = Field(examples=[1], description="changes merged into this retry so far")
    waiting_calls: int = Field(examples=[200000], description="the tenant's calls waiting now, before the retry")
    progress: str = Field(default="/v1/unrated-calls/retry", examples=["/v1/unrated-calls/retry"])


class RetryOut(BaseModel):
    """The tenant's queued retry of waiting calls: what it covers, how far it got, how it went."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "state": "running",
                    "reasons": ["no_tariff"],
                    "extensions": [],
                    "every_call": False,
                    "requests": 2,
                    "examined": 1500,
                    "rated": 1480,
                    "waiting_calls": 198520,
                    "attempts": 0,
                    "error": None,
                    "requested_at": "2026-12-02T10:00:00Z",
                    "worked_at": "2026-12-02T10:00:03Z",
                    "finished_at": None,
                }
            ]
        }
    )

    state: str = Field(description="idle (never queued), waiting, running, done or failed")
    reasons: list[str] = Field(default_factory=list, description="waiting reasons it retries")
    extensions: list[str] = Field(default_factory=list, description="extensions whose waiting calls it retries")
    every_call: bool = Field(default=False, description="it retries every waiting call of the tenant")
    requests: int = 0
    examined: int = Field(default=0, description="waiting calls examined in this round")
    rated: int = Field(default=0, description="of those, rated (and published) in this round")
    waiting_calls: int = Field(description="the tenant's calls waiting now")
    attempts: int = Field(default=0, description="failed batches in a row (it backs off; fails after 5)")
    error: str | None = None
    requested_at: datetime | None = None
    worked_at: datetime | None = None
    finished_at: datetime | None = None


class PlanImported(PlanVersionOut):
    retried: int = Field(
        default=0,
        examples=[0],
        deprecated=True,
        description="always 0: waiting calls are no longer rated inside the request; see `retry`",
    )
    retry: RetryQueued


class AssignmentIn(BaseModel):
    plan_code: str = Field(examples=["standard"], min_length=1, max_length=100)


class AssignmentOut(AssignmentIn):
    scope: str = Field(examples=["customer"])
    scope_id: str = Field(examples=["cust-1"])
    retried: int = Field(
        default=0,
        examples=[0],
        deprecated=True,
        description="always 0: waiting calls are no longer rated inside the request; see `retry`",
    )
    retry: RetryQueued


class HolidayIn(BaseModel):
    name: str = Field(default="", examples=["Proclamação da República"], max_length=200)


class NumberingIn(BaseModel):
    country_code: str = Field(default="55", pattern=r"^[0-9]{1,3}$", examples=["55"])
    home_area_code: str = Field(pattern=r"^[0-9]{2}$", examples=["11"], description="the DDD of the PBX")


class ExtensionIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"line_id": "line-2001", "cost_centre": "sales"}]})

    line_id: str | None = Field(default=None, max_length=100)
    customer_id: str | None = Field(default=None, max_length=100)
    contract_id: str | None = Field(default=None, max_length=100)
    cost_centre: str | None = Field(default=None, max_length=100)
    department: str | None = Field(default=None, max_length=100)
    allowed_classes: list[CallClass] | None = Field(
        default=None, examples=[["local", "toll_free", "service"]], description="null: every class"
    )


class ExtensionOut(ExtensionIn):
    extension: str = Field(examples=["2001"])


class ExtensionsImported(BaseModel):
    imported: int = Field(examples=[2])
    retried: int = Field(
        default=0,
        examples=[0],
        deprecated=True,
        description="always 0: waiting calls are no longer rated inside the request; see `retry`",
    )
    retry: RetryQueued


class ExtensionSaved(ExtensionOut):
    retry: RetryQueued


class NumberingSaved(NumberingIn):
    retry: RetryQueued


class AliasSaved(BaseModel):
    number: str = Field(examples=["1133335555"])
    extension: str = Field(examples=["2001"])
    retry: RetryQueued


class AliasIn(BaseModel):
    extension: str = Field(examples=["2001"], min_length=1, max_length=100)


class UnratedOut(BaseModel):
    record_id: str
    source_id: str
    started_at: datetime
    extension: str | None
    dialled: str
    reason: str | None = Field(examples=["no_tariff", "unknown_extension", "bad_number"])
    detail: str | None


class RatedCallOut(BaseModel):
    record_id: str
    version: int
    started_at: datetime
    extension: str | None
    answered_by: str | None
    transferred: bool
    dialled: str
    called_e164: str | None
    call_class: str | None = Field(examples=["local"])
    destination: str | None
    billable_seconds: int
    charged_seconds: int
    amount: Decimal | None = Field(examples=["0.182"], description="unrounded")
    cost_amount: Decimal | None
    currency: str
    line_id: str | None
    customer_id: str | None
    contract_id: str | None
    cost_centre: str | None
    department: str | None
    plan: str | None
    rate: str | None
    band: str | None
    out_of_class: bool


class TotalOut(BaseModel):
    key: str = Field(examples=["sales"])
    currency: str = Field(examples=["BRL"])
    calls: int = Field(examples=[42])
    billable_seconds: int
    charged_seconds: int
    amount: Decimal = Field(examples=["12.35"], description="rounded once, half-up, to the currency")
    amount_unrounded: Decimal = Field(examples=["12.3456"])
    cost: Decimal
    out_of_class: int


class RerateIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z", "source_id": "pbx-hq"}]
        }
    )

    start: datetime
    end: datetime
    source_id: str | None = None
    line: str | None = Field(default=None, description="a line id or an extension")


class RerateOut(BaseModel):
    examined: int = Field(examples=[1200])
    changed: int = Field(examples=[340], description="calls that got a new version")
    newly_rated: int = Field(examples=[5], description="waiting calls rated for the first time")
    still_unrated: int = Field(examples=[2])
    difference: Decimal = Field(examples=["-4.52"], description="sum of new minus previous amounts, unrounded")


class AllowanceIn(BaseModel):
    included_minutes: int = Field(ge=0, examples=[100], description="minutes included per cycle")
    due_day: int = Field(ge=1, le=25, examples=[10], description="the cycle turns on this day")
    credit_limit: Decimal | None = Field(default=None, ge=0, examples=["150.00"])
    contract_id: str | None = Field(default=None, max_length=100, examples=["ct-1"])


class UsageOut(BaseModel):
    line_id: str
    cycle_start: date
    cycle_end: date
    included_seconds: int
    used_seconds: int = Field(examples=[4860])
    spent: Decimal = Field(examples=["3.25"], description="after the allowance, unrounded")
    thresholds_announced: list[int] = Field(examples=[[80]])
    credit_exceeded: bool
