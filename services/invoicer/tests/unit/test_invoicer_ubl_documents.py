"""Every UBL document we render passes the UBL 2.1 XSD, EN 16931 and Peppol BIS 3; broken ones fail."""

from datetime import date
from decimal import Decimal

from lxml import etree

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
from tarifa_invoicer.domain.ubl import CBC, render

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


def test_invoice_with_mixed_rates_proration_and_allowance_passes_xsd_cen_and_peppol(ubl_validator) -> None:
    xml = render(document())
    assert ubl_validator.errors(xml) == []
    root = etree.fromstring(xml)
    # 21.28 (29.99 x 22/31) + 89.90 + 14.12 + 9.87 - 10.00 = 125.17 at 20 % -> 25.03; 5.00 at 10 % -> 0.50
    assert root.findtext(f"{{{CBC}}}DocumentCurrencyCode") == "EUR"
    payable = root.find(".//{*}LegalMonetaryTotal/{*}PayableAmount")
    assert payable is not None and payable.text == "155.70"


def test_credit_note_referencing_its_invoice_passes_xsd_cen_and_peppol(ubl_validator) -> None:
    xml = render(document(InvoiceKind.CREDIT_NOTE))
    assert ubl_validator.errors(xml) == []
    assert etree.fromstring(xml).findtext(".//{*}BillingReference/{*}InvoiceDocumentReference/{*}ID") == "F-000001"


def test_exempt_customer_invoice_passes_with_an_exemption_reason(ubl_validator) -> None:
    xml = render(document(treatment=TaxTreatment.EXEMPT))
    assert ubl_validator.errors(xml) == []
    assert etree.fromstring(xml).findtext(".//{*}TaxTotal/{*}TaxAmount") == "0.00"


def test_a_wrong_total_fails_the_en16931_rules(ubl_validator) -> None:
    root = etree.fromstring(render(document()))
    payable = root.find(".//{*}LegalMonetaryTotal/{*}TaxInclusiveAmount")
    assert payable is not None
    payable.text = "999.99"
    errors = ubl_validator.errors(etree.tostring(root))
    assert any("BR-CO-15" in error for error in errors), errors


def test_a_missing_buyer_endpoint_fails_the_peppol_rules(ubl_validator) -> None:
    root = etree.fromstring(render(document()))
    endpoint = root.find(".//{*}AccountingCustomerParty/{*}Party/{*}EndpointID")
    assert endpoint is not None
    endpoint.getparent().remove(endpoint)
    errors = ubl_validator.errors(etree.tostring(root))
    assert any(error.startswith("PEPPOL") for error in errors), errors


def test_elements_out_of_order_fail_the_xsd(ubl_validator) -> None:
    root = etree.fromstring(render(document()))
    issue_date = root.find(f"{{{CBC}}}IssueDate")
    assert issue_date is not None
    root.remove(issue_date)
    root.append(issue_date)
    errors = ubl_validator.errors(etree.tostring(root))
    assert errors and errors[0].startswith("XSD"), errors
