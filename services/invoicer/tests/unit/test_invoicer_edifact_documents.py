"""EDIFACT INVOIC D96A (EANCOM) passes the UN D96A grammar; broken interchanges fail the same check."""

from dataclasses import replace
from decimal import Decimal

from tarifa_invoicer.domain import edifact
from tarifa_invoicer.domain.invoice import InvoiceKind, InvoiceLine, LineKind, Tax, TaxCategory, compute_totals


def segments(text: str) -> list[str]:
    return text.splitlines()


def test_invoice_passes_the_d96a_invoic_grammar_with_correct_counts(edifact_checker, make_document) -> None:
    text = edifact.render(make_document())
    assert edifact_checker.errors(text) == []
    lines = segments(text)
    assert lines[0] == "UNA:+.? '"
    assert lines[1].startswith("UNB+UNOC:3+")
    assert "BGM+380+F-000001+9'" in lines
    unh, unt = (
        lines.index("UNH+1+INVOIC:D:96A:UN:EAN008'"),
        next(i for i, s in enumerate(lines) if s.startswith("UNT+")),
    )
    assert lines[unt] == f"UNT+{unt - unh + 1}+1'"
    assert "MOA+77:155.70'" in lines
    assert lines[-1] == "UNZ+1+F000001'"


def test_credit_note_is_381_and_references_the_invoice(edifact_checker, make_document) -> None:
    text = edifact.render(make_document(InvoiceKind.CREDIT_NOTE))
    assert edifact_checker.errors(text) == []
    assert "BGM+381+CN-000001+9'" in segments(text)
    assert "RFF+IV:F-000001'" in segments(text)


def test_separators_inside_values_are_released(edifact_checker, make_document) -> None:
    line = InvoiceLine(LineKind.ONE_OFF, "O'Brien + Co: 50?", Decimal("1"), Tax(TaxCategory.STANDARD, Decimal("20")))
    text = edifact.render(replace(make_document(), lines=(line,), totals=compute_totals([line])))
    assert "IMD+F++:::O?'Brien ?+ Co?: 50??'" in segments(text)
    assert edifact_checker.errors(text) == []
    unreleased = text.replace("O?'Brien", "O'Brien")
    assert edifact_checker.errors(unreleased) != []


def test_a_wrong_unt_count_fails(edifact_checker, make_document) -> None:
    text = edifact.render(make_document())
    unt = next(s for s in segments(text) if s.startswith("UNT+"))
    count = int(unt.split("+")[1].rstrip("'"))
    errors = edifact_checker.errors(text.replace(unt, f"UNT+{count - 1}+1'"))
    assert any("Segmentcount in UNT" in error for error in errors), errors


def test_a_wrong_unz_count_fails(edifact_checker, make_document) -> None:
    errors = edifact_checker.errors(edifact.render(make_document()).replace("UNZ+1+", "UNZ+2+"))
    assert any("UNZ" in error for error in errors), errors


def test_a_missing_mandatory_bgm_fails(edifact_checker, make_document) -> None:
    text = edifact.render(make_document()).replace("BGM+380+F-000001+9'\n", "")
    errors = edifact_checker.errors(text)
    assert any("BGM" in error for error in errors), errors


def test_a_segment_out_of_order_fails(edifact_checker, make_document) -> None:
    text = edifact.render(make_document()).replace("CUX+2:EUR:4'\n", "").replace("UNS+S'\n", "UNS+S'\nCUX+2:EUR:4'\n")
    errors = edifact_checker.errors(text)
    assert any("CUX" in error for error in errors), errors
