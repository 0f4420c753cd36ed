"""Rating one call: who pays (the extension directory), which plan and rate, and the price.

A call is rated or it is not: an outbound call whose extension is unknown, or whose number no
rate of the plan covers, is `Unratable` with the reason, kept and retried when the directory or
the tariffs change; nothing disappears. Inbound and internal calls cost nothing and need no
tariff, but are still attributed when the extension is known.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

from tarifa_common.errors import FieldProblem, InvalidInput
from tarifa_rater.domain.money import ZERO
from tarifa_rater.domain.numbering import CallClass, Classified, NumberingPlan, classify
from tarifa_rater.domain.pricing import Band, Price, TimeBands, price_call
from tarifa_rater.domain.tariffs import PlanBook

NO_TARIFF = "no_tariff"
UNKNOWN_EXTENSION = "unknown_extension"
BAD_NUMBER = "bad_number"


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """Who an extension (or SIP line) is: the customer, contract and cost centre its calls go to."""

    extension: str
    line_id: str | None = None
    customer_id: str | None = None
    contract_id: str | None = None
    cost_centre: str | None = None
    department: str | None = None
    allowed_classes: frozenset[CallClass] | None = None  # None: every class allowed

    def allows(self, call_class: CallClass) -> bool:
        if call_class in (CallClass.INBOUND, CallClass.INTERNAL):
            return True
        return self.allowed_classes is None or call_class in self.allowed_classes


class CallToRate(NamedTuple):
    """What rating needs of a collected call (a named tuple: one is made for every call)."""

    record_id: str
    started_at: datetime  # UTC
    local_start: datetime  # the tenant's wall clock, naive
    direction: str  # inbound, outbound, internal
    answered: bool
    billable_seconds: int
    dialled: str
    extension: str | None


class Rating(NamedTuple):
    """A rated call's outcome (a named tuple: one is made for every call, and tuples are cheap)."""

    call_class: CallClass
    e164: str | None
    destination: str | None
    price: Price
    plan: str | None
    rate: str | None
    currency: str
    entry: DirectoryEntry | None
    out_of_class: bool


@dataclass(frozen=True, slots=True)
class Unratable:
    reason: str
    detail: str


FREE_BANDS = TimeBands()


def _free(call: CallToRate, call_class: CallClass, entry: DirectoryEntry | None, band: Band) -> Rating:
    price = Price(0, ZERO, None, ZERO, ZERO, band, 0, "not_charged")
    return Rating(call_class, None, None, price, None, None, "BRL", entry, False)


def rate_call(
    call: CallToRate,
    entry: DirectoryEntry | None,
    book: PlanBook,
    numbering: NumberingPlan,
    holidays: frozenset[date] = frozenset(),
) -> Rating | Unratable:
    """Price `call` for `entry` (None when the directory does not know its extension)."""
    direction = call.direction
    if direction != "outbound":
        if direction == "inbound":
            return _free(call, CallClass.INBOUND, entry, FREE_BANDS.band_at(call.local_start))
        if direction == "internal":
            return _free(call, CallClass.INTERNAL, entry, FREE_BANDS.band_at(call.local_start))
    if entry is None:
        return Unratable(UNKNOWN_EXTENSION, f"extension {call.extension or '(none)'} is not in the directory")
    try:
        number: Classified = classify(call.dialled, numbering)
    except InvalidInput as error:
        return Unratable(BAD_NUMBER, error.message)
    if number.call_class is CallClass.INTERNAL:
        return _free(call, CallClass.INTERNAL, entry, FREE_BANDS.band_at(call.local_start))
    plan = book.plan_for(call.started_at, line_id=entry.line_id or entry.extension, customer_id=entry.customer_id)
    if plan is None:
        return Unratable(
            NO_TARIFF,
            f"no tariff plan is assigned to line {entry.line_id or entry.extension}, "
            f"its customer or the tenant at {call.started_at.isoformat()}",
        )
    found = plan.find(number)
    if found is None:
        return Unratable(
            NO_TARIFF, f"plan {plan.code} has no rate for {number.e164 or call.dialled} ({number.call_class.value})"
        )
    rate = found.rate
    price = price_call(
        call.billable_seconds, call.answered, plan.bands.band_at(call.local_start, holidays), rate, plan.memo
    )
    call_class = number.call_class
    allowed = entry.allowed_classes
    out_of_class = allowed is not None and call_class not in allowed and not entry.allows(call_class)
    return Rating(
        call_class, number.e164, found.destination, price, plan.code, rate.name, plan.currency, entry, out_of_class
    )


def difference(new: Decimal, previous: Decimal | None) -> Decimal:
    """What a re-rate adds (positive) or credits (negative)."""
    return new - (previous or ZERO)


EXTENSION_COLUMNS = (
    "extension",
    "line_id",
    "customer_id",
    "contract_id",
    "cost_centre",
    "department",
    "allowed_classes",
)


def parse_extensions_csv(text: str) -> list[DirectoryEntry]:
    """Read an extension directory file (header `EXTENSION_COLUMNS`); raise with every bad line.

    `allowed_classes` lists call classes separated by spaces or '|'; empty means every class.
    """
    sample = text[:2048]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter)
    header = [name.strip() for name in (reader.fieldnames or [])]
    if "extension" not in header:
        raise DirectoryFileInvalid([FieldProblem("line 1", "the header lacks the column extension")])
    unknown = [name for name in header if name not in EXTENSION_COLUMNS]
    if unknown:
        raise DirectoryFileInvalid(
            [FieldProblem("line 1", f"unknown column(s) {', '.join(unknown)}; known: {', '.join(EXTENSION_COLUMNS)}")]
        )
    problems: list[FieldProblem] = []
    entries: list[DirectoryEntry] = []
    for row in reader:
        line = reader.line_num
        values = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        extension = values.get("extension", "")
        if not extension:
            problems.append(FieldProblem(f"line {line}: extension", "is required"))
            continue
        classes: frozenset[CallClass] | None = None
        class_text = values.get("allowed_classes", "").replace("|", " ").split()
        if class_text:
            try:
                classes = frozenset(CallClass(c.lower()) for c in class_text)
            except ValueError:
                known = ", ".join(c.value for c in CallClass)
                problems.append(FieldProblem(f"line {line}: allowed_classes", f"use classes among {known}"))
                continue
        entries.append(
            DirectoryEntry(
                extension=extension,
                line_id=values.get("line_id") or None,
                customer_id=values.get("customer_id") or None,
                contract_id=values.get("contract_id") or None,
                cost_centre=values.get("cost_centre") or None,
                department=values.get("department") or None,
                allowed_classes=classes,
            )
        )
    if problems:
        raise DirectoryFileInvalid(problems)
    return entries


class DirectoryFileInvalid(InvalidInput):
    """An extension file with bad rows; every problem names its line and column."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        summary = "; ".join(f"{p.field}: {p.problem}" for p in problems[:5])
        super(InvalidInput, self).__init__(
            f"the extension file has {len(problems)} bad value(s): {summary}", problems=problems
        )
