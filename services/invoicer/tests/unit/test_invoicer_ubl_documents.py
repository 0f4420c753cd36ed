"""Every UBL document we render passes the UBL 2.1 XSD, EN 16931 and Peppol BIS 3; broken ones fail."""

from lxml import etree

from tarifa_invoicer.domain.invoice import InvoiceKind, TaxTreatment
from tarifa_invoicer.domain.ubl import CBC, render


def test_invoice_with_mixed_rates_proration_and_allowance_passes_xsd_cen_and_peppol(
    ubl_validator, make_document
) -> None:
    xml = render(make_document())
    assert ubl_validator.errors(xml) == []
    root = etree.fromstring(xml)
    # 21.28 (29.99 x 22/31) + 89.90 + 14.12 + 9.87 - 10.00 = 125.17 at 20 % -> 25.03; 5.00 at 10 % -> 0.50
    assert root.findtext(f"{{{CBC}}}DocumentCurrencyCode") == "EUR"
    payable = root.find(".//{*}LegalMonetaryTotal/{*}PayableAmount")
    assert payable is not None and payable.text == "155.70"


def test_credit_note_referencing_its_invoice_passes_xsd_cen_and_peppol(ubl_validator, make_document) -> None:
    xml = render(make_document(InvoiceKind.CREDIT_NOTE))
    assert ubl_validator.errors(xml) == []
    assert etree.fromstring(xml).findtext(".//{*}BillingReference/{*}InvoiceDocumentReference/{*}ID") == "F-000001"


def test_exempt_customer_invoice_passes_with_an_exemption_reason(ubl_validator, make_document) -> None:
    xml = render(make_document(treatment=TaxTreatment.EXEMPT))
    assert ubl_validator.errors(xml) == []
    assert etree.fromstring(xml).findtext(".//{*}TaxTotal/{*}TaxAmount") == "0.00"


def test_a_wrong_total_fails_the_en16931_rules(ubl_validator, make_document) -> None:
    root = etree.fromstring(render(make_document()))
    payable = root.find(".//{*}LegalMonetaryTotal/{*}TaxInclusiveAmount")
    assert payable is not None
    payable.text = "999.99"
    errors = ubl_validator.errors(etree.tostring(root))
    assert any("BR-CO-15" in error for error in errors), errors


def test_a_missing_buyer_endpoint_fails_the_peppol_rules(ubl_validator, make_document) -> None:
    root = etree.fromstring(render(make_document()))
    endpoint = root.find(".//{*}AccountingCustomerParty/{*}Party/{*}EndpointID")
    assert endpoint is not None
    endpoint.getparent().remove(endpoint)
    errors = ubl_validator.errors(etree.tostring(root))
    assert any(error.startswith("PEPPOL") for error in errors), errors


def test_elements_out_of_order_fail_the_xsd(ubl_validator, make_document) -> None:
    root = etree.fromstring(render(make_document()))
    issue_date = root.find(f"{{{CBC}}}IssueDate")
    assert issue_date is not None
    root.remove(issue_date)
    root.append(issue_date)
    errors = ubl_validator.errors(etree.tostring(root))
    assert errors and errors[0].startswith("XSD"), errors
