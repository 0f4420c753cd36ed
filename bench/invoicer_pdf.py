"""Benchmark: invoice PDFs with a call-detail annex, per second (target >= 20/s).

Renders `--count` invoices of 8 lines and `--calls` calls each (the 10,000-contract /
1,000,000-call run averages 100 calls per invoice) in one process.

    .venv/bin/python bench/invoicer_pdf.py --count 100 --calls 100
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from tarifa_invoicer.adapters import pdf
from tarifa_invoicer.adapters.tables import UsageCall
from tarifa_invoicer.domain.documents import Party
from tarifa_invoicer.domain.invoice import (
    ClassUsage,
    InvoiceKind,
    Period,
    Tax,
    TaxCategory,
    compute_totals,
    usage_lines,
)
from tarifa_invoicer.handlers import Issued

SELLER = Party("Tarifa Telecom SAS", "1 rue du Port", "Marseille", "13002", "FR", "FR40123456789", "0009:1234")
BUYER = Party("Hotel du Lac", "5 quai Ouest", "Annecy", "74000", "FR", "FR83404833048", "0088:3012345000017")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    tax = Tax(TaxCategory.STANDARD, Decimal("20"))
    lines = tuple(
        usage_lines([ClassUsage(f"class{i}", 10, 600, Decimal("3.141592")) for i in range(8)], Decimal(0), tax)
    )
    totals = compute_totals(lines)
    invoice = Issued(
        id="bench",
        number="F-000001",
        series="F",
        sequence=1,
        kind=InvoiceKind.INVOICE,
        customer_id="c",
        contract_id="contract-1",
        period=Period.month("2026-10"),
        issue_date=date(2026, 11, 1),
        due_date=date(2026, 11, 10),
        currency="EUR",
        net=totals.net,
        tax=totals.tax,
        total=totals.total,
        lines=lines,
        ubl="",
        edifact="",
        seller=SELLER,
        buyer=BUYER,
    )
    start = datetime(2026, 10, 1, tzinfo=UTC)
    calls = [
        UsageCall(
            tenant="b",
            record_id=f"r{i}",
            version=1,
            contract_id="contract-1",
            line_id="ext-201",
            call_class="local",
            dialled=f"+33612345{i:03d}",
            started_at=start + timedelta(minutes=17 * i),
            calls=1,
            seconds=95,
            amount_micros=123456,
        )
        for i in range(args.calls)
    ]
    began = time.perf_counter()
    size = 0
    for _ in range(args.count):
        size += len(pdf.render(invoice, calls))
    elapsed = time.perf_counter() - began
    print(
        f"{args.count} PDFs with {args.calls} calls each in {elapsed:.1f}s: {args.count / elapsed:.1f} PDFs/s "
        f"(target >= 20/s), {size // args.count // 1024} KiB each"
    )


if __name__ == "__main__":
    main()
