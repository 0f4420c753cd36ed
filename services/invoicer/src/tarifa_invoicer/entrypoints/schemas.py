"""The invoicer API's request and response bodies, with OpenAPI examples."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from tarifa_common.contracts import ContractStatus
from tarifa_invoicer.domain.accounts import AutoEmail, EdiFormat
from tarifa_invoicer.domain.invoice import TaxTreatment


class ProfileIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "seller_name": "Tarifa Telecom SAS",
                    "seller_vat_id": "FR40123456789",
                    "seller_street": "1 rue du Port",
                    "seller_city": "Marseille",
                    "seller_postcode": "13002",
                    "seller_country": "FR",
                    "seller_endpoint": "0009:12345678900011",
                    "seller_gln": "5790000435975",
                    "default_tax_rate": "20",
                    "currency": "EUR",
                    "series": "F2026",
                    "credit_series": "AV2026",
                    "time_zone": "Europe/Paris",
                }
            ]
        }
    )

    seller_name: str = Field(min_length=1, max_length=200)
    seller_vat_id: str = Field(min_length=3, max_length=50, description="with its ISO country prefix")
    seller_street: str = Field(max_length=200)
    seller_city: str = Field(max_length=100)
    seller_postcode: str = Field(max_length=20)
    seller_country: str = Field(pattern=r"^[A-Z]{2}$")
    seller_endpoint: str = Field(description="Peppol participant id scheme:value")
    seller_gln: str | None = None
    default_tax_rate: Decimal = Field(ge=0, le=100)
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    series: str = Field(default="F", pattern=r"^[A-Za-z0-9]{1,20}$")
    credit_series: str = Field(default="CN", pattern=r"^[A-Za-z0-9]{1,20}$")
    time_zone: str = "UTC"
    auto_email: AutoEmail = Field(
        default=AutoEmail.OFF,
        description="e-mail every invoice when it is issued: off, pdf or pdf_and_edi (customers may override)",
    )


class ProfileOut(ProfileIn):
    tenant: str


class CustomerIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Hotel du Lac",
                    "tax_id": "FR83404833048",
                    "street": "5 quai Ouest",
                    "city": "Annecy",
                    "postcode": "74000",
                    "country": "FR",
                    "emails": ["compta@hotel-du-lac.example"],
                    "billable": True,
                    "tax_treatment": "default",
                    "language": "fr",
                    "edi_format": "ubl",
                    "gln": "3012345000017",
                    "peppol_id": "0088:3012345000017",
                    "delivery_endpoint": None,
                }
            ]
        }
    )

    name: str = Field(min_length=1, max_length=200)
    tax_id: str | None = Field(default=None, max_length=50)
    street: str = Field(max_length=200)
    city: str = Field(max_length=100)
    postcode: str = Field(max_length=20)
    country: str = Field(pattern=r"^[A-Z]{2}$")
    emails: list[str] = Field(default_factory=list)
    billable: bool = True
    tax_treatment: TaxTreatment = TaxTreatment.DEFAULT
    tax_rate: Decimal | None = Field(default=None, ge=0, le=100, description="for tax_treatment 'specific'")
    language: str = Field(default="en", max_length=10)
    edi_format: EdiFormat = EdiFormat.UBL
    gln: str | None = None
    peppol_id: str | None = Field(default=None, description="scheme:value, e.g. 0088:3012345000017")
    delivery_endpoint: str | None = Field(default=None, description="HTTPS endpoint; null means download only")
    auto_email: AutoEmail = Field(
        default=AutoEmail.TENANT,
        description="e-mail its invoices when issued: tenant (follow the billing profile), off, pdf or pdf_and_edi",
    )
    edi_signing_key: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="HMAC-SHA256 key of this customer's EDI pushes (write-only); the service's key if not given",
    )


class CustomerOut(CustomerIn):
    id: str
    created_at: datetime
    edi_signing_key_set: bool = Field(default=False, description="whether the customer has its own EDI key")


class ContractIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "9b2f4c1e-0000-4000-8000-000000000001",
                    "cycle": "monthly",
                    "due_day": 10,
                    "starts_on": "2026-10-01",
                    "usage_allowance": "50.00",
                }
            ]
        }
    )

    customer_id: str
    cycle: str = Field(default="monthly", pattern="^monthly$", description="only monthly cycles for now")
    due_day: int = Field(ge=1, le=28)
    starts_on: date
    ends_on: date | None = None
    usage_allowance: Decimal = Field(default=Decimal("0"), ge=0, description="usage included in the plan")


class ContractOut(ContractIn):
    id: str
    status: ContractStatus
    created_at: datetime


class StatusIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "blocked_manually", "reason": "asked by the customer"}]}
    )

    status: ContractStatus
    reason: str | None = None


class LineIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"line_id": "line-0042", "assigned_on": "2026-10-01"}]})

    line_id: str = Field(min_length=1, max_length=100, description="the line id or the extension")
    assigned_on: date


class LineEnd(BaseModel):
    ended_on: date


class ChargeIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"description": "Line rental", "amount": "9.90", "recurring": True, "starts_on": "2026-10-01"},
                {"description": "Handset", "amount": "89.90", "recurring": False, "starts_on": "2026-10-03"},
            ]
        }
    )

    description: str = Field(min_length=1, max_length=200)
    amount: Decimal = Field(description="per month for recurring charges; unrounded")
    recurring: bool
    starts_on: date = Field(description="a one-off charge is billed in the period that holds this day")
    ends_on: date | None = None
    tax_rate: Decimal | None = Field(default=None, ge=0, le=100, description="overrides the customer's rate")
    line_id: str | None = Field(default=None, description="a charge on one line ends with the line")


class ChargeOut(ChargeIn):
    id: str
    contract_id: str


class RunIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"period": "2026-10", "dry_run": True}]})

    period: str = Field(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")
    dry_run: bool = False
    hold_on_findings: bool = Field(default=False, description="issue nothing if a pre-check finds something")
    issue_date: date | None = Field(default=None, description="today if not given")


class FindingOut(BaseModel):
    check: str
    object_id: str
    detail: str


class RunOut(BaseModel):
    id: str
    period_start: date
    period_end: date
    dry_run: bool
    status: str = Field(examples=["running", "finished", "held", "failed"])
    total: int
    done: int
    issued: int
    skipped: int
    net: Decimal
    checks: list[FindingOut]
    error: str | None
    created_at: datetime
    finished_at: datetime | None


class InvoiceOut(BaseModel):
    id: str
    number: str
    series: str
    kind: str
    credited_invoice_id: str | None
    customer_id: str
    contract_id: str
    period_start: date
    period_end: date
    issue_date: date
    due_date: date
    currency: str
    net: Decimal
    tax: Decimal
    total: Decimal
    lines: list[dict[str, object]] = Field(default_factory=list)


class EmailIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"to": None, "with_edi": "ubl"}]})

    to: list[str] | None = Field(default=None, description="the customer's addresses if not given")
    with_edi: EdiFormat | None = Field(default=None, description="attach the UBL or EDIFACT document too")


class EmailOut(BaseModel):
    sent_to: list[str]
    attachments: list[str]


class CreditIn(BaseModel):
    """What a credit note credits: nothing given is the whole invoice."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"lines": [2, 3]}, {"amount": "12.50"}]})

    lines: list[int] | None = Field(default=None, description="line numbers of the invoice (1 = first), each once")
    amount: Decimal | None = Field(default=None, gt=0, description="a net amount, spread over the VAT categories")
