"""Customers and contracts as billing sees them, and the rules their fields must follow."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from tarifa_common.contracts import ContractStatus
from tarifa_common.errors import Conflict, InvalidInput
from tarifa_invoicer.domain.documents import Party
from tarifa_invoicer.domain.invoice import Charge, TaxOf, TaxTreatment

_EAS_ENDPOINT = re.compile(r"^[0-9A-Z]{2,4}:\S+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class EdiFormat(StrEnum):
    UBL = "ubl"  # UBL 2.1, Peppol BIS Billing 3.0
    EDIFACT = "edifact"  # INVOIC D96A, EANCOM
    NONE = "none"


def check_gln(gln: str, field_name: str = "gln") -> str:
    """A GS1 Global Location Number: 13 digits, the last a mod-10 check digit (GS1 General Specifications 7.9)."""
    if not (len(gln) == 13 and gln.isdigit()):
        raise InvalidInput(field_name, f"a GLN has 13 digits, got {gln!r}")
    total = sum(int(digit) * (3 if index % 2 == 0 else 1) for index, digit in enumerate(reversed(gln[:-1])))
    if (10 - total % 10) % 10 != int(gln[-1]):
        raise InvalidInput(field_name, f"{gln} has a wrong check digit (expected {(10 - total % 10) % 10})")
    return gln


def check_endpoint(endpoint: str, field_name: str = "peppol_id") -> str:
    """A Peppol participant id as `scheme:value`, the scheme from the EAS code list (0088 GLN, 0009 SIRET...)."""
    if not _EAS_ENDPOINT.match(endpoint):
        raise InvalidInput(field_name, f"expected scheme:value such as 0088:5790000435975, got {endpoint!r}")
    if endpoint.startswith("0088:"):
        check_gln(endpoint[5:], field_name)
    return endpoint


def check_emails(emails: list[str]) -> list[str]:
    for email in emails:
        if not _EMAIL.match(email):
            raise InvalidInput("emails", f"{email!r} is not an e-mail address")
    return emails


class AutoEmail(StrEnum):
    """Whether an invoice is e-mailed when it is issued: set on the tenant, overridden per customer."""

    TENANT = "tenant"  # the customer follows the tenant's setting (a customer's default)
    OFF = "off"
    PDF = "pdf"
    PDF_AND_EDI = "pdf_and_edi"  # the PDF and the customer's EDI document (UBL or EDIFACT)


def email_after_issue(
    customer_choice: AutoEmail, tenant_choice: AutoEmail, emails: tuple[str, ...], edi_format: EdiFormat
) -> tuple[tuple[str, ...], str | None] | None:
    """To whom an issued invoice is e-mailed and which EDI document goes with the PDF; None: not e-mailed.

    A customer without an address gets no e-mail (its invoice is still downloadable); EDI is only
    attached in the format the customer's system reads, none if it has no EDI format.
    """
    choice = tenant_choice if customer_choice is AutoEmail.TENANT else customer_choice
    if choice in (AutoEmail.OFF, AutoEmail.TENANT) or not emails:
        return None
    with_edi = edi_format.value if choice is AutoEmail.PDF_AND_EDI and edi_format is not EdiFormat.NONE else None
    return emails, with_edi


@dataclass(frozen=True, slots=True)
class CustomerTerms:
    """What billing needs of a customer."""

    id: str
    name: str
    billable: bool
    treatment: TaxTreatment
    tax_rate: Decimal | None
    party: Party
    edi_format: EdiFormat
    delivery_endpoint: str | None = None
    emails: tuple[str, ...] = ()
    auto_email: AutoEmail = AutoEmail.TENANT


def buyer_endpoint(peppol_id: str | None, gln: str | None, emails: list[str]) -> str:
    """The buyer's electronic address (BT-49, mandatory in Peppol): its participant id, its GLN, or its e-mail."""
    if peppol_id:
        return peppol_id
    if gln:
        return f"0088:{gln}"
    if emails:
        return f"EM:{emails[0]}"
    raise InvalidInput("peppol_id", "a billable customer needs a Peppol id, a GLN or an e-mail address")


_TRANSITIONS: dict[ContractStatus, frozenset[ContractStatus]] = {
    ContractStatus.ACTIVE: frozenset(
        {
            ContractStatus.BLOCKED_MANUALLY,
            ContractStatus.BLOCKED_AUTOMATICALLY,
            ContractStatus.FINANCIALLY_OVERDUE,
            ContractStatus.CANCELLED,
        }
    ),
    ContractStatus.BLOCKED_MANUALLY: frozenset({ContractStatus.RELEASED, ContractStatus.CANCELLED}),
    ContractStatus.BLOCKED_AUTOMATICALLY: frozenset({ContractStatus.RELEASED, ContractStatus.CANCELLED}),
    ContractStatus.FINANCIALLY_OVERDUE: frozenset(
        {ContractStatus.RELEASED, ContractStatus.BLOCKED_AUTOMATICALLY, ContractStatus.CANCELLED}
    ),
    ContractStatus.RELEASED: frozenset(
        {
            ContractStatus.ACTIVE,
            ContractStatus.BLOCKED_MANUALLY,
            ContractStatus.BLOCKED_AUTOMATICALLY,
            ContractStatus.FINANCIALLY_OVERDUE,
            ContractStatus.CANCELLED,
        }
    ),
    ContractStatus.CANCELLED: frozenset(),
}


def check_transition(current: ContractStatus, wanted: ContractStatus) -> None:
    """A cancelled contract stays cancelled; a blocked one is released before it is active again."""
    if wanted not in _TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in _TRANSITIONS[current])) or "none"
        raise Conflict(f"a contract that is {current.value} cannot become {wanted.value} (allowed: {allowed})")


BILLED_STATUSES = frozenset(ContractStatus) - {ContractStatus.CANCELLED}


@dataclass(frozen=True, slots=True)
class ContractTerms:
    """A contract as a billing run reads it: its customer, its charges and its lines."""

    id: str
    customer: CustomerTerms
    due_day: int
    status: ContractStatus
    starts_on: date
    ends_on: date | None
    usage_allowance: Decimal
    charges: tuple[Charge, ...] = field(default=())
    line_ids: tuple[str, ...] = field(default=())

    def tax_of(self, default_rate: Decimal) -> TaxOf:
        return TaxOf(self.customer.treatment, default_rate, self.customer.tax_rate)


def due_date(issue_date: date, due_day: int) -> date:
    """The first `due_day` of a month that is at least 5 days after issue (time for the bill to arrive)."""
    earliest = issue_date + timedelta(days=5)
    candidate = date(earliest.year, earliest.month, due_day)
    if candidate < earliest:
        month = earliest.month % 12 + 1
        candidate = date(earliest.year + (earliest.month == 12), month, due_day)
    return candidate
