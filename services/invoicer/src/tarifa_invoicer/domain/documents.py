"""What an issued invoice or credit note says: the parties, the numbers, the lines and the totals.

The UBL and EDIFACT renderers and the PDF all read this one model, so the documents of an
invoice can never disagree with each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from tarifa_invoicer.domain.invoice import InvoiceKind, InvoiceLine, Period, Totals


@dataclass(frozen=True, slots=True)
class Party:
    name: str
    street: str
    city: str
    postcode: str
    country: str  # ISO 3166-1 alpha-2
    vat_id: str | None
    endpoint: str  # `scheme:value`, e.g. `0088:5790000435975` (EAS code list) or `EM:ap@example.com`
    gln: str | None = None

    @property
    def endpoint_scheme(self) -> str:
        return self.endpoint.split(":", 1)[0]

    @property
    def endpoint_id(self) -> str:
        return self.endpoint.split(":", 1)[1]


@dataclass(frozen=True, slots=True)
class Document:
    kind: InvoiceKind
    number: str
    issue_date: date
    due_date: date
    currency: str
    period: Period
    seller: Party
    buyer: Party
    buyer_reference: str  # BT-10: the contract, which the buyer's ERP matches on
    lines: tuple[InvoiceLine, ...]
    totals: Totals
    credited_number: str | None = None
    credited_issue_date: date | None = None
    exemption_reason: str = "Customer exempt from VAT"
