"""Fixtures of the invoicer's tests: the UBL and EDIFACT conformance checks, a sample document.

The checks live in `tarifa_invoicer.conformance` (the cross-service test uses them too);
compiling the schematrons takes a few seconds, so one validator serves the whole session.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from tarifa_invoicer.conformance import EdifactChecker, UblValidator
from tarifa_invoicer.domain.documents import Document, Party
from tarifa_invoicer.domain.invoice import (
    Charge,
    ClassUsage,
    InvoiceKind,
    Period,
    TaxOf,
    TaxTreatment,
    charge_lines,
    compute_totals,
    usage_lines,
)

sys.path.insert(0, str(Path(__file__).parent / "simulators"))


@pytest.fixture(scope="session")
def ubl_validator() -> UblValidator:
    return UblValidator.load()


@pytest.fixture(scope="session")
def edifact_checker() -> EdifactChecker:
    return EdifactChecker()


SELLER = Party(
    "Tarifa Telecom SAS", "1 rue du Port", "Marseille", "13002", "FR", "FR40123456789", "0009:12345678900011"
)
BUYER = Party(
    "Hotel du Lac", "5 quai Ouest", "Annecy", "74000", "FR", "FR83404833048", "0088:3012345000017", gln="3012345000017"
)
OCTOBER = Period.month("2026-10")


def document(kind: InvoiceKind = InvoiceKind.INVOICE, treatment: TaxTreatment = TaxTreatment.DEFAULT) -> Document:
    tax_of = TaxOf(treatment, Decimal("20"), None)
    lines = charge_lines(
        OCTOBER,
        [
            Charge("Subscription", Decimal("29.99"), True, date(2026, 10, 10)),
            Charge("Router rental", Decimal("5.00"), True, date(2026, 1, 1), tax_rate=Decimal("10")),
            Charge("Handset", Decimal("89.90"), False, date(2026, 10, 2)),
        ],
        tax_of,
    )
    lines += usage_lines(
        [ClassUsage("local", 120, 7260, Decimal("14.123456")), ClassUsage("international", 3, 400, Decimal("9.87"))],
        allowance=Decimal("10"),
        tax=tax_of(),
    )
    return Document(
        kind=kind,
        number="CN-000001" if kind is InvoiceKind.CREDIT_NOTE else "F-000001",
        issue_date=date(2026, 11, 1),
        due_date=date(2026, 11, 10),
        currency="EUR",
        period=OCTOBER,
        seller=SELLER,
        buyer=BUYER,
        buyer_reference="contract-42",
        lines=tuple(lines),
        totals=compute_totals(lines),
        credited_number="F-000001" if kind is InvoiceKind.CREDIT_NOTE else None,
        credited_issue_date=date(2026, 11, 1) if kind is InvoiceKind.CREDIT_NOTE else None,
    )


@pytest.fixture
def make_document() -> Callable[..., Document]:
    """A sample invoice (or credit note): mixed rates, proration, a one-off, usage and an allowance."""
    return document
