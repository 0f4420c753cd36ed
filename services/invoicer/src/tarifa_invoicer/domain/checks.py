"""Pre-checks of a billing run (Comtrafic's manual checks before generating invoices, automated)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
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


@dataclass(frozen=True, slots=True)
class SourceWatermark:
    """What the collector says of one source: has it delivered every call that started before `until`?"""

    source_id: str
    reached: bool
    last_call_start: datetime | None
    last_record_at: datetime | None


class WatermarkUnavailable(Exception):
    """The collector could not say whether the sources have delivered (down, refused, wrong answer)."""


def undelivered_sources(until: datetime, sources: Sequence[SourceWatermark]) -> list[Finding]:
    """A source that has not delivered up to the period's end may still hold calls in its PBX's buffer.

    Billing then would leave those calls for the next period (or lose them for a contract that
    ends): the seed's first rule is that collection never silently stops, so the run says which
    source is behind and since when.
    """
    return [
        Finding(
            "sources_delivered",
            source.source_id,
            f"the source has not delivered its calls up to {until.isoformat()} (last call started "
            f"{_moment(source.last_call_start)}, last record received {_moment(source.last_record_at)}): "
            "check its link on the collector (GET /v1/sources/{id}) or wait for it, then bill again",
        )
        for source in sources
        if not source.reached
    ]


def collector_unreachable(url: str, reason: str) -> Finding:
    """The watermark could not be read: that is a finding too, never a crash of the run."""
    return Finding(
        "sources_delivered",
        "collector",
        f"could not ask the collector at {url} whether every source has delivered ({reason}): start it or set "
        "TARIFA_INVOICER_COLLECTOR_URL (and the same TARIFA_JWT_SECRET on both), then bill again; bill without "
        "hold_on_findings only if you know every source has delivered",
    )


class BacklogUnavailable(Exception):
    """The broker could not say how far the invoicer has stored `cdr.rated` (down, unknown group, timeout)."""


def behind(ends: Mapping[int, int], stored: Mapping[int, int]) -> dict[int, int]:
    """Per partition, the events published before the run started that the invoicer has not stored yet."""
    return {
        partition: end - stored.get(partition, 0)
        for partition, end in sorted(ends.items())
        if end > stored.get(partition, 0)
    }


def rated_calls_in_flight(lag: Mapping[int, int], waited: float) -> Finding:
    """Rated calls still on their way to the invoicer would be billed in the contract's next invoice, not this one."""
    partitions = ", ".join(f"{partition}: {count}" for partition, count in sorted(lag.items()))
    return Finding(
        "rated_calls_caught_up",
        "cdr.rated",
        f"after waiting {waited:g} s the invoicer has still not stored {sum(lag.values())} rated call event(s) "
        f"published on cdr.rated before the run started (by partition {partitions}): their calls would be billed "
        "in the next invoice; check that the invoicer service is running and consuming (its tarifa.consumer.lag "
        "gauge), then bill again (or raise TARIFA_INVOICER_RATED_CATCH_UP_SECONDS)",
    )


def backlog_unreadable(where: str, reason: str) -> Finding:
    """How far the invoicer has read could not be known: a finding, never a crash of the run."""
    return Finding(
        "rated_calls_caught_up",
        "broker",
        f"could not ask the broker at {where} whether the invoicer has stored every rated call ({reason}): start it "
        "or set TARIFA_INVOICER_KAFKA_BOOTSTRAP_SERVERS, then bill again; bill without hold_on_findings only if "
        "you know the invoicer has caught up with cdr.rated",
    )


def _moment(value: datetime | None) -> str:
    return value.isoformat() if value is not None else "never"
