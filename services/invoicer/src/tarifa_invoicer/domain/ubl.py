"""UBL 2.1 Invoice and CreditNote following EN 16931 and Peppol BIS Billing 3.0, built with lxml.

Element order follows the UBL 2.1 schemas (the XSD checks it); the business rules are the
EN 16931 and Peppol schematrons, which the tests run on every document we produce.
"""

from __future__ import annotations

from copy import deepcopy
from decimal import Decimal
from functools import lru_cache
from typing import Any

from lxml import etree

from tarifa_invoicer.domain.documents import Document, Party
from tarifa_invoicer.domain.invoice import InvoiceKind, TaxCategory

CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
ROOT_NS = {
    InvoiceKind.INVOICE: "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    InvoiceKind.CREDIT_NOTE: "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
}
UNIT_ONE = "C62"  # UN/ECE Rec 20 "one": each line is one service, usage counts are in its name


def _cac(parent: etree._Element, name: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{CAC}}}{name}")


def _cbc(parent: etree._Element, name: str, text: str, **attributes: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{CBC}}}{name}", attributes)
    element.text = text
    return element


def _amount(parent: etree._Element, name: str, value: Decimal, currency: str) -> None:
    _cbc(parent, name, f"{value:.2f}", currencyID=currency)


def _party(parent: etree._Element, role: str, party: Party) -> None:
    parent.append(deepcopy(_party_element(role, party)))


@lru_cache(maxsize=4096)
def _party_element(role: str, party: Party) -> etree._Element:
    """A party's subtree, built once per party (a run repeats the seller and each customer), copied per document."""
    holder = etree.Element(f"{{{CAC}}}{role}", nsmap={"cac": CAC, "cbc": CBC})
    node = _cac(holder, "Party")
    _cbc(node, "EndpointID", party.endpoint_id, schemeID=party.endpoint_scheme)
    if party.gln:
        _cbc(_cac(node, "PartyIdentification"), "ID", party.gln, schemeID="0088")
    _cbc(_cac(node, "PartyName"), "Name", party.name)
    address = _cac(node, "PostalAddress")
    _cbc(address, "StreetName", party.street)
    _cbc(address, "CityName", party.city)
    _cbc(address, "PostalZone", party.postcode)
    _cbc(_cac(address, "Country"), "IdentificationCode", party.country)
    if party.vat_id:
        tax_scheme = _cac(node, "PartyTaxScheme")
        _cbc(tax_scheme, "CompanyID", party.vat_id)
        _cbc(_cac(tax_scheme, "TaxScheme"), "ID", "VAT")
    _cbc(_cac(node, "PartyLegalEntity"), "RegistrationName", party.name)
    return holder


def _nsmap(default: str) -> Any:
    """The namespace map; `None` is lxml's key for the default namespace (the stubs disallow it)."""
    return {None: default, "cac": CAC, "cbc": CBC}


def render(document: Document) -> bytes:
    """The UBL 2.1 XML of `document` (UTF-8, with declaration)."""
    credit = document.kind is InvoiceKind.CREDIT_NOTE
    root_name = "CreditNote" if credit else "Invoice"
    root = etree.Element(
        f"{{{ROOT_NS[document.kind]}}}{root_name}",
        nsmap=_nsmap(ROOT_NS[document.kind]),
    )
    currency = document.currency
    _cbc(root, "CustomizationID", CUSTOMIZATION_ID)
    _cbc(root, "ProfileID", PROFILE_ID)
    _cbc(root, "ID", document.number)
    _cbc(root, "IssueDate", document.issue_date.isoformat())
    if not credit:
        _cbc(root, "DueDate", document.due_date.isoformat())
    _cbc(root, "CreditNoteTypeCode" if credit else "InvoiceTypeCode", "381" if credit else "380")
    _cbc(root, "DocumentCurrencyCode", currency)
    _cbc(root, "BuyerReference", document.buyer_reference)
    period = _cac(root, "InvoicePeriod")
    _cbc(period, "StartDate", document.period.start.isoformat())
    _cbc(period, "EndDate", document.period.end.isoformat())
    if document.credited_number:
        reference = _cac(_cac(root, "BillingReference"), "InvoiceDocumentReference")
        _cbc(reference, "ID", document.credited_number)
        if document.credited_issue_date:
            _cbc(reference, "IssueDate", document.credited_issue_date.isoformat())
    _party(root, "AccountingSupplierParty", document.seller)
    _party(root, "AccountingCustomerParty", document.buyer)
    _cbc(_cac(root, "PaymentTerms"), "Note", f"Payment due on {document.due_date.isoformat()}")

    totals = document.totals
    tax_total = _cac(root, "TaxTotal")
    _amount(tax_total, "TaxAmount", totals.tax, currency)
    for subtotal in totals.subtotals:
        node = _cac(tax_total, "TaxSubtotal")
        _amount(node, "TaxableAmount", subtotal.taxable, currency)
        _amount(node, "TaxAmount", subtotal.amount, currency)
        category = _cac(node, "TaxCategory")
        _cbc(category, "ID", subtotal.tax.category.value)
        _cbc(category, "Percent", f"{subtotal.tax.rate.normalize():f}")
        if subtotal.tax.category is TaxCategory.EXEMPT:
            _cbc(category, "TaxExemptionReason", document.exemption_reason)
        _cbc(_cac(category, "TaxScheme"), "ID", "VAT")

    monetary = _cac(root, "LegalMonetaryTotal")
    _amount(monetary, "LineExtensionAmount", totals.net, currency)
    _amount(monetary, "TaxExclusiveAmount", totals.net, currency)
    _amount(monetary, "TaxInclusiveAmount", totals.total, currency)
    _amount(monetary, "PayableAmount", totals.total, currency)

    for index, line in enumerate(document.lines, start=1):
        node = _cac(root, "CreditNoteLine" if credit else "InvoiceLine")
        _cbc(node, "ID", str(index))
        _cbc(node, "CreditedQuantity" if credit else "InvoicedQuantity", f"{line.quantity:f}", unitCode=UNIT_ONE)
        _amount(node, "LineExtensionAmount", line.net, currency)
        item = _cac(node, "Item")
        _cbc(item, "Name", line.description[:100])
        tax_category = _cac(item, "ClassifiedTaxCategory")
        _cbc(tax_category, "ID", line.tax.category.value)
        _cbc(tax_category, "Percent", f"{line.tax.rate.normalize():f}")
        _cbc(_cac(tax_category, "TaxScheme"), "ID", "VAT")
        _amount(_cac(node, "Price"), "PriceAmount", line.unit_price, currency)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
