"""Pre-checks of a billing run (Comtrafic's manual checks before generating invoices, automated)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

OUTLIER_FACTOR = Decimal(3)


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    object_id: str
    detail: str


def silent_contracts(contracts_with_lines: Sequence[str], contracts_with_calls: set[str]) -> list[Finding]:
    """A contract with lines but not one call in the period usually means lost call records."""
    return [
        Finding("lines_without_calls", contract, "the contract has lines but no rated call in the period")
        for contract in contracts_with_lines
        if contract not in contracts_with_calls
    ]


def outlier_customers(current: Mapping[str, Decimal], history: Mapping[str, Sequence[Decimal]]) -> list[Finding]:
    """A customer whose total is over 3x or under 1/3 of its average of the last 12 months is flagged.

    The '12-month synthesis' check of the Comtrafic seed: every customer's invoice should be
    coherent with its previous months. Customers without history are not judged.
    """
    findings: list[Finding] = []
    for customer, total in sorted(current.items()):
        past = [amount for amount in history.get(customer, ())[-12:] if amount > 0]
        if not past:
            continue
        average = sum(past, Decimal(0)) / len(past)
        if total > average * OUTLIER_FACTOR or total < average / OUTLIER_FACTOR:
            findings.append(
                Finding(
                    "total_against_12_months",
                    customer,
                    f"total {total} against an average of {average.quantize(Decimal('0.01'))} over {len(past)} months",
                )
            )
    return findings


def unattributed(count: int) -> Finding:
    """Calls of the period on no known contract's line are billed to nobody until a line is assigned."""
    return Finding(
        "calls_without_contract",
        "usage",
        f"{count} rated calls of the period belong to no contract: assign their lines, then bill again",
    )


SOURCES_TODO = Finding(
    "sources_delivered",
    "collector",
    "not checked yet: the collector's watermark API is not available to the invoicer (documented TODO)",
)
